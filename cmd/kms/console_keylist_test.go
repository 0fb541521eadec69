package main_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/chromedp/chromedp"
)

// TestConsoleKeyListPages: the key list shows a page of 100 keys, each
// described, and the next page on request, rather than describing every
// key of the account (one request each) on every view.
func TestConsoleKeyListPages(t *testing.T) {
	ctx := newBrowser(t, 3*time.Minute)
	dir := t.TempDir()
	s := startDev(t, dir)
	id, secret := devCredentials(t, dir)
	sdk := testCtx(t)
	c := s.client(t)
	for range 103 {
		if _, err := c.CreateKey(sdk, &kms.CreateKeyInput{}); err != nil {
			t.Fatal(err)
		}
	}
	rows := func(what string) int {
		t.Helper()
		return read(t, ctx, what, chromedp.Evaluate[int](`document.querySelectorAll("#keys-table tbody tr").length`))
	}
	browse(t, ctx, "the key list",
		chromedp.Navigate(s.URL+"/console/"),
		signInWithKey(id, secret),
		visible(heading("Customer managed keys")),
		visible(button("Next page")),
	)
	if n := rows("the first page's rows"); n != 100 {
		t.Errorf("the first page shows %d keys, want 100", n)
	}
	browse(t, ctx, "the next page",
		click(button("Next page")),
		visible(`//span[normalize-space()="Page 2"]`),
	)
	if n := rows("the second page's rows"); n != 3 {
		t.Errorf("the second page shows %d keys, want 3", n)
	}
	browse(t, ctx, "back to the first page",
		click(button("Previous page")),
		visible(`//span[normalize-space()="Page 1"]`),
	)
	if n := rows("the first page's rows again"); n != 100 {
		t.Errorf("the first page shows %d keys again, want 100", n)
	}
}

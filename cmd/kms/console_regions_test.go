package main_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/chromedp/chromedp"
)

// chooseRegion picks a region in the console's header, as a user would.
func chooseRegion(region string) step {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](`(() => {
			const s = document.getElementById("region");
			s.value = "`+region+`";
			s.dispatchEvent(new Event("change", { bubbles: true }));
			return s.value === "`+region+`";
		})()`)(ctx, tg)
		return err
	})
}

// The console works in one region at a time, chosen in its header: the
// keys of another region are not listed, and a key created there is the
// chosen region's.
func TestConsoleRegions(t *testing.T) {
	ctx := newBrowser(t, 2*time.Minute)
	dir := t.TempDir()
	s := startDev(t, dir)
	id, secret := devCredentials(t, dir)
	sdk := testCtx(t)
	eu := s.clientIn(t, "eu-west-1")
	made, err := eu.CreateKey(sdk, &kms.CreateKeyInput{Description: aws.String("kept in Ireland")})
	noErr(t, err, "CreateKey in eu-west-1")
	euKey := aws.ToString(made.KeyMetadata.KeyId)

	browse(t, ctx, "sign in",
		chromedp.Navigate(s.URL+"/console/"),
		signInWithKey(id, secret),
		visible(heading("Customer managed keys")),
		visible(`//select[@id="region"]`),
	)
	if got := read(t, ctx, "the region", chromedp.Evaluate[string](`document.getElementById("region").value`)); got != "us-east-1" {
		t.Fatalf("the console starts in %q, want the server's default region us-east-1", got)
	}
	if text := pageText(ctx); strings.Contains(text, euKey) {
		t.Fatalf("us-east-1 lists the eu-west-1 key:\n%s", text)
	}
	browse(t, ctx, "switch to eu-west-1",
		chooseRegion("eu-west-1"),
		visible(`//*[contains(normalize-space(), "`+euKey+`")]`),
	)
	// A key made through the console in eu-west-1 is eu-west-1's.
	browse(t, ctx, "create a key in eu-west-1",
		click(button("Create key")),
		visible(heading("Create key")),
		click(choice("Symmetric")),
		click(button("Next")),
		typeInto(labelled("Description"), "made in the console in Ireland"),
		click(button("Next")),
		click(button("Next")),
		click(button("Next")),
		click(button("Finish")),
	)
	browse(t, ctx, "the new key's page", visible(`//h1[contains(., "-")]`))
	hash := read(t, ctx, "the new key's address", chromedp.Evaluate[string](`location.hash`))
	newKey := strings.TrimPrefix(hash, "#/keys/")
	d, err := eu.DescribeKey(sdk, &kms.DescribeKeyInput{KeyId: aws.String(newKey)})
	noErr(t, err, "DescribeKey in eu-west-1 of the key made in the console")
	if aws.ToString(d.KeyMetadata.Description) != "made in the console in Ireland" {
		t.Fatalf("the key made in the console: %+v", d.KeyMetadata)
	}
	if _, err := s.client(t).DescribeKey(sdk, &kms.DescribeKeyInput{KeyId: aws.String(newKey)}); apiErrorCode(err) != "NotFoundException" {
		t.Fatalf("the console's eu-west-1 key exists in us-east-1: %v", err)
	}
}

package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/openkms/kms/internal/audit"
)

// TestConsoleAuditShowsTheNewestOfALongTrail: the Audit page shows a
// trail's newest events however long it is. It read a chain from its
// start for at most 100 pages, so on a trail of more than 100,000
// records it showed the oldest ones as the "newest" and never the calls
// just made.
func TestConsoleAuditShowsTheNewestOfALongTrail(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startDev(t, dir)
	id, secret := devCredentials(t, dir)
	stopServer(t, s)

	// Continue the stopped server's chain with more records than the
	// page reads, all of them older than the calls that follow.
	l, err := audit.OpenDir(dir, 0)
	noErr(t, err, "open the trail")
	const seeded, workers = 100500, 32
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < seeded; i += workers {
				err := l.Append(&audit.Record{EventVersion: "1.11", EventName: "SeededCall", EventTime: "2026-01-01T00:00:00Z",
					EventSource: "kms.amazonaws.com", EventType: "AwsApiCall", AWSRegion: "us-east-1", RequestID: fmt.Sprint("seeded-", i),
					UserIdentity:      audit.UserIdentity{Type: "Root", ARN: "arn:aws:iam::111122223333:root", AccountID: "111122223333"},
					RequestParameters: json.RawMessage(`{}`), ResponseElements: json.RawMessage("null"), RecipientAccountID: "111122223333"})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	noErr(t, <-errs, "append")
	noErr(t, l.Close(), "close the trail")

	s = startDev(t, dir)
	cc := signInConsole(t, s, id, secret)
	if status := cc.post("call/kms/CreateKey", map[string]string{"Description": "the newest call"}, nil); status != http.StatusOK {
		t.Fatalf("CreateKey: %d", status)
	}
	ctx := newBrowser(t, 3*time.Minute)
	browse(t, ctx, "sign in",
		chromedp.Navigate(s.URL+"/console/"),
		signInWithKey(id, secret),
		visible(heading("Customer managed keys")),
	)
	// The page reads 100,000 records in pages: seconds of CPU alone.
	browseWithin(t, ctx, 2*time.Minute, "the Audit page of a long trail",
		goTo("#/audit"),
		visible(heading("Audit")),
		visible(`//td[normalize-space()="CreateKey"]`),
		visible(`//p[contains(., "Only the newest 100,000 records of the trail were read")]`),
	)
}

// TestConsoleAuditReadsABoundedShareOfLargeRecords: the Audit page reads
// at most 64 MiB of a chain's newest records, and still shows its newest
// events. It read the newest 100,000 records whatever their size, and any
// principal's records hold up to 64 KiB of parameters: gigabytes, more
// than a browser tab reads and keeps.
func TestConsoleAuditReadsABoundedShareOfLargeRecords(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startDev(t, dir)
	id, secret := devCredentials(t, dir)
	stopServer(t, s)

	// 70 MiB of records, each with 64 KiB of parameters, older than the
	// call that follows.
	l, err := audit.OpenDir(dir, 0)
	noErr(t, err, "open the trail")
	params, _ := json.Marshal(map[string]string{"description": strings.Repeat("x", 64<<10-32)})
	for i := range 1120 {
		err := l.Append(&audit.Record{EventVersion: "1.11", EventName: "LargeCall", EventTime: "2026-01-01T00:00:00Z",
			EventSource: "kms.amazonaws.com", EventType: "AwsApiCall", AWSRegion: "us-east-1", RequestID: fmt.Sprint("large-", i),
			UserIdentity:      audit.UserIdentity{Type: "Root", ARN: "arn:aws:iam::111122223333:root", AccountID: "111122223333"},
			RequestParameters: params, ResponseElements: json.RawMessage("null"), RecipientAccountID: "111122223333"})
		noErr(t, err, "append")
	}
	noErr(t, l.Close(), "close the trail")

	s = startDev(t, dir)
	cc := signInConsole(t, s, id, secret)
	if status := cc.post("call/kms/CreateKey", map[string]string{"Description": "the newest call"}, nil); status != http.StatusOK {
		t.Fatalf("CreateKey: %d", status)
	}
	ctx := newBrowser(t, 3*time.Minute)
	browse(t, ctx, "sign in",
		chromedp.Navigate(s.URL+"/console/"),
		signInWithKey(id, secret),
		visible(heading("Customer managed keys")),
	)
	// The page reads and parses 64 MiB: about 10 s of CPU alone.
	browseWithin(t, ctx, 2*time.Minute, "the Audit page of large records",
		goTo("#/audit"),
		visible(heading("Audit")),
		visible(`//td[normalize-space()="CreateKey"]`),
		visible(`//p[contains(., "Only the newest 64 MiB of records of the trail were read")]`),
	)
}

package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/openkms/kms/internal/api"
	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/testsupport"
)

// TestUnauthenticatedCallsHaveARecordBudget: a flood of unsigned calls
// fills the trail only up to its budget; calls whose caller is known are
// all recorded; the next record of an unsigned call counts those left out.
func TestUnauthenticatedCallsHaveARecordBudget(t *testing.T) {
	h, _ := benchHandler(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	trail, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trail.Close() })
	handler := h.(*api.Handler).WithAudit(audit.NewLogRecorder(trail), "us-east-1")
	clock := testsupport.NewClock(time.Now()) // the budget's; signatures are checked against the real time
	api.SetNow(handler, clock.Now)
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)

	call := func(sign bool, want int) {
		t.Helper()
		body := []byte("{}")
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
		req.Header.Set("X-Amz-Target", "TrentService.ListKeys")
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		if sign {
			sum := sha256.Sum256(body)
			err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: benchCreds.ID, SecretAccessKey: benchCreds.Secret},
				req, hex.EncodeToString(sum[:]), "kms", "us-east-1", time.Now())
			if err != nil {
				t.Fatal(err)
			}
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("status %d, want %d", resp.StatusCode, want)
		}
	}
	records := func() (unknown, known int, last *audit.Record) {
		t.Helper()
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		err = audit.Read(f, func(r *audit.Record, _ json.RawMessage) error {
			if r.UserIdentity.Type == "Unknown" {
				unknown++
				last = r
			} else {
				known++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return unknown, known, last
	}

	for range 130 {
		call(false, http.StatusBadRequest)
	}
	for range 3 {
		call(true, http.StatusOK)
	}
	unknown, known, _ := records()
	if unknown != 100 || known != 3 {
		t.Fatalf("after 130 unsigned calls and 3 signed: %d unsigned and %d signed recorded, want 100 and 3", unknown, known)
	}
	if got := handler.UnrecordedCalls(); got != 30 {
		t.Errorf("UnrecordedCalls %d, want 30", got)
	}
	clock.Advance(time.Second)
	call(false, http.StatusBadRequest)
	unknown, _, last := records()
	if unknown != 101 || last.UnrecordedBefore != 30 || last.ErrorCode != "MissingAuthenticationTokenException" {
		t.Errorf("a second later: %d unsigned recorded, the last %+v; want 101, unrecordedBefore 30", unknown, last)
	}
}

package console

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/testsupport"
)

// keyDirectory signs in any access key id of the form "AKIA" + account +
// user number, with any secret, as that user of that account.
type keyDirectory struct{ Directory }

func (keyDirectory) SignInWithAccessKey(_ context.Context, id, _ string) (*identity.Principal, error) {
	account, user := id[4:16], id[16:]
	return &identity.Principal{Type: identity.TypeIAMUser, Account: account, AccessKeyID: id, Username: "u" + user,
		ARN: "arn:aws:iam::" + account + ":user/u" + user}, nil
}

func (keyDirectory) Refresh(_ context.Context, p *identity.Principal) (*identity.Principal, error) {
	return p, nil
}

// quietBackend reads bodies and records nothing.
type quietBackend struct{ Backend }

func (quietBackend) ReadBody(_ http.ResponseWriter, r *http.Request, maxBytes int64, _ func(*http.Request) (string, error)) ([]byte, func(), error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBytes))
	return b, func() {}, err
}

func (quietBackend) RecordSignIn(*http.Request, string, *identity.Principal, string, error) error {
	return nil
}

// An account whose users sign in as many times as the table holds
// sessions (an administrator who made a thousand users, each signing in
// ten times) takes no more than its share: another account's users still
// sign in, and the account's sessions used the longest ago are the ones
// ended. Accounts together still fill the table.
func TestSessionTableShareOfAnAccount(t *testing.T) {
	t.Parallel()
	clock := testsupport.NewClock(start)
	h := New(Config{Backend: quietBackend{}, Directory: keyDirectory{}, Now: clock.Now})
	// A table of a tenth of the real size, each account's share a tenth
	// of it as in the real one, fills as the real one would.
	h.sessions.max, h.sessions.maxPerAccount = maxSessions/10, maxSessionsPerAccount/10
	tableSize, share := h.sessions.max, h.sessions.maxPerAccount
	signIn := func(account string, user int) (*http.Cookie, int) {
		t.Helper()
		body := fmt.Sprintf(`{"accessKeyId":"AKIA%s%04d","secretAccessKey":"x"}`, account, user)
		req := httptest.NewRequest(http.MethodPost, Prefix+"api/signin", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		for _, c := range w.Result().Cookies() {
			if c.Value != "" {
				return c, w.Code
			}
		}
		return nil, w.Code
	}
	live := func(c *http.Cookie) bool {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, Prefix+"api/session", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		req.AddCookie(c)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code == http.StatusOK
	}

	const other, mallory = "444455556666", "111122223333"
	victim, status := signIn(mallory, 9999)
	if status != http.StatusOK {
		t.Fatalf("the first sign-in: %d", status)
	}
	clock.Advance(time.Minute)
	for user := range tableSize / maxSessionsPerPrincipal {
		for range maxSessionsPerPrincipal {
			signIn(mallory, user)
		}
	}
	if c, status := signIn(other, 1); status != http.StatusOK || !live(c) {
		t.Fatalf("another account's sign-in after one account tried to fill the table: %d", status)
	}
	if n := h.sessions.accounts[mallory].n; n != share {
		t.Errorf("the account holds %d sessions; its share is %d", n, share)
	}
	if live(victim) {
		t.Error("the account's session idle the longest outlived its newer ones")
	}

	// Accounts together fill the table; the last is refused, as before.
	for a := range tableSize / share {
		account := fmt.Sprintf("%012d", 500000000000+a)
		for user := range share {
			signIn(account, user)
		}
	}
	if _, status := signIn("999999999999", 1); status != http.StatusServiceUnavailable {
		t.Errorf("a sign-in to a table full of live sessions: %d, want 503", status)
	}
	if len(h.sessions.m) != tableSize {
		t.Errorf("%d sessions held; the table holds %d", len(h.sessions.m), tableSize)
	}
}

package console

import (
	"testing"
	"time"

	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/testsupport"
)

var start = time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)

func TestSessionIdleTimeout(t *testing.T) {
	clock := testsupport.NewClock(start)
	s := newSessions(clock.Now, 30*time.Minute, 12*time.Hour)
	token, _ := s.create(&identity.Principal{ARN: "arn:aws:iam::111122223333:root"})
	clock.Advance(29 * time.Minute)
	if _, ok := s.get(token); !ok {
		t.Fatal("a session used 29 minutes after sign-in has ended")
	}
	// Each use starts the idle time again.
	clock.Advance(29 * time.Minute)
	if _, ok := s.get(token); !ok {
		t.Fatal("a session used every 29 minutes has ended")
	}
	clock.Advance(30 * time.Minute)
	if _, ok := s.get(token); ok {
		t.Fatal("a session idle for 30 minutes is still live")
	}
	// Once ended it stays ended, even if the clock went back.
	clock.Advance(-time.Hour)
	if _, ok := s.get(token); ok {
		t.Fatal("an ended session came back")
	}
}

func TestSessionAbsoluteTimeout(t *testing.T) {
	clock := testsupport.NewClock(start)
	s := newSessions(clock.Now, 30*time.Minute, 12*time.Hour)
	token, _ := s.create(&identity.Principal{})
	for elapsed := time.Duration(0); elapsed < 12*time.Hour-10*time.Minute; elapsed += 10 * time.Minute {
		clock.Advance(10 * time.Minute)
		if _, ok := s.get(token); !ok {
			t.Fatalf("a session in use ended %v after sign-in", elapsed+10*time.Minute)
		}
	}
	clock.Set(start.Add(12 * time.Hour))
	if _, ok := s.get(token); ok {
		t.Fatal("a session in use for 12 hours is still live")
	}
}

func TestSessionTokens(t *testing.T) {
	clock := testsupport.NewClock(start)
	s := newSessions(clock.Now, time.Hour, time.Hour)
	t1, c1 := s.create(&identity.Principal{ARN: "a"})
	t2, c2 := s.create(&identity.Principal{ARN: "b"})
	if t1 == t2 || c1 == c2 || t1 == c1 || len(t1) < 40 {
		t.Fatalf("tokens are not distinct random values: %q %q %q %q", t1, t2, c1, c2)
	}
	for _, bad := range []string{"", t1 + "x", t1[:len(t1)-1], c1} {
		if _, ok := s.get(bad); ok {
			t.Fatalf("token %q finds a session", bad)
		}
	}
	se, ok := s.get(t1)
	if !ok || se.principal.ARN != "a" {
		t.Fatal("the first session is not found by its token")
	}
	if !se.validCSRF(c1) || se.validCSRF(c2) || se.validCSRF("") || se.validCSRF(t1) {
		t.Fatal("CSRF check accepts another session's token, the cookie token or nothing")
	}
	s.delete(t1)
	if _, ok := s.get(t1); ok {
		t.Fatal("a signed-out session is still live")
	}
	if _, ok := s.get(t2); !ok {
		t.Fatal("signing one session out ended another")
	}
}

func TestSessionTableIsBounded(t *testing.T) {
	clock := testsupport.NewClock(start)
	s := newSessions(clock.Now, time.Hour, time.Hour)
	first, _ := s.create(&identity.Principal{})
	for i := 0; i < maxSessions; i++ {
		clock.Advance(time.Millisecond)
		s.create(&identity.Principal{})
	}
	if len(s.m) != maxSessions {
		t.Fatalf("%d sessions held, want at most %d", len(s.m), maxSessions)
	}
	if _, ok := s.get(first); ok {
		t.Fatal("the oldest session survived the table filling up")
	}
}

func TestSignInLimiter(t *testing.T) {
	clock := testsupport.NewClock(start)
	l := newSignInLimiter(clock.Now)
	for i := 0; i < maxFailuresPerName; i++ {
		if !l.allow("alice", "10.0.0.1") {
			t.Fatalf("refused after %d failures", i)
		}
		l.failed("alice", "10.0.0.1")
	}
	if l.allow("alice", "10.0.0.1") {
		t.Fatal("allowed past the limit for a name")
	}
	if l.allow("alice", "10.0.0.2") {
		t.Fatal("the limit for a name was escaped by changing address")
	}
	if !l.allow("bob", "10.0.0.1") {
		t.Fatal("another name from the same address is refused below the address limit")
	}
	clock.Advance(signInWindow - time.Second)
	if l.allow("alice", "10.0.0.1") {
		t.Fatal("allowed before the window has passed")
	}
	clock.Advance(time.Second)
	if !l.allow("alice", "10.0.0.1") {
		t.Fatal("still refused once the window has passed")
	}

	// One address trying many names.
	for i := 0; i < maxFailuresPerAddress; i++ {
		l.failed(string(rune('a'+i%26))+"-user", "10.9.9.9")
	}
	if l.allow("fresh-name", "10.9.9.9") {
		t.Fatal("allowed past the limit for an address")
	}

	// A success forgets the name's failures.
	l.failed("carol", "10.0.0.3")
	l.succeeded("carol")
	if got := len(l.recent("name:carol", clock.Now())); got != 0 {
		t.Fatalf("%d failures remembered after a success", got)
	}
}

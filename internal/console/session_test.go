package console

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/policy"
	"github.com/openkms/kms/internal/testsupport"
)

var start = time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)

func TestSessionIdleTimeout(t *testing.T) {
	t.Parallel()
	clock := testsupport.NewClock(start)
	s := newSessions(clock.Now, 30*time.Minute, 12*time.Hour)
	token, _, _ := s.create(&identity.Principal{ARN: "arn:aws:iam::111122223333:root"})
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
	t.Parallel()
	clock := testsupport.NewClock(start)
	s := newSessions(clock.Now, 30*time.Minute, 12*time.Hour)
	token, _, _ := s.create(&identity.Principal{})
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
	t.Parallel()
	clock := testsupport.NewClock(start)
	s := newSessions(clock.Now, time.Hour, time.Hour)
	t1, c1, _ := s.create(&identity.Principal{ARN: "a"})
	t2, c2, _ := s.create(&identity.Principal{ARN: "b"})
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
	t.Parallel()
	clock := testsupport.NewClock(start)
	s := newSessions(clock.Now, time.Hour, time.Hour)
	victim, _, _ := s.create(&identity.Principal{ARN: "arn:aws:iam::111122223333:root"})

	// One principal signing in again and again ends only its own oldest
	// sessions.
	mallory := &identity.Principal{ARN: "arn:aws:iam::111122223333:user/mallory"}
	var hers []string
	for i := 0; i < 3*maxSessions; i++ {
		clock.Advance(time.Millisecond)
		tok, _, ok := s.create(mallory)
		if !ok {
			t.Fatalf("sign-in %d refused", i)
		}
		hers = append(hers, tok)
	}
	if n := len(s.m); n != 1+maxSessionsPerPrincipal {
		t.Fatalf("%d sessions held, want %d", n, 1+maxSessionsPerPrincipal)
	}
	if _, ok := s.get(victim); !ok {
		t.Fatal("another principal's sign-ins ended the victim's session")
	}
	if _, ok := s.get(hers[len(hers)-maxSessionsPerPrincipal]); !ok {
		t.Fatal("the principal's newest sessions did not survive")
	}
	if _, ok := s.get(hers[len(hers)-maxSessionsPerPrincipal-1]); ok {
		t.Fatal("the principal holds more than its share")
	}
	// The sessions of a role count once, whatever their session names.
	for i := 0; i < 2*maxSessionsPerPrincipal; i++ {
		s.create(&identity.Principal{ARN: fmt.Sprintf("arn:aws:sts::111122223333:assumed-role/r/s%d", i), RoleARN: "arn:aws:iam::111122223333:role/r"})
	}
	if n := len(s.m); n != 1+2*maxSessionsPerPrincipal {
		t.Fatalf("%d sessions held after a role's, want %d", n, 1+2*maxSessionsPerPrincipal)
	}

	// A table full of live sessions (of several accounts, each within its
	// share) refuses new ones rather than ending them; expired ones make
	// room.
	for i := len(s.m); i < maxSessions; i++ {
		account := fmt.Sprintf("5000000000%02d", i%(maxSessions/maxSessionsPerAccount))
		s.create(&identity.Principal{Account: account, ARN: fmt.Sprintf("arn:aws:iam::%s:user/u%d", account, i)})
	}
	if _, _, ok := s.create(&identity.Principal{ARN: "arn:aws:iam::111122223333:user/late"}); ok {
		t.Fatal("a full table took another session")
	}
	if _, ok := s.get(victim); !ok {
		t.Fatal("a full table ended a live session")
	}
	clock.Advance(time.Hour)
	if _, _, ok := s.create(&identity.Principal{ARN: "arn:aws:iam::111122223333:user/late"}); !ok || len(s.m) != 1 {
		t.Fatalf("expired sessions did not make room: ok %v, %d held", ok, len(s.m))
	}
	// The indexes of owners and accounts forget the sessions ended.
	if len(s.owners) != 1 || len(s.owners["arn:aws:iam::111122223333:user/late"]) != 1 || len(s.accounts) != 1 {
		t.Fatalf("%d owners and %d accounts indexed for the one session", len(s.owners), len(s.accounts))
	}
}

func TestSignInLimiter(t *testing.T) {
	t.Parallel()
	clock := testsupport.NewClock(start)
	l := newSignInLimiter(clock.Now)
	try := func(name, addr string) bool {
		if !l.begin(name, addr) {
			return false
		}
		l.end(name, addr, false, false)
		return true
	}
	fail := func(name, addr string) {
		t.Helper()
		if !l.begin(name, addr) {
			t.Fatalf("%s from %s refused", name, addr)
		}
		l.end(name, addr, true, false)
	}
	for i := 0; i < maxFailuresPerName; i++ {
		fail("alice", "10.0.0.1")
	}
	if try("alice", "10.0.0.1") {
		t.Fatal("allowed past the limit for a name")
	}
	if try("alice", "10.0.0.2") {
		t.Fatal("the limit for a name was escaped by changing address")
	}
	if !try("bob", "10.0.0.1") {
		t.Fatal("another name from the same address is refused below the address limit")
	}
	clock.Advance(signInWindow - time.Second)
	if try("alice", "10.0.0.1") {
		t.Fatal("allowed before the window has passed")
	}
	clock.Advance(time.Second)
	if !try("alice", "10.0.0.1") {
		t.Fatal("still refused once the window has passed")
	}

	// One address trying many names.
	for i := 0; i < maxFailuresPerAddress; i++ {
		fail(fmt.Sprintf("user-%d", i), "10.9.9.9")
	}
	if try("fresh-name", "10.9.9.9") {
		t.Fatal("allowed past the limit for an address")
	}
	// An IPv6 client counts by its /64.
	for i := 0; i < maxFailuresPerAddress; i++ {
		fail(fmt.Sprintf("v6-%d", i), fmt.Sprintf("2001:db8:1:2::%x", i+1))
	}
	if try("fresh-name", "2001:db8:1:2:ffff::9") {
		t.Fatal("an IPv6 client escaped the address limit by changing its interface id")
	}
	if !try("fresh-name", "2001:db8:1:3::1") {
		t.Fatal("another /64 is refused")
	}

	// A success forgets the name's failures; an attempt that was neither
	// keeps them.
	fail("carol", "10.0.0.3")
	l.begin("carol", "10.0.0.3")
	l.end("carol", "10.0.0.3", false, false)
	if got := len(l.entries[nameKey("carol")].failures); got != 1 {
		t.Fatalf("%d failures after an attempt that was neither, want 1", got)
	}
	l.begin("carol", "10.0.0.3")
	l.end("carol", "10.0.0.3", false, true)
	if e := l.entries[nameKey("carol")]; e != nil {
		t.Fatalf("%d failures remembered after a success", len(e.failures))
	}

	// Refused attempts keep the limit reached, in bounded memory.
	for i := 0; i < 1000; i++ {
		if l.begin("alice", "10.0.0.1") {
			l.end("alice", "10.0.0.1", true, false)
		} else {
			l.refused("alice", "10.0.0.1")
		}
	}
	if n := len(l.entries[nameKey("alice")].failures); n != maxFailuresPerName {
		t.Fatalf("%d failures kept for a name, want at most %d", n, maxFailuresPerName)
	}
}

// TestSignInLimiterCountsAttemptsInFlight: attempts begun at once, before
// any has failed, count against the limit.
func TestSignInLimiterCountsAttemptsInFlight(t *testing.T) {
	t.Parallel()
	l := newSignInLimiter(testsupport.NewClock(start).Now)
	var wg sync.WaitGroup
	var allowed atomic.Int32
	release := make(chan struct{})
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if l.begin("dave", "10.0.0.5") {
				allowed.Add(1)
				<-release
				l.end("dave", "10.0.0.5", true, false)
			}
		}()
	}
	for allowed.Load() < maxFailuresPerName {
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if n := allowed.Load(); n != maxFailuresPerName {
		t.Fatalf("%d of 200 simultaneous attempts were checked, want %d", n, maxFailuresPerName)
	}
	if l.begin("dave", "10.0.0.6") {
		t.Fatal("allowed after the limit was reached in flight")
	}
}

// The sessions held take at most maxBytes together, as estimated, however
// few they are: a principal with large policies counts for more, a
// sign-in that would pass the bound is refused (once the expired sessions
// are gone), and a session whose principal grows past it when read again
// is ended, not another's.
func TestSessionTableBytesBounded(t *testing.T) {
	t.Parallel()
	clock := testsupport.NewClock(start)
	s := newSessions(clock.Now, time.Hour, time.Hour)
	doc := `{"Version":"2012-10-17","Statement":[` + strings.Repeat(`{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"},`, 150) +
		`{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}]}`
	pol, err := policy.ParseIdentity(doc)
	if err != nil {
		t.Fatal(err)
	}
	big := func(i int) *identity.Principal {
		return &identity.Principal{ARN: fmt.Sprintf("arn:aws:iam::111122223333:user/big%d", i), Policies: []*policy.Policy{pol}}
	}
	small := &identity.Principal{ARN: "arn:aws:iam::111122223333:user/small"}
	growing := &identity.Principal{ARN: "arn:aws:iam::111122223333:user/grower"}
	s.maxBytes = 5*memSize(big(0)) + memSize(small) + memSize(growing)
	check := func(what string) {
		t.Helper()
		var sum int64
		for _, se := range s.m {
			sum += memSize(se.principal)
		}
		if sum > s.maxBytes || sum != s.bytes {
			t.Fatalf("%s: %d sessions of %d bytes (accounted %d); want at most %d", what, len(s.m), sum, s.bytes, s.maxBytes)
		}
	}
	victim, _, ok := s.create(small)
	if !ok {
		t.Fatal("the first sign-in was refused")
	}
	grower, _, _ := s.create(growing)
	n := 0
	for i := range 10 {
		if _, _, ok := s.create(big(i)); ok {
			n++
		}
		check(fmt.Sprintf("after sign-in %d", i+1))
	}
	if n != 5 {
		t.Errorf("%d sessions with large policies taken; room for 5", n)
	}
	// The grower's policies grow past the room left: its session ends.
	if s.update(grower, &identity.Principal{ARN: "arn:aws:iam::111122223333:user/grower", Policies: []*policy.Policy{pol}}) {
		t.Error("a session whose principal no longer fits went on")
	}
	check("after the grower was read again")
	if _, ok := s.get(grower); ok {
		t.Error("the grower's session is still live")
	}
	if _, ok := s.get(victim); !ok {
		t.Error("another principal's growth ended the victim's session")
	}
	if !s.update(victim, small) {
		t.Error("a session read again at its size was ended")
	}
	// Expired sessions make room.
	clock.Advance(time.Hour)
	if _, _, ok := s.create(big(99)); !ok {
		t.Fatal("expired sessions did not make room")
	}
	check("after the expired sessions went")
}

// An account's sessions take at most its share of the table's bytes: a
// sign-in past it ends the account's session idle the longest, one larger
// than the whole share is refused, and a session whose principal grows
// past it when read again is ended; another account's are not touched.
func TestSessionShareBytesOfAnAccount(t *testing.T) {
	t.Parallel()
	clock := testsupport.NewClock(start)
	s := newSessions(clock.Now, time.Hour, time.Hour)
	user := func(account, name string) *identity.Principal {
		return &identity.Principal{Account: account, ARN: "arn:aws:iam::" + account + ":user/" + name}
	}
	s.maxBytesPerAccount = 2 * memSize(user("111122223333", "a"))
	other, _, _ := s.create(user("444455556666", "o"))
	first, _, _ := s.create(user("111122223333", "a"))
	clock.Advance(time.Second)
	second, _, _ := s.create(user("111122223333", "b"))
	clock.Advance(time.Second)
	if _, ok := s.get(second); !ok {
		t.Fatal("a session within the account's share ended")
	}
	third, _, ok := s.create(user("111122223333", "c"))
	if !ok {
		t.Fatal("a sign-in past the account's share was refused, not made room for")
	}
	if _, ok := s.get(first); ok {
		t.Error("the account's session idle the longest outlived a sign-in past its share")
	}
	grown := user("111122223333", "b")
	grown.Username = strings.Repeat("x", 1000) // takes more than the share's room
	if s.update(second, grown) {
		t.Error("a session whose principal grew past its account's share went on")
	}
	if _, ok := s.get(third); !ok {
		t.Error("a session that grew ended another of its account")
	}
	big := user("111122223333", "big")
	big.Username = strings.Repeat("x", int(s.maxBytesPerAccount))
	if _, _, ok := s.create(big); ok {
		t.Error("a session larger than an account's share was taken")
	}
	if _, ok := s.get(other); !ok {
		t.Error("another account's session ended")
	}
}

package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"slices"
	"sync"
	"time"

	"github.com/openkms/kms/internal/identity"
)

// Default session lifetimes: a session ends after IdleTimeout without a
// request, and AbsoluteTimeout after sign-in whatever its use.
const (
	DefaultIdleTimeout     = 30 * time.Minute
	DefaultAbsoluteTimeout = 12 * time.Hour
)

// maxSessions bounds the sessions held in memory, and maxSessionBytes
// their memory, as estimated (session.memSize: a principal's parsed
// policies may take some 200 KB, or 600 KB of wildcard patterns): past either, signing in drops the
// expired sessions and, if all are live, is refused. Each principal (a
// role counting once for all its sessions) holds at most
// maxSessionsPerPrincipal: past that, its own oldest is ended. Each
// account holds at most a tenth of the table, maxSessionsPerAccount and
// maxSessionBytesPerAccount: past that, the account's session idle the
// longest is ended, never another account's. So no principal can sign
// another out by signing in many times, no account (whose administrator
// may make thousands of users) can fill the table and keep other accounts
// from signing in, and no principal can sign another account's out by
// growing its policies: a session whose principal, read again, would take
// its account's share or the table past its bytes is ended instead.
const (
	maxSessions               = 10000
	maxSessionBytes           = 256 << 20
	maxSessionsPerPrincipal   = 10
	maxSessionsPerAccount     = maxSessions / 10
	maxSessionBytesPerAccount = maxSessionBytes / 10
)

// session is a signed-in principal. The cookie holds a random token; the
// table is keyed by its SHA-256, so that the table alone does not let
// anyone act as a session.
type session struct {
	principal *identity.Principal
	csrf      string
	created   time.Time
	lastSeen  time.Time
	account   string // the principal's, whose share it counts against
	owner     string // sessionOwner(principal), whose sessions it counts among
	size      int64  // memSize, while it is in the table
}

// sessionOverhead is what a session takes beside its principal, rounded up.
const sessionOverhead = 256

// memSize estimates, from above, the bytes a session of p takes.
func memSize(p *identity.Principal) int64 { return sessionOverhead + p.MemSize() }

// sessions is the table of live sessions, in memory: a restart of the
// server signs everyone out. It is safe for concurrent use.
type sessions struct {
	now      func() time.Time
	idle     time.Duration
	absolute time.Duration
	max      int   // maxSessions
	maxBytes int64 // maxSessionBytes
	// An account's share: maxSessionsPerAccount, maxSessionBytesPerAccount.
	maxPerAccount      int
	maxBytesPerAccount int64

	mu       sync.Mutex
	m        map[[32]byte]*session
	bytes    int64             // the memory of the sessions in m, as estimated
	accounts map[string]*usage // what each account's sessions in m take
	// owners holds the keys of each owner's sessions in m, oldest first:
	// a sign-in finds its owner's count and oldest session without
	// reading the whole table under mu.
	owners map[string][][32]byte
}

// usage is what an account's sessions take of the table.
type usage struct {
	n     int
	bytes int64
	keys  map[[32]byte]struct{} // the account's sessions in m
}

func newSessions(now func() time.Time, idle, absolute time.Duration) *sessions {
	return &sessions{now: now, idle: idle, absolute: absolute, max: maxSessions, maxBytes: maxSessionBytes,
		maxPerAccount: maxSessionsPerAccount, maxBytesPerAccount: maxSessionBytesPerAccount,
		m: make(map[[32]byte]*session), accounts: make(map[string]*usage), owners: make(map[string][][32]byte)}
}

// full reports whether a session of size would take the table past its
// bounds. s.mu is held.
func (s *sessions) full(size int64) bool {
	return len(s.m) >= s.max || s.bytes+size > s.maxBytes
}

// overShare reports whether a session of size would take account past
// its share of the table. s.mu is held.
func (s *sessions) overShare(account string, size int64) bool {
	var u usage
	if a := s.accounts[account]; a != nil {
		u = *a
	}
	return u.n >= s.maxPerAccount || u.bytes+size > s.maxBytesPerAccount
}

// add puts se in the table as k. s.mu is held.
func (s *sessions) add(k [32]byte, se *session) {
	s.m[k] = se
	s.bytes += se.size
	u := s.accounts[se.account]
	if u == nil {
		u = &usage{keys: make(map[[32]byte]struct{})}
		s.accounts[se.account] = u
	}
	u.n++
	u.bytes += se.size
	u.keys[k] = struct{}{}
	s.owners[se.owner] = append(s.owners[se.owner], k)
}

// resize sets the size of the session se, in the table. s.mu is held.
func (s *sessions) resize(se *session, size int64) {
	s.bytes += size - se.size
	s.accounts[se.account].bytes += size - se.size
	se.size = size
}

// remove drops the session k, if any. s.mu is held.
func (s *sessions) remove(k [32]byte) {
	se, ok := s.m[k]
	if !ok {
		return
	}
	delete(s.m, k)
	s.bytes -= se.size
	u := s.accounts[se.account]
	delete(u.keys, k)
	if u.n--; u.n == 0 {
		delete(s.accounts, se.account)
	} else {
		u.bytes -= se.size
	}
	owned := slices.DeleteFunc(s.owners[se.owner], func(o [32]byte) bool { return o == k })
	if len(owned) == 0 {
		delete(s.owners, se.owner)
	} else {
		s.owners[se.owner] = owned
	}
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session for p and returns its cookie token and its
// CSRF token; ok is false if the table is full of live sessions, or if
// the session alone would take more than an account's share. It ends p's
// own oldest session if p holds maxSessionsPerPrincipal, and the sessions
// of p's account idle the longest while the account would hold more than
// its share.
func (s *sessions) create(p *identity.Principal) (token, csrf string, ok bool) {
	token, csrf = randomToken(), randomToken()
	now := s.now()
	who := sessionOwner(p)
	size := memSize(p)
	if size > s.maxBytesPerAccount {
		return "", "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.full(size) {
		s.sweepLocked(now)
	} else if s.overShare(p.Account, size) {
		s.sweepAccountLocked(p.Account, now)
	}
	for len(s.owners[who]) >= maxSessionsPerPrincipal {
		s.remove(s.owners[who][0])
	}
	for s.overShare(p.Account, size) {
		if !s.endIdlest(p.Account) {
			break
		}
	}
	if s.full(size) {
		return "", "", false
	}
	s.add(sha256.Sum256([]byte(token)), &session{principal: p, csrf: csrf, created: now, lastSeen: now, account: p.Account, owner: who, size: size})
	return token, csrf, true
}

// endIdlest ends the session of account that was used the longest ago,
// and reports whether the account had one. s.mu is held.
func (s *sessions) endIdlest(account string) bool {
	var idlest [32]byte
	found := false
	if u := s.accounts[account]; u != nil {
		for k := range u.keys {
			if v := s.m[k]; !found || v.lastSeen.Before(s.m[idlest].lastSeen) {
				idlest, found = k, true
			}
		}
	}
	if found {
		s.remove(idlest)
	}
	return found
}

// sessionOwner is who a session counts against: the role of a role
// session (whatever its session name), else the principal.
func sessionOwner(p *identity.Principal) string {
	if p.RoleARN != "" {
		return p.RoleARN
	}
	return p.ARN
}

// get returns a copy of the live session of token and marks it used. An
// expired session is removed and not returned.
func (s *sessions) get(token string) (*session, bool) {
	if token == "" {
		return nil, false
	}
	k := sha256.Sum256([]byte(token))
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	se, ok := s.m[k]
	if !ok {
		return nil, false
	}
	if s.expired(se, now) {
		s.remove(k)
		return nil, false
	}
	se.lastSeen = now
	cp := *se
	return &cp, true
}

// update replaces the principal of a live session (after it was read
// again from the directory), and reports whether the session goes on: one
// whose principal now takes its account's share or the table past their
// bytes is ended.
func (s *sessions) update(token string, p *identity.Principal) bool {
	k := sha256.Sum256([]byte(token))
	size := memSize(p)
	s.mu.Lock()
	defer s.mu.Unlock()
	se, ok := s.m[k]
	if !ok {
		return false
	}
	if s.bytes-se.size+size > s.maxBytes || s.accounts[se.account].bytes-se.size+size > s.maxBytesPerAccount {
		s.remove(k)
		return false
	}
	s.resize(se, size)
	se.principal = p
	return true
}

func (s *sessions) delete(token string) {
	k := sha256.Sum256([]byte(token))
	s.mu.Lock()
	s.remove(k)
	s.mu.Unlock()
}

func (s *sessions) expired(se *session, now time.Time) bool {
	return !now.Before(se.lastSeen.Add(s.idle)) || !now.Before(se.created.Add(s.absolute))
}

func (s *sessions) sweepLocked(now time.Time) {
	for k, v := range s.m {
		if s.expired(v, now) {
			s.remove(k)
		}
	}
}

// sweepAccountLocked removes the expired sessions of account: all that
// can make room in its share. s.mu is held.
func (s *sessions) sweepAccountLocked(account string, now time.Time) {
	if u := s.accounts[account]; u != nil {
		for k := range u.keys {
			if s.expired(s.m[k], now) {
				s.remove(k)
			}
		}
	}
}

// validCSRF reports whether got is the session's CSRF token.
func (se *session) validCSRF(got string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(se.csrf)) == 1
}

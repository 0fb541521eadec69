package api

import (
	"errors"
	"io"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBodyMemory is how many bytes of request bodies a Handler holds
// at once while they are being received, before their signatures can be
// checked.
const DefaultBodyMemory = 64 << 20

// bodyBudget bounds the memory of request bodies being received. A body is
// read into a buffer that grows as its bytes arrive (never to the length a
// client merely announces), and the buffer's size is taken from the budget; a
// request that finds the budget spent is refused at once with
// ThrottlingException, which SDKs retry.
//
// Before a signature can be verified the whole body must be read, so the
// budget is what stands between unauthenticated callers and the memory of
// the server. Two rules keep any one caller from spending it:
//   - A body grows past firstRead only once its signature has passed every
//     check that needs no body (Directory.Precheck): a caller with no
//     valid access key holds at most firstRead per connection, and the
//     connection limit bounds those (4096 × 8 KiB is half the default).
//   - What a body holds past firstRead is charged to its access key and to
//     its caller's address too (bodySource), and neither may hold more
//     than a quarter of the budget at once: access key ids are not
//     secret, and one host with four of them would otherwise hold it all.
type bodyBudget struct {
	max   int64
	inUse atomic.Int64

	mu       sync.Mutex
	byKey    map[string]int64 // bytes past firstRead held per access key
	bySource map[string]int64 // and per caller's address
}

// keyShare is the part of the budget one access key's bodies, or one
// address's, may hold.
const keyShare = 4

func newBodyBudget(max int64) *bodyBudget {
	return &bodyBudget{max: max, byKey: map[string]int64{}, bySource: map[string]int64{}}
}

func (b *bodyBudget) take(n int64) bool {
	if b.inUse.Add(n) > b.max {
		b.inUse.Add(-n)
		return false
	}
	return true
}

func (b *bodyBudget) give(n int64) { b.inUse.Add(-n) }

// takeFor takes n bytes for a body signed with the access key akid and
// sent from src ("": an address without a share, bodySource).
func (b *bodyBudget) takeFor(akid, src string, n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	share := b.max / keyShare
	if b.byKey[akid]+n > share || (src != "" && b.bySource[src]+n > share) || !b.take(n) {
		return false
	}
	b.byKey[akid] += n
	if src != "" {
		b.bySource[src] += n
	}
	return true
}

func (b *bodyBudget) giveFor(akid, src string, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.byKey[akid] -= n; b.byKey[akid] <= 0 {
		delete(b.byKey, akid)
	}
	if src != "" {
		if b.bySource[src] -= n; b.bySource[src] <= 0 {
			delete(b.bySource, src)
		}
	}
	b.give(n)
}

// bodySource names the share of the body budget of r's caller: its
// address (the client's, behind a trusted proxy), or its /64 for IPv6,
// where one host may hold a whole prefix. Loopback callers have none,
// as they have no connection limit: a local proxy the server was not
// told to trust would make every caller one.
func bodySource(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	a := ap.Addr().Unmap().WithZone("")
	switch {
	case a.IsLoopback():
		return ""
	case a.Is4():
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// BodyBytes is the number of bytes of request bodies being received, held
// in memory within the bound WithBodyMemory sets.
func (h *Handler) BodyBytes() int64 { return h.bodies.inUse.Load() }

// firstRead is the size of a body buffer before the body has shown it
// needs more: it holds any usual KMS request whole.
const firstRead = 8 << 10

// unknownBodyTime is how long a body whose caller Directory.Precheck
// refuses may take to arrive (WithReadTimeout).
const unknownBodyTime = 5 * time.Second

// readBody reads r's body, at most MaxBodyBytes, within the budget. A body
// longer than firstRead is received further only if h.precheck passes: it
// returns the access key the rest is charged to, or the error that
// refuses the request. With w and a read timeout (WithReadTimeout), a body
// that has not arrived by its first read must come within
// unknownBodyTime unless its caller passes h.precheck. The caller calls
// release once it no longer reads the body's bytes.
func (h *Handler) readBody(r *http.Request, w http.ResponseWriter) (body []byte, release func(), err error) {
	return h.readBodyOf(r, w, MaxBodyBytes, h.precheck)
}

// ReadBody reads the body of a request to another front end of the same
// server (the web console), at most maxBytes bytes, as the body of a signed
// request is read: within the same memory (WithBodyMemory) and time
// (WithReadTimeout). who stands for the signature's precheck: it names the
// caller the front end has authenticated, to whose share the body's bytes
// past the first 8 KiB are charged, or returns the error that refuses a
// caller it does not know once its body needs more than those 8 KiB or
// has not arrived within unknownBodyTime. The errors are *CallError, who's
// as it returned them. The caller calls release once it no longer reads
// the body's bytes.
func (h *Handler) ReadBody(w http.ResponseWriter, r *http.Request, maxBytes int64, who func(*http.Request) (string, error)) (body []byte, release func(), err error) {
	body, release, err = h.readBodyOf(r, w, maxBytes, who)
	if err == nil {
		return body, release, nil
	}
	ce := &CallError{}
	switch {
	case errors.As(err, &ce):
	case err == errTooLarge:
		ce = callError(errBodyTooLarge(maxBytes), false)
	default:
		ce = callError(err, false)
	}
	return nil, release, ce
}

// readBodyOf is readBody for bodies of at most maxBytes bytes, with precheck
// in place of h.precheck.
func (h *Handler) readBodyOf(r *http.Request, w http.ResponseWriter, maxBytes int64, precheck func(*http.Request) (string, error)) (body []byte, release func(), err error) {
	var held, keyHeld int64 // held: the whole buffer; keyHeld: its part past firstRead
	var akid, src string
	release = func() {
		if keyHeld > 0 {
			h.bodies.giveFor(akid, src, keyHeld)
		}
		h.bodies.give(held - keyHeld)
		held, keyHeld = 0, 0
	}
	if r.ContentLength > maxBytes {
		return nil, release, errTooLarge
	}
	limit := maxBytes + 1 // one more, to see a body that is too long
	if r.ContentLength >= 0 {
		limit = r.ContentLength
	}
	// The first read gets unknownBodyTime: a usual body is already there.
	// One that is not waits longer only for a caller the directory knows.
	var rc *http.ResponseController
	var started time.Time
	var prechecked bool
	var precheckErr error
	if w != nil && h.readTimeout > 0 && r.ContentLength != 0 {
		started = time.Now()
		rc = http.NewResponseController(w)
		rc.SetReadDeadline(started.Add(min(unknownBodyTime, h.readTimeout)))
	}
	var buf []byte
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) == limit {
				if r.ContentLength >= 0 {
					break // exactly the announced length has arrived
				}
				return nil, release, errTooLarge
			}
			size := min(max(2*int64(cap(buf)), firstRead), limit)
			if held == 0 {
				if !h.bodies.take(size) {
					return nil, release, errBodiesBusy
				}
				held = size
			} else {
				if precheckErr != nil {
					return nil, release, precheckErr
				}
				if akid == "" {
					if akid, err = precheck(r); err != nil {
						return nil, release, err
					}
					src = bodySource(r)
				}
				if !h.bodies.takeFor(akid, src, size-held) {
					return nil, release, errBodiesBusy
				}
				keyHeld += size - held
				held = size
			}
			grown := make([]byte, len(buf), size)
			copy(grown, buf)
			buf = grown
		}
		if rc != nil && len(buf) > 0 && !prechecked {
			// More is to come after the first read: wait for it only
			// for a caller the directory knows.
			prechecked = true
			if akid, precheckErr = precheck(r); precheckErr == nil {
				src = bodySource(r)
				rc.SetReadDeadline(started.Add(h.readTimeout))
			} else {
				akid = ""
				w.Header().Set("Connection", "close")
			}
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil && !errors.Is(err, io.EOF) && precheckErr != nil {
			return nil, release, precheckErr // its time ran out: it is refused for who sent it
		}
		if errors.Is(err, io.EOF) {
			if r.ContentLength >= 0 && int64(len(buf)) < r.ContentLength {
				return nil, release, errBodyUnreadable
			}
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, release, errTooLarge
			}
			return nil, release, errBodyUnreadable
		}
	}
	if int64(len(buf)) > maxBytes {
		return nil, release, errTooLarge
	}
	return buf, release, nil
}

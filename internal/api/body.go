package api

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
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
//   - What a body holds past firstRead is charged to its access key too,
//     and no key may hold more than a quarter of the budget at once.
type bodyBudget struct {
	max   int64
	inUse atomic.Int64

	mu    sync.Mutex
	byKey map[string]int64 // bytes past firstRead held per access key
}

// keyShare is the part of the budget one access key's bodies may hold.
const keyShare = 4

func newBodyBudget(max int64) *bodyBudget { return &bodyBudget{max: max, byKey: map[string]int64{}} }

func (b *bodyBudget) take(n int64) bool {
	if b.inUse.Add(n) > b.max {
		b.inUse.Add(-n)
		return false
	}
	return true
}

func (b *bodyBudget) give(n int64) { b.inUse.Add(-n) }

// takeFor takes n bytes for a body signed with the access key akid.
func (b *bodyBudget) takeFor(akid string, n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.byKey[akid]+n > b.max/keyShare || !b.take(n) {
		return false
	}
	b.byKey[akid] += n
	return true
}

func (b *bodyBudget) giveFor(akid string, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.byKey[akid] -= n; b.byKey[akid] <= 0 {
		delete(b.byKey, akid)
	}
	b.give(n)
}

// firstRead is the size of a body buffer before the body has shown it
// needs more: it holds any usual KMS request whole.
const firstRead = 8 << 10

// readBody reads r's body, at most MaxBodyBytes, within the budget. A body
// longer than firstRead is received further only if h.precheck passes: it
// returns the access key the rest is charged to, or the error that
// refuses the request. The caller calls release once it no longer reads
// the body's bytes.
func (h *Handler) readBody(r *http.Request) (body []byte, release func(), err error) {
	var held, keyHeld int64 // held: the whole buffer; keyHeld: its part past firstRead
	var akid string
	release = func() {
		if keyHeld > 0 {
			h.bodies.giveFor(akid, keyHeld)
		}
		h.bodies.give(held - keyHeld)
		held, keyHeld = 0, 0
	}
	if r.ContentLength > MaxBodyBytes {
		return nil, release, errTooLarge
	}
	limit := int64(MaxBodyBytes + 1) // one more, to see a body that is too long
	if r.ContentLength >= 0 {
		limit = r.ContentLength
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
				if akid == "" {
					if akid, err = h.precheck(r); err != nil {
						return nil, release, err
					}
				}
				if !h.bodies.takeFor(akid, size-held) {
					return nil, release, errBodiesBusy
				}
				keyHeld += size - held
				held = size
			}
			grown := make([]byte, len(buf), size)
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
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
	if len(buf) > MaxBodyBytes {
		return nil, release, errTooLarge
	}
	return buf, release, nil
}

package api

import (
	"errors"
	"io"
	"net/http"
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
// ThrottlingException, which SDKs retry. Slow or never-finished bodies can
// therefore hold at most the budget, however many connections send them.
type bodyBudget struct {
	max   int64
	inUse atomic.Int64
}

func newBodyBudget(max int64) *bodyBudget { return &bodyBudget{max: max} }

func (b *bodyBudget) take(n int64) bool {
	if b.inUse.Add(n) > b.max {
		b.inUse.Add(-n)
		return false
	}
	return true
}

func (b *bodyBudget) give(n int64) { b.inUse.Add(-n) }

// firstRead is the size of a body buffer before the body has shown it
// needs more: it holds any usual KMS request whole.
const firstRead = 8 << 10

// readBody reads r's body, at most MaxBodyBytes, within the budget. The
// caller calls release once it no longer reads the body's bytes.
func (h *Handler) readBody(r *http.Request) (body []byte, release func(), err error) {
	var held int64
	release = func() {
		h.bodies.give(held)
		held = 0
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
			if !h.bodies.take(size - held) {
				return nil, release, errBodiesBusy
			}
			held = size
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

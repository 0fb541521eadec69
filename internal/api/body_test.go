package api

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"testing"
)

// bodyRequest is a request whose body arrives through a pipe, as slowly as
// the test writes it, announcing length (-1: chunked, no length).
func bodyRequest(length int64) (*http.Request, *io.PipeWriter) {
	pr, pw := io.Pipe()
	r, _ := http.NewRequest(http.MethodPost, "/", pr)
	r.ContentLength = length
	return r, pw
}

type bodyResult struct {
	body    []byte
	release func()
	err     error
}

func readAsync(h *Handler, r *http.Request) chan bodyResult {
	done := make(chan bodyResult, 1)
	go func() {
		b, release, err := h.readBody(r)
		done <- bodyResult{b, release, err}
	}()
	return done
}

func TestReadBodyGrowsAsBytesArrive(t *testing.T) {
	const budget = 64 << 10
	h := &Handler{bodies: newBodyBudget(budget)}

	// A client announces 1 MiB and sends 40 KiB: the server holds a buffer
	// for what came, not for what was announced.
	slow, slowW := bodyRequest(1 << 20)
	slowDone := readAsync(h, slow)
	if _, err := slowW.Write(make([]byte, 40<<10)); err != nil {
		t.Fatal(err)
	}
	if got := h.bodies.inUse.Load(); got != 64<<10 {
		t.Errorf("after 40 KiB of an announced 1 MiB, %d bytes are held, want 65536", got)
	}

	// The budget is spent: the next body, however small, is refused at
	// once, before it is read.
	small, smallW := bodyRequest(100)
	go smallW.Write(bytes.Repeat([]byte("x"), 100))
	res := <-readAsync(h, small)
	if res.err != errBodiesBusy {
		t.Fatalf("a body over the budget: %v, want ThrottlingException", res.err)
	}
	res.release()

	// The slow client gives up: its memory returns to the budget, and the
	// next body is read.
	slowW.CloseWithError(errors.New("connection reset"))
	res = <-slowDone
	if res.err != errBodyUnreadable {
		t.Fatalf("a body cut short: %v, want SerializationException", res.err)
	}
	res.release()
	if got := h.bodies.inUse.Load(); got != 0 {
		t.Fatalf("%d bytes held after every body was released", got)
	}
	small, smallW = bodyRequest(100)
	go func() { smallW.Write(bytes.Repeat([]byte("x"), 100)); smallW.Close() }()
	res = <-readAsync(h, small)
	if res.err != nil || len(res.body) != 100 {
		t.Fatalf("a small body within the budget: %d bytes, %v", len(res.body), res.err)
	}
	res.release()
	if got := h.bodies.inUse.Load(); got != 0 {
		t.Fatalf("%d bytes held after release", got)
	}
}

func TestReadBodyLengths(t *testing.T) {
	h := &Handler{bodies: newBodyBudget(DefaultBodyMemory)}
	for _, tc := range []struct {
		name     string
		announce int64 // -1: chunked
		send     int
		want     error
	}{
		{"empty", 0, 0, nil},
		{"as announced", 5000, 5000, nil},
		{"largest", MaxBodyBytes, MaxBodyBytes, nil},
		{"announced too large", MaxBodyBytes + 1, 0, errTooLarge},
		{"shorter than announced", 5000, 4000, errBodyUnreadable},
		{"chunked", -1, 20000, nil},
		{"chunked, largest", -1, MaxBodyBytes, nil},
		{"chunked, too large", -1, MaxBodyBytes + 1, errTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, w := bodyRequest(tc.announce)
			go func() {
				w.Write(bytes.Repeat([]byte("a"), tc.send))
				w.Close()
			}()
			b, release, err := h.readBody(r)
			defer release()
			if err != tc.want {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if err == nil && len(b) != tc.send {
				t.Errorf("read %d bytes, want %d", len(b), tc.send)
			}
		})
	}
	if got := h.bodies.inUse.Load(); got != 0 {
		t.Fatalf("%d bytes held after every release", got)
	}
}

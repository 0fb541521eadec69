package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
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

// anyKey passes every request's precheck as signed by one key.
func anyKey(*http.Request) (string, error) { return "AKIDONE", nil }

type bodyResult struct {
	body    []byte
	release func()
	err     error
}

func readAsync(h *Handler, r *http.Request) chan bodyResult {
	done := make(chan bodyResult, 1)
	go func() {
		b, release, err := h.readBody(r, nil)
		done <- bodyResult{b, release, err}
	}()
	return done
}

func TestReadBodyGrowsAsBytesArrive(t *testing.T) {
	const budget = 256 << 10 // a quarter for each of four keys
	var keys atomic.Int32
	h := &Handler{bodies: newBodyBudget(budget), precheck: func(*http.Request) (string, error) {
		return fmt.Sprint("AKID", keys.Add(1)), nil
	}}

	// Clients announce 1 MiB and send 40 KiB: the server holds a buffer
	// for what came, not for what was announced.
	var slowDone []chan bodyResult
	var slowW []*io.PipeWriter
	for i := range 4 {
		slow, w := bodyRequest(1 << 20)
		slowDone = append(slowDone, readAsync(h, slow))
		slowW = append(slowW, w)
		if _, err := w.Write(make([]byte, 40<<10)); err != nil {
			t.Fatal(err)
		}
		if got := h.bodies.inUse.Load(); got != int64(i+1)*64<<10 {
			t.Errorf("after 40 KiB of an announced 1 MiB from %d clients, %d bytes are held, want %d", i+1, got, (i+1)*64<<10)
		}
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

	// The slow clients give up: their memory returns to the budget, and
	// the next body is read.
	for i, w := range slowW {
		w.CloseWithError(errors.New("connection reset"))
		res = <-slowDone[i]
		if res.err != errBodyUnreadable {
			t.Fatalf("a body cut short: %v, want SerializationException", res.err)
		}
		res.release()
	}
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
	h := &Handler{bodies: newBodyBudget(DefaultBodyMemory), precheck: anyKey}
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
			b, release, err := h.readBody(r, nil)
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

// A body grows past firstRead only for a request whose signature passes
// the precheck: anyone else holds firstRead at most, and is refused with
// the precheck's error before the rest arrives.
func TestReadBodyPrecheckBeforeGrowing(t *testing.T) {
	errNoOne := errors.New("no such access key")
	var checked []string
	h := &Handler{bodies: newBodyBudget(DefaultBodyMemory), precheck: func(r *http.Request) (string, error) {
		checked = append(checked, r.Header.Get("Authorization"))
		if r.Header.Get("Authorization") == "" {
			return "", errNoOne
		}
		return "AKIDONE", nil
	}}

	// A small body is read whole with no precheck: the signature is
	// checked with the body, as before.
	small, sw := bodyRequest(firstRead)
	go func() { sw.Write(make([]byte, firstRead)); sw.Close() }()
	res := <-readAsync(h, small)
	if res.err != nil || len(checked) != 0 {
		t.Fatalf("a body of firstRead bytes: %v, prechecked %d times", res.err, len(checked))
	}
	res.release()

	// An unsigned body of 1 MiB is refused once its first 8 KiB are in,
	// while the client has sent little more.
	big, w := bodyRequest(1 << 20)
	done := readAsync(h, big)
	go w.Write(make([]byte, 1<<20))
	res = <-done
	if res.err != errNoOne {
		t.Fatalf("an unsigned 1 MiB body: %v, want the precheck's error", res.err)
	}
	if got := h.bodies.inUse.Load(); got != firstRead {
		t.Errorf("an unsigned body held %d bytes when refused, want %d", got, firstRead)
	}
	res.release()
	w.CloseWithError(errors.New("gone"))

	// A signed one is read whole, prechecked once.
	checked = nil
	big, bw := bodyRequest(1 << 20)
	big.Header.Set("Authorization", "AWS4-HMAC-SHA256 ...")
	go func() { bw.Write(make([]byte, 1<<20)); bw.Close() }()
	res = <-readAsync(h, big)
	if res.err != nil || len(res.body) != 1<<20 || len(checked) != 1 {
		t.Fatalf("a signed 1 MiB body: %d bytes, %v, prechecked %d times", len(res.body), res.err, len(checked))
	}
	res.release()
	if got := h.bodies.inUse.Load(); got != 0 {
		t.Fatalf("%d bytes held after every release", got)
	}
}

// No access key may hold more than its share of the budget: one key's
// slow bodies leave room for the others'.
func TestReadBodyKeyShare(t *testing.T) {
	const budget = 4 << 20
	h := &Handler{bodies: newBodyBudget(budget), precheck: func(r *http.Request) (string, error) {
		return r.Header.Get("Authorization"), nil
	}}
	start := func(key string) (chan bodyResult, *io.PipeWriter) {
		r, w := bodyRequest(MaxBodyBytes)
		r.Header.Set("Authorization", key)
		done := readAsync(h, r)
		if _, err := w.Write(make([]byte, MaxBodyBytes/2+1)); err != nil { // the buffer grows to 1 MiB
			t.Fatal(err)
		}
		return done, w
	}
	// Key A's first slow body holds its whole share (1 MiB of 4 MiB).
	aDone, aW := start("A")
	if got := h.bodies.byKey["A"]; got != MaxBodyBytes-firstRead {
		t.Fatalf("key A holds %d bytes past the first read, want %d", got, MaxBodyBytes-firstRead)
	}
	// Its next is refused as soon as it needs more than its first read.
	r, w := bodyRequest(MaxBodyBytes)
	r.Header.Set("Authorization", "A")
	done := readAsync(h, r)
	go w.Write(make([]byte, MaxBodyBytes))
	if res := <-done; res.err != errBodiesBusy {
		t.Fatalf("key A past its share: %v, want ThrottlingException", res.err)
	} else {
		res.release()
	}
	w.CloseWithError(errors.New("gone"))
	// Key B is read whole.
	r, w = bodyRequest(MaxBodyBytes)
	r.Header.Set("Authorization", "B")
	go func() { w.Write(make([]byte, MaxBodyBytes)); w.Close() }()
	res := <-readAsync(h, r)
	if res.err != nil {
		t.Fatalf("key B while A holds its share: %v", res.err)
	}
	res.release()
	// Key A's body completes and is released: the share returns.
	go func() { aW.Write(make([]byte, MaxBodyBytes/2-1)); aW.Close() }()
	if res := <-aDone; res.err != nil || len(res.body) != MaxBodyBytes {
		t.Fatalf("key A's slow body: %d bytes, %v", len(res.body), res.err)
	} else {
		res.release()
	}
	if got := h.bodies.inUse.Load(); got != 0 || len(h.bodies.byKey) != 0 {
		t.Fatalf("%d bytes held (%v by key) after every release", got, h.bodies.byKey)
	}
}

// No address may hold more than its share of the budget either, whatever
// access keys its bodies are signed with (their ids are not secret); an
// IPv6 /64 is one address, and loopback callers have no share.
func TestReadBodySourceShare(t *testing.T) {
	const budget = 4 << 20
	h := &Handler{bodies: newBodyBudget(budget), precheck: func(r *http.Request) (string, error) {
		return r.Header.Get("Authorization"), nil
	}}
	// start sends the first half of a 1 MiB body signed with key from
	// addr, which then holds its share (1 MiB of 4 MiB) until finish.
	start := func(key, addr string) (finish func()) {
		t.Helper()
		r, w := bodyRequest(MaxBodyBytes)
		r.Header.Set("Authorization", key)
		r.RemoteAddr = addr
		done := readAsync(h, r)
		if _, err := w.Write(make([]byte, MaxBodyBytes/2+1)); err != nil {
			t.Fatal(err)
		}
		return func() {
			t.Helper()
			go func() { w.Write(make([]byte, MaxBodyBytes/2-1)); w.Close() }()
			if res := <-done; res.err != nil {
				t.Fatalf("key %s from %s: %v", key, addr, res.err)
			} else {
				res.release()
			}
		}
	}
	// whole reports the error of a 1 MiB body sent at once.
	whole := func(key, addr string) error {
		r, w := bodyRequest(MaxBodyBytes)
		r.Header.Set("Authorization", key)
		r.RemoteAddr = addr
		done := readAsync(h, r)
		go func() { w.Write(make([]byte, MaxBodyBytes)); w.Close() }()
		res := <-done
		res.release()
		w.CloseWithError(errors.New("gone"))
		return res.err
	}
	for _, tc := range []struct{ holder, other, elsewhere string }{
		{"192.0.2.1:4000", "192.0.2.1:4001", "192.0.2.2:4000"},
		{"[2001:db8::1]:4000", "[2001:db8::ffff]:4000", "[2001:db8:0:1::1]:4000"},
	} {
		finish := start("A", tc.holder)
		if err := whole("B", tc.other); err != errBodiesBusy {
			t.Fatalf("key B from %s while key A from %s holds the share: %v, want ThrottlingException", tc.other, tc.holder, err)
		}
		if err := whole("B", tc.elsewhere); err != nil {
			t.Fatalf("key B from %s: %v", tc.elsewhere, err)
		}
		finish()
		if err := whole("B", tc.other); err != nil {
			t.Fatalf("key B from %s once A's body is read: %v", tc.other, err)
		}
	}
	finish := start("A", "127.0.0.1:4000")
	if err := whole("B", "127.0.0.1:4001"); err != nil {
		t.Fatalf("key B from loopback beside key A's body: %v", err)
	}
	finish()
	if got := h.bodies.inUse.Load(); got != 0 || len(h.bodies.byKey)+len(h.bodies.bySource) != 0 {
		t.Fatalf("%d bytes held (%v by key, %v by address) after every release", got, h.bodies.byKey, h.bodies.bySource)
	}
}

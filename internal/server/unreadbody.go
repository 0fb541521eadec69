package server

import (
	"io"
	"net/http"
)

// closeUnread closes the connection of a request answered before its
// body was read to the end.
//
// net/http, to keep such a connection alive, reads and discards up to
// 256 KiB of the rest of the body before it writes the answer, waiting
// for it up to the read timeout. So a client announcing a body it never
// sends to a handler that does not read one (GET /healthz, an unknown
// operation) held its connection, with a request under way that the
// connection limit cannot make room from, for the whole read timeout
// (30 s), where a body the API reads for a caller it does not know gets
// 5 s. Answered with "Connection: close", the request is answered at
// once and its connection closed. A body read to its announced length,
// or to its end, keeps the connection alive.
func closeUnread(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		b := &readCounter{ReadCloser: r.Body, want: r.ContentLength}
		r.Body = b
		cw := &closeUnreadWriter{ResponseWriter: w, body: b}
		next.ServeHTTP(cw, r)
		cw.check() // an answer with no header written yet
	})
}

// readCounter notes whether its body has been read to the end: to the
// announced length (want), or to EOF when none was announced.
type readCounter struct {
	io.ReadCloser
	want int64 // the announced length; -1 if unknown
	read int64
	eof  bool
}

func (b *readCounter) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.read += int64(n)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *readCounter) done() bool { return b.eof || (b.want >= 0 && b.read >= b.want) }

// closeUnreadWriter adds "Connection: close" to an answer whose header is
// written while its request's body is unread.
type closeUnreadWriter struct {
	http.ResponseWriter
	body    *readCounter
	checked bool
}

func (w *closeUnreadWriter) check() {
	if w.checked {
		return
	}
	w.checked = true
	if !w.body.done() {
		w.ResponseWriter.Header().Set("Connection", "close")
	}
}

func (w *closeUnreadWriter) WriteHeader(status int) {
	if status >= 200 {
		w.check()
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *closeUnreadWriter) Write(p []byte) (int, error) {
	w.check()
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *closeUnreadWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes a flush on, for a handler that streams its answer.
func (w *closeUnreadWriter) Flush() {
	w.check()
	http.NewResponseController(w.ResponseWriter).Flush()
}

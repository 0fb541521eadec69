package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// drainWait bounds how long, at shutdown, connections kept alive between
// requests are given to send one more request (answered with
// "Connection: close") before they are closed.
const drainWait = time.Second

// drainer serves HTTP and shuts it down without cutting a request short.
//
// http.Server.Shutdown closes idle keep-alive connections at once. A
// client that had just sent its next request on one then sees its
// connection reset although the server never read the request. So at
// shutdown the drainer first stops accepting, then answers every request
// still arriving with "Connection: close", and only when each connection
// has closed (or drainWait has passed) calls Shutdown, which waits for the
// requests in flight.
type drainer struct {
	srv      *http.Server
	ln       net.Listener
	log      *slog.Logger
	draining atomic.Bool

	mu    sync.Mutex
	open  int           // connections not yet closed
	empty chan struct{} // closed when open falls to 0 while draining
}

func newDrainer(srv *http.Server, ln net.Listener, log *slog.Logger) *drainer {
	d := &drainer{srv: srv, ln: ln, log: log, empty: make(chan struct{})}
	next := srv.Handler
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
	if prev := srv.ConnState; prev != nil {
		srv.ConnState = func(c net.Conn, s http.ConnState) {
			d.track(c, s)
			prev(c, s)
		}
	} else {
		srv.ConnState = d.track
	}
	return d
}

func (d *drainer) track(_ net.Conn, s http.ConnState) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch s {
	case http.StateNew:
		d.open++
	case http.StateClosed, http.StateHijacked:
		d.open--
		if d.open == 0 && d.draining.Load() {
			d.closeEmpty()
		}
	}
}

// startDraining makes the handler close each connection after its
// request, and d.empty closed once no connection is open (at once if none
// is).
func (d *drainer) startDraining() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.draining.Store(true)
	if d.open == 0 {
		d.closeEmpty()
	}
}

// closeEmpty closes d.empty unless it is closed: a connection closing as
// the drain starts may have seen draining set and closed it already.
// Call it with mu held.
func (d *drainer) closeEmpty() {
	select {
	case <-d.empty:
	default:
		close(d.empty)
	}
}

// serve serves until ctx is done, then drains and shuts down within
// timeout. It returns an error if serving failed or the requests in
// flight did not finish in time.
func (d *drainer) serve(ctx context.Context, timeout time.Duration) error {
	served := make(chan error, 1)
	go func() { served <- d.srv.Serve(d.ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	d.log.Info("shutting down: no new connections; finishing the requests in flight", "timeout", timeout)
	deadline := time.Now().Add(timeout)
	d.startDraining()
	d.ln.Close() // new connections are refused; the open ones go on
	wait := time.NewTimer(min(drainWait, timeout))
	select {
	case <-d.empty:
	case <-wait.C:
	}
	wait.Stop()
	shutCtx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	err := d.srv.Shutdown(shutCtx)
	if errors.Is(err, net.ErrClosed) {
		// Serve had not yet noticed the close above, so Shutdown closed
		// the listener again; the connections were still waited for.
		err = nil
	}
	if serr := <-served; serr != nil && !errors.Is(serr, http.ErrServerClosed) && !errors.Is(serr, net.ErrClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

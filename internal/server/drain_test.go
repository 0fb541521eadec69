package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"
)

// slowCloseListener notices its Close only when release is closed, as a
// listener does whose Accept is still between two system calls: Serve
// keeps it registered until then, so Shutdown closes it a second time.
type slowCloseListener struct {
	net.Listener
	release chan struct{}
}

func (l *slowCloseListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.release
	}
	return c, err
}

// A shutdown that finds the listener already closed is still a clean
// shutdown: the drainer closed it itself to stop accepting.
func TestDrainShutdownAfterOwnListenerClose(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &slowCloseListener{Listener: inner, release: make(chan struct{})}
	srv := &http.Server{Handler: http.NotFoundHandler()}
	d := newDrainer(srv, ln, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	// Serve stays in Accept's error path, the listener still registered,
	// until Shutdown has closed the listeners.
	srv.RegisterOnShutdown(func() { close(ln.release) })
	go func() { done <- d.serve(ctx, 5*time.Second) }()
	if err := <-done; err != nil {
		t.Fatalf("serve after a shutdown: %v", err)
	}
}

// The last connection can close as the drain starts, after draining is
// set: it then closes d.empty itself, and starting the drain must not
// close it again (a shutdown once panicked so).
func TestDrainLastConnectionClosesAsDrainStarts(t *testing.T) {
	d := newDrainer(&http.Server{Handler: http.NotFoundHandler()}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	d.track(nil, http.StateNew)
	d.draining.Store(true) // as startDraining does, just before the close below
	d.track(nil, http.StateClosed)
	d.startDraining()
	select {
	case <-d.empty:
	default:
		t.Fatal("no connection is open, but the drain waits for one")
	}
}

// With connections open, the drain waits until the last one closes.
func TestDrainWaitsForTheLastConnection(t *testing.T) {
	d := newDrainer(&http.Server{Handler: http.NotFoundHandler()}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	d.track(nil, http.StateNew)
	d.track(nil, http.StateNew)
	d.startDraining()
	d.track(nil, http.StateClosed)
	select {
	case <-d.empty:
		t.Fatal("the drain ended with a connection still open")
	default:
	}
	d.track(nil, http.StateClosed)
	select {
	case <-d.empty:
	default:
		t.Fatal("the last connection closed, but the drain still waits")
	}
}

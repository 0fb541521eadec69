package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/openkms/kms/internal/api"
	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/metrics"
	"github.com/openkms/kms/internal/store"
)

// withOps serves the operator's endpoints beside the API: GET /readyz
// (ready), unless nil GET /metrics, and unless nil the web console under
// /console/. Everything else, GET /healthz included, goes to api.
func withOps(api http.Handler, ready func(context.Context) error, metrics, console http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if console != nil && (r.URL.Path == "/console" || strings.HasPrefix(r.URL.Path, "/console/")) {
			console.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			switch {
			case r.URL.Path == "/readyz":
				serveReady(w, r, ready)
				return
			case r.URL.Path == "/metrics" && metrics != nil:
				metrics.ServeHTTP(w, r)
				return
			}
		}
		api.ServeHTTP(w, r)
	})
}

// opsMaxConnections bounds the connections open at once to the
// operator's own addresses (--metrics-listen, --pprof-listen), as
// --max-connections bounds the API's: a few scrapers or an operator use
// them, and without a bound anyone who reaches the address could hold
// sockets open until the process has no file descriptors left, and the
// API could accept no connection either. At the bound, the connection
// that has waited longest without a request under way makes room
// (connLimiter).
const opsMaxConnections = 32

// listenOps binds addr for serveOps; what names the address in the
// error ("metrics", "pprof"). Run binds before it makes the data
// directory, so that an address that cannot be bound refuses the start
// with nothing written.
func listenOps(what, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listen on %s: %w", what, addr, err)
	}
	return ln, nil
}

// serveOps serves h on ln, plain HTTP, with at most opsMaxConnections
// connections and a request's headers within 10 s; unless timeout is 0,
// the whole request must arrive, and its answer be written, within
// timeout. A request answered before its body was read has its
// connection closed (closeUnread), rather than waited on for the body. It returns the function that
// stops it.
func serveOps(ln net.Listener, h http.Handler, timeout time.Duration, log *slog.Logger) func() {
	limit := newConnLimiter(ln, opsMaxConnections, time.Now)
	srv := &http.Server{Handler: closeUnread(h), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: timeout, WriteTimeout: timeout,
		IdleTimeout: DefaultIdleTimeout, MaxHeaderBytes: maxHeaderBytes, ConnState: limit.track,
		ErrorLog: httpErrorLog(log)}
	go srv.Serve(limit)
	return func() { srv.Close() }
}

// serveMetrics serves GET /metrics on an address of its own (serveOps),
// and returns the address and the function that stops it.
func serveMetrics(addr string, h http.Handler, log *slog.Logger) (net.Addr, func(), error) {
	ln, err := listenOps("metrics", addr)
	if err != nil {
		return nil, nil, err
	}
	return ln.Addr(), serveMetricsOn(ln, h, log), nil
}

// serveMetricsOn is serveMetrics on a listener already bound (listenOps).
func serveMetricsOn(ln net.Listener, h http.Handler, log *slog.Logger) (stop func()) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	stop = serveOps(ln, mux, 30*time.Second, log)
	log.Info("metrics served", "url", "http://"+ln.Addr().String()+"/metrics")
	return stop
}

// servePprof serves Go's runtime profiles (net/http/pprof, under
// /debug/pprof/) on a loopback listener of its own (serveOps, bound by
// listenOps), and returns the function that stops it. The profiles hold
// no key material, but they
// show the program's internals, and a CPU profile or trace costs CPU
// while it runs (for its ?seconds=, 30 by default): only a loopback
// address is accepted, for an operator on the machine or through a
// tunnel. The command line is not served: --root-key may carry a key.
// No read or write timeout past the headers: a profile takes as long as
// its ?seconds= asks, and a read timeout would cancel it.
// errPprofOffLoopback refuses --pprof-listen on an address other than
// loopback; checkListen refuses it before anything is made.
var errPprofOffLoopback = errors.New("refusing to serve profiles on a non-loopback address: --pprof-listen shows the server's internals; use 127.0.0.1 and a tunnel")

func servePprof(ln net.Listener, log *slog.Logger) (stop func(), err error) {
	if !isLoopback(ln.Addr().String()) {
		return nil, errPprofOffLoopback
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	stop = serveOps(ln, mux, 0, log)
	log.Info("profiles served", "url", "http://"+ln.Addr().String()+"/debug/pprof/")
	return stop, nil
}

// observer reports each answered call to the metrics, and logs it in one
// line at info level: its request id, the caller, the operation, the
// status and AWS error type, and the time it took. Nothing of the
// request's body or signature is logged.
func observer(m *metrics.Metrics, log *slog.Logger) func(*api.Request) {
	return func(r *api.Request) {
		m.Request(r.Operation, r.Known, r.Code, r.Duration)
		if !log.Enabled(context.Background(), slog.LevelInfo) {
			return
		}
		op := r.Operation
		if !r.Known && len(op) > 64 {
			op = strings.ToValidUTF8(op[:64], "") + "…"
		}
		// A record made here, not by log.LogAttrs, carries no source
		// position: finding the caller's cost a tenth of the line.
		rec := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
		rec.AddAttrs(slog.String("requestId", r.ID), slog.String("principal", r.Principal), slog.String("operation", op),
			slog.Int("status", r.Status), slog.String("code", r.Code), slog.Duration("duration", r.Duration))
		_ = log.Handler().Handle(context.Background(), rec)
	}
}

// readyTimeout bounds the store's answer to a readiness check.
const readyTimeout = 2 * time.Second

// readiness is the check behind /readyz: a node of a cluster holds its
// share of the serving lease, the store answers a read, and the audit
// trail's last commit succeeded or it takes records again (audit.Log.Retry;
// a node that cannot record calls refuses them, so it is not ready). Why a part fails goes to log only:
// /readyz answers anyone, and the error can name the database's host and
// user or the data directory's paths.
//
// Checks asked for while one runs wait for its result rather than start
// their own (sharedCheck): anyone can ask, and thousands of checks at
// once, each reading the store, would take every connection of a
// PostgreSQL pool from the calls.
func readiness(st store.Store, trail *audit.Log, serving *servingState, log *slog.Logger) func(context.Context) error {
	check := readinessOf(st, trail, serving)
	shared := &sharedCheck{check: func(ctx context.Context) error {
		err := check(ctx)
		if nr, ok := err.(*notReady); ok {
			log.Warn("not ready", "failing", nr.part, "err", nr.err)
		}
		return err
	}}
	return shared.run
}

// sharedCheck runs check at most once at a time: a caller that comes
// while it runs gets that run's result. A run is not cancelled by the
// caller that started it going away (check bounds its own time); each
// caller stops waiting when its own context is done.
type sharedCheck struct {
	check func(context.Context) error

	mu  sync.Mutex
	cur *checkRun // nil: none running
}

type checkRun struct {
	done chan struct{}
	err  error // set before done is closed
}

func (s *sharedCheck) run(ctx context.Context) error {
	s.mu.Lock()
	r := s.cur
	if r == nil {
		r = &checkRun{done: make(chan struct{})}
		s.cur = r
		go func() {
			r.err = s.check(context.WithoutCancel(ctx))
			s.mu.Lock()
			s.cur = nil
			s.mu.Unlock()
			close(r.done)
		}()
	}
	s.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func readinessOf(st store.Store, trail *audit.Log, serving *servingState) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := serving.err(); err != nil {
			return &notReady{"cluster", err}
		}
		ctx, cancel := context.WithTimeout(ctx, readyTimeout)
		defer cancel()
		if err := st.View(ctx, func(tx store.Tx) error {
			_, err := tx.Get([]byte("readyz"))
			if err == store.ErrNotFound {
				return nil
			}
			return err
		}); err != nil {
			return &notReady{"store", err}
		}
		// Retry, not Err: a node out of a load balancer's rotation gets no
		// call to find that the trail takes records again.
		if err := trail.Retry(); err != nil {
			return &notReady{"audit", err}
		}
		return nil
	}
}

type notReady struct {
	part string
	err  error
}

func (e *notReady) Error() string { return e.part + ": " + e.err.Error() }

func serveReady(w http.ResponseWriter, r *http.Request, ready func(context.Context) error) {
	type answer struct {
		Status string `json:"status"`
		Part   string `json:"failing,omitempty"`
	}
	a, code := answer{Status: "ready"}, http.StatusOK
	if err := ready(r.Context()); err != nil {
		a, code = answer{Status: "not ready"}, http.StatusServiceUnavailable
		if nr, ok := err.(*notReady); ok {
			a.Part = nr.part
		}
	}
	b, _ := json.Marshal(a)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

package server

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/store"
)

// withOps serves the operator's endpoints beside the API: GET /readyz
// (ready). Everything else, GET /healthz included, goes to api.
func withOps(api http.Handler, ready func(context.Context) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			serveReady(w, r, ready)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// readyTimeout bounds the store's answer to a readiness check.
const readyTimeout = 2 * time.Second

// readiness is the check behind /readyz: the store answers a read, and the
// audit trail's last commit succeeded (a node that cannot record calls
// refuses them, so it is not ready).
func readiness(st store.Store, trail *audit.Log) func(context.Context) error {
	return func(ctx context.Context) error {
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
		if err := trail.Err(); err != nil {
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
		Reason string `json:"reason,omitempty"`
	}
	a, code := answer{Status: "ready"}, http.StatusOK
	if err := ready(r.Context()); err != nil {
		a, code = answer{Status: "not ready", Reason: err.Error()}, http.StatusServiceUnavailable
		if nr, ok := err.(*notReady); ok {
			a.Part, a.Reason = nr.part, nr.err.Error()
		}
	}
	b, _ := json.Marshal(a)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

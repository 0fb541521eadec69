package api

import "time"

// SetNow sets the clock h reads, for tests that move time on.
func SetNow(h *Handler, now func() time.Time) { h.now = now }

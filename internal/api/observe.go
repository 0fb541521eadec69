package api

import (
	"net/http"
	"time"
)

// Request describes one answered call, for metrics and logs. It holds
// nothing secret: no body, no signature, no key material.
type Request struct {
	ID        string        // the x-amzn-RequestId returned
	Operation string        // the KMS, IAM or STS action as the client named it ("" if none)
	Known     bool          // whether Operation is one this server serves
	Principal string        // the caller's ARN; "" if authentication failed
	Account   string        // the caller's account; "" if authentication failed
	Status    int           // the HTTP status of the answer
	Code      string        // the AWS error type (or IAM error code), "ok" on success
	Duration  time.Duration // from the request's arrival to the end of the answer
}

// WithObserver makes h report every call it answers (not /healthz) to
// observe, after the answer is written. observe runs on the request's
// goroutine and must be quick.
func (h *Handler) WithObserver(observe func(*Request)) *Handler {
	h.observe = observe
	return h
}

// answerWriter remembers the status and error type of an answer.
type answerWriter struct {
	http.ResponseWriter
	status int
	code   string
}

func (a *answerWriter) WriteHeader(status int) {
	if a.status == 0 {
		a.status = status
	}
	a.ResponseWriter.WriteHeader(status)
}

// Unwrap lets http.ResponseController reach the connection.
func (a *answerWriter) Unwrap() http.ResponseWriter { return a.ResponseWriter }

// noteCode records the error type of an answer written to w.
func noteCode(w http.ResponseWriter, code string) {
	if a, ok := w.(*answerWriter); ok {
		a.code = code
	}
}

// report hands the observer what is known of a call once it is answered.
func (h *Handler) report(a *answerWriter, reqID string, ci *callInfo, start time.Time) {
	op := ci.ev.Operation
	req := &Request{ID: reqID, Operation: op, Status: a.status, Code: a.code, Duration: time.Since(start)}
	_, kms := h.ops[op]
	_, query := h.query[op]
	_, trail := trailOps[op]
	req.Known = kms || query || trail
	if req.Status == 0 {
		req.Status = http.StatusOK
	}
	if req.Code == "" {
		req.Code = "ok"
	}
	if ci.principal != nil {
		req.Principal, req.Account = ci.principal.ARN, ci.principal.Account
	}
	h.observe(req)
}

// Package metrics defines the server's Prometheus metrics and serves them
// in the Prometheus text format. docs/operations.md lists every metric.
// The metrics live in a registry of their own, not the process-wide
// default one.
//
// Labels take only bounded values: an operation the server does not serve
// is counted as "unknown", so a client cannot grow the set of series.
package metrics

import (
	"context"
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/openkms/kms/internal/store"
)

// Metrics are one server's metrics.
type Metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	auditAppend  prometheus.Histogram
	auditBatch   prometheus.Histogram
	auditCommit  prometheus.Histogram
	auditFailed  prometheus.Counter
	auditZeros   prometheus.Counter
	storeSeconds *prometheus.HistogramVec
}

// New registers the metrics of a server of the given version, whose key
// cache reports its hits and misses through cacheStats.
func New(version string, cacheStats func() (hits, misses uint64)) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kms_requests_total",
			Help: "Calls answered, by operation and by code: the AWS error type of the answer, or ok.",
		}, []string{"operation", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kms_request_duration_seconds",
			Help:    "Time from a call's arrival to the end of its answer, by operation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"operation"}),
		auditAppend: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kms_audit_append_duration_seconds",
			Help:    "Time a call waits for its audit record to be durable (written and synced, or committed).",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
		auditBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kms_audit_batch_records",
			Help:    "Records made durable together by one commit of the audit trail (group commit).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
		auditCommit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kms_audit_commit_duration_seconds",
			Help:    "Time of one commit of the audit trail: writing a batch and syncing it (or its database transaction).",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
		auditFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kms_audit_commit_failures_total",
			Help: "Commits of the audit trail that failed; every call in them was refused.",
		}),
		auditZeros: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kms_audit_prezero_failures_total",
			Help: "Zeros that could not be written ahead of the audit trail's records (a full disk?): the segment's commits are then slower, until the next.",
		}),
		storeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kms_store_duration_seconds",
			Help:    "Time of the key store's transactions, by kind (view or update).",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"kind"}),
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kms_build_info",
		Help: "Always 1; the labels name the server's version and the Go version it was built with.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	hits := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "kms_key_cache_hits_total",
		Help: "Key lookups answered from the in-memory cache, without reading the store.",
	}, func() float64 { h, _ := cacheStats(); return float64(h) })
	misses := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "kms_key_cache_misses_total",
		Help: "Key lookups that read the store.",
	}, func() float64 { _, mi := cacheStats(); return float64(mi) })
	reg.MustRegister(m.requests, m.duration, m.auditAppend, m.auditBatch, m.auditCommit, m.auditFailed, m.auditZeros, m.storeSeconds,
		buildInfo, hits, misses,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// UnrecordedCalls exports count, the calls refused before their caller was
// known that were left out of the audit trail over their budget.
func (m *Metrics) UnrecordedCalls(count func() uint64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "kms_audit_unrecorded_calls_total",
		Help: "Calls refused before their caller was known (bad or no signature, unknown key, failed sign-in) left out of the audit trail, over the budget of such records.",
	}, func() float64 { return float64(count()) }))
}

// BodyBytes exports held, the bytes of request bodies being received.
func (m *Metrics) BodyBytes(held func() int64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kms_request_body_bytes",
		Help: "Bytes of request bodies being received, held in memory before their signatures can be checked; at the bound (64 MiB) new requests are throttled.",
	}, func() float64 { return float64(held()) }))
}

// RSAKeyPairsWaiting exports waiting, the calls waiting for their turn to
// make an RSA key pair.
func (m *Metrics) RSAKeyPairsWaiting(waiting func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kms_rsa_key_pairs_waiting",
		Help: "Calls (GenerateDataKeyPair, GetParametersForImport, CreateKey of RSA keys) waiting for their turn to make an RSA key pair.",
	}, func() float64 { return float64(waiting()) }))
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Request counts one answered call. known says whether operation is one
// the server serves; if not, it is counted as "unknown".
func (m *Metrics) Request(operation string, known bool, code string, d time.Duration) {
	if !known {
		operation = "unknown"
	}
	m.requests.WithLabelValues(operation, code).Inc()
	m.duration.WithLabelValues(operation).Observe(d.Seconds())
}

// Appended implements audit.Observer.
func (m *Metrics) Appended(d time.Duration, _ error) { m.auditAppend.Observe(d.Seconds()) }

// Committed implements audit.Observer.
func (m *Metrics) Committed(records int, d time.Duration, err error) {
	m.auditBatch.Observe(float64(records))
	m.auditCommit.Observe(d.Seconds())
	if err != nil {
		m.auditFailed.Inc()
	}
}

// ZerosFailed implements audit.Observer.
func (m *Metrics) ZerosFailed(error) { m.auditZeros.Inc() }

// Store returns st with the time of each transaction measured.
func (m *Metrics) Store(st store.Store) store.Store {
	return &timedStore{Store: st, view: m.storeSeconds.WithLabelValues("view"), update: m.storeSeconds.WithLabelValues("update")}
}

type timedStore struct {
	store.Store
	view, update prometheus.Observer
}

func (s *timedStore) View(ctx context.Context, fn func(store.Tx) error) error {
	start := time.Now()
	err := s.Store.View(ctx, fn)
	s.view.Observe(time.Since(start).Seconds())
	return err
}

func (s *timedStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	start := time.Now()
	err := s.Store.Update(ctx, fn)
	s.update.Observe(time.Since(start).Seconds())
	return err
}

// Package logrepeat keeps a log readable while the same failure repeats:
// a slog.Handler that passes a warning or error through the first time,
// holds back the same line repeated within a period after it, and then
// logs it once more with the count of those held back.
//
// Two lines are the same when they have the same level, message and
// attributes, but for those named as varying from call to call (a
// request id): so a line with another error, or about another thing, is
// never held back behind one that repeats. A line logged below
// slog.LevelWarn (a server's request log) is always passed through.
//
// Limits: at most maxKinds lines are followed at once; past that a new
// line is passed through, whether it repeats or not. The count of a
// period is logged when the period ends, by a timer, or by Flush.
package logrepeat

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultPeriod is how long a line is held back after it was logged.
const DefaultPeriod = 5 * time.Second

// maxKinds bounds the lines followed at once.
const maxKinds = 1024

// Config holds a Handler's settings.
type Config struct {
	// Period is how long the repeats of a line are held back before
	// their count is logged (DefaultPeriod if zero).
	Period time.Duration
	// Varying names the attributes that differ from one line to the
	// next of the same failure (requestId): they do not make a line
	// another, and the count is logged with those of the last repeat.
	Varying []string
	// Now is the clock of the count's line (time.Now if nil).
	Now func() time.Time
	// AfterFunc runs f once d has passed (time.AfterFunc if nil).
	AfterFunc func(d time.Duration, f func())
}

// Handler is the slog.Handler; it is safe for concurrent use.
type Handler struct {
	next   slog.Handler
	prefix string // the attributes and groups of WithAttrs and WithGroup, as a line's kind names them
	s      *state
}

// state is what a Handler and those made from it share.
type state struct {
	period    time.Duration
	varying   []string
	now       func() time.Time
	afterFunc func(time.Duration, func())

	mu    sync.Mutex
	kinds map[string]*kind
}

// kind is a line logged within the period, and its repeats held back
// since.
type kind struct {
	next slog.Handler // the handler it goes to
	held int
	last slog.Record // the last repeat held back
}

// New returns a Handler that passes lines on to next.
func New(next slog.Handler, cfg Config) *Handler {
	if cfg.Period <= 0 {
		cfg.Period = DefaultPeriod
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.AfterFunc == nil {
		cfg.AfterFunc = func(d time.Duration, f func()) { time.AfterFunc(d, f) }
	}
	return &Handler{next: next, s: &state{period: cfg.Period, varying: cfg.Varying, now: cfg.Now, afterFunc: cfg.AfterFunc,
		kinds: make(map[string]*kind)}}
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.prefix)
	for _, a := range as {
		h.s.writeAttr(&b, "", a)
	}
	return &Handler{next: h.next.WithAttrs(as), prefix: b.String(), s: h.s}
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), prefix: h.prefix + "\x00group=" + name, s: h.s}
}

// Handle implements slog.Handler: it passes r on, unless a line of its
// kind was logged within the period, in which case r is counted.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return h.next.Handle(ctx, r)
	}
	key := h.kindOf(r)
	s := h.s
	s.mu.Lock()
	k, seen := s.kinds[key]
	if seen {
		k.held++
		k.last = r.Clone()
		s.mu.Unlock()
		return nil
	}
	if len(s.kinds) < maxKinds {
		s.kinds[key] = &kind{next: h.next}
		s.afterFunc(s.period, func() { s.periodEnded(key) })
	}
	s.mu.Unlock()
	return h.next.Handle(ctx, r)
}

// periodEnded logs the count of the repeats of the line key held back
// in the period that ended, and holds back its repeats for another; a
// line not repeated in it is forgotten, to be logged when it comes again.
func (s *state) periodEnded(key string) {
	s.mu.Lock()
	k := s.kinds[key]
	if k == nil {
		s.mu.Unlock()
		return
	}
	if k.held == 0 {
		delete(s.kinds, key)
		s.mu.Unlock()
		return
	}
	r := s.countLine(k)
	s.afterFunc(s.period, func() { s.periodEnded(key) })
	s.mu.Unlock()
	k.next.Handle(context.Background(), r)
}

// countLine is the line that reports k's repeats held back (the last of
// them, with "repeated": how many), and starts a new count.
func (s *state) countLine(k *kind) slog.Record {
	r := slog.NewRecord(s.now(), k.last.Level, k.last.Message, 0)
	k.last.Attrs(func(a slog.Attr) bool {
		r.AddAttrs(a)
		return true
	})
	r.AddAttrs(slog.Int("repeated", k.held))
	k.held, k.last = 0, slog.Record{}
	return r
}

// Flush logs the counts of the repeats held back so far, as the end of
// their periods would: for a server that stops.
func (h *Handler) Flush() {
	s := h.s
	type line struct {
		next slog.Handler
		r    slog.Record
	}
	var lines []line
	s.mu.Lock()
	for _, k := range s.kinds {
		if k.held > 0 {
			lines = append(lines, line{k.next, s.countLine(k)})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(lines, func(a, b line) int { return a.r.Time.Compare(b.r.Time) })
	for _, l := range lines {
		l.next.Handle(context.Background(), l.r)
	}
}

// kindOf names r's kind: its level, message and attributes but the
// varying ones, after the handler's own.
func (h *Handler) kindOf(r slog.Record) string {
	var b strings.Builder
	b.WriteString(h.prefix)
	b.WriteString("\x00level=")
	b.WriteString(r.Level.String())
	b.WriteString("\x00msg=")
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		h.s.writeAttr(&b, "", a)
		return true
	})
	return b.String()
}

// writeAttr writes a, in group, to b, unless it varies.
func (s *state) writeAttr(b *strings.Builder, group string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		for _, ga := range v.Group() {
			s.writeAttr(b, group+a.Key+".", ga)
		}
		return
	}
	if group == "" && slices.Contains(s.varying, a.Key) {
		return
	}
	b.WriteString("\x00")
	b.WriteString(group)
	b.WriteString(a.Key)
	b.WriteString("=")
	b.WriteString(v.String())
}

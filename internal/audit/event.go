package audit

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openkms/kms/internal/keys"
)

// Event is the record of one call while the call runs. The protocol layer
// fills in who called, what they asked and how the call ended; the service
// adds each key it resolved (AddKey), so that the record names exactly the
// keys the operation used and no layer resolves a key a second time. A
// Recorder turns the finished event into a Record.
type Event struct {
	Time      time.Time
	Source    string // eventSource: kms.amazonaws.com, iam.amazonaws.com, ...
	Operation string
	Region    string
	// Identity is the caller; a zero Identity is an unauthenticated caller,
	// of whom only the access key id it claimed is known.
	Identity  UserIdentity
	SourceIP  string
	UserAgent string
	RequestID string
	// EventID is the record's eventID, chosen when the call starts so
	// that the service can name the record (GetKeyLastUsage reports it);
	// empty: one is made when the record is written.
	EventID string
	// Params are the audited request members as a JSON object (nil: none).
	Params json.RawMessage
	// ErrorCode and ErrorMessage say how a refused call ended, as the
	// client was told.
	ErrorCode, ErrorMessage string
	// UnrecordedBefore is Record.UnrecordedBefore: set by the caller on
	// the record of an unauthenticated call.
	UnrecordedBefore uint64
	// EventType is AwsApiCall (if empty) for a call, AwsServiceEvent for
	// work the service did on its own (ServiceEvent).
	EventType string
	// Details is Record.ServiceEventDetails of a service event: valid,
	// compact JSON written by the service, or nil.
	Details json.RawMessage

	mu       sync.Mutex
	keys     []string
	response json.RawMessage
	kept     atomic.Bool
}

// Keep notes that a change of the call was committed with its record
// kept beside it in the store (internal/outbox), whose Recorder then
// has bookkeeping to do once the record is written; a call without it
// costs that Recorder one atomic load.
func (e *Event) Keep() { e.kept.Store(true) }

// Kept reports whether Keep was called.
func (e *Event) Kept() bool { return e.kept.Load() }

// SetResponse sets the record's responseElements: a JSON object the
// server built from what it answered, holding no secret. Safe on a nil
// Event.
func (e *Event) SetResponse(v json.RawMessage) {
	if e == nil {
		return
	}
	e.mu.Lock()
	e.response = v
	e.mu.Unlock()
}

// AddKey notes that the call used the key with this ARN. It is safe on a
// nil Event (a call made without a trail) and from several goroutines; a
// key added twice is named once.
func (e *Event) AddKey(arn string) {
	if e == nil || arn == "" {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, k := range e.keys {
		if k == arn {
			return
		}
	}
	e.keys = append(e.keys, arn)
}

// Keys returns the ARNs of the keys the call used, in the order it
// resolved them.
func (e *Event) Keys() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.keys...)
}

// ServiceEvent is the event of work KMS did on its own at t, not asked by
// any call, to key keyARN of account in region: DeleteKey when a key's
// waiting period ended, RotateKey when it rotated automatically,
// DeleteExpiredKeyMaterial when imported key material passed its ValidTo.
// As in CloudTrail, "AWS Internal" invoked it and is its source and user
// agent, the record is the key's account's, and details (nil for none)
// are its serviceEventDetails.
func ServiceEvent(t time.Time, operation, region, account, keyARN string, details json.RawMessage) *Event {
	e := &Event{Time: t, Source: "kms.amazonaws.com", Operation: operation, Region: region, SourceIP: Internal, UserAgent: Internal, EventID: keys.NewID().String(),
		EventType: "AwsServiceEvent", Identity: UserIdentity{Type: "AWSService", AccountID: account, InvokedBy: Internal}, Details: details}
	e.AddKey(keyARN)
	return e
}

// Internal is what CloudTrail gives as the invoker, source address and
// user agent of a service event.
const Internal = "AWS Internal"

type eventKey struct{}

// Work is the service events of one transaction of work no call asked
// for (or that a call did besides its own change): the service appends
// each event as the transaction decides on it, so that the store keeps
// their records with the work (internal/outbox), and records them once
// the transaction has committed.
type Work struct{ Events []*Event }

type workKey struct{}

// NewWorkContext returns ctx carrying w.
func NewWorkContext(ctx context.Context, w *Work) context.Context {
	return context.WithValue(ctx, workKey{}, w)
}

// WorkFromContext returns the Work ctx carries, or nil.
func WorkFromContext(ctx context.Context) *Work {
	w, _ := ctx.Value(workKey{}).(*Work)
	return w
}

// NewContext returns ctx carrying e, for the layers below the protocol to
// add to.
func NewContext(ctx context.Context, e *Event) context.Context {
	return context.WithValue(ctx, eventKey{}, e)
}

// FromContext returns the event ctx carries, or nil.
func FromContext(ctx context.Context) *Event {
	e, _ := ctx.Value(eventKey{}).(*Event)
	return e
}

// A Recorder writes down the event of each call before the call is
// answered. It has the shape of slog.Handler: the protocol layer and the
// service emit, the Recorder encodes. An error means the call must not be
// acknowledged.
type Recorder interface {
	Record(ctx context.Context, e *Event) error
	// Err returns the error that keeps records from being written now,
	// or nil. A call is not begun while it is not nil: what it changed
	// would stay changed without its record. After a failed write it
	// first checks whether a record would be stored now (Log.Retry), so
	// that the first call once a trail in PostgreSQL accepts rows again
	// is answered. The refusal is still offered to Record.
	Err() error
}

// LogRecorder encodes events as CloudTrail-shaped records and appends them
// to a Log. It bounds every field that comes from a client, so that no
// request, signed or not, can make its record large: anyone can reach the
// trail, and it is written before every answer.
type LogRecorder struct{ log *Log }

// NewLogRecorder returns a Recorder that appends to l.
func NewLogRecorder(l *Log) *LogRecorder { return &LogRecorder{log: l} }

var _ Recorder = (*LogRecorder)(nil)

// Bounds on what a client can put in a record.
const (
	// MaxField bounds free-text fields (user agent, operation name,
	// messages that quote them).
	MaxField = 1024
	// MaxAccessKeyID bounds the access key id of a request that failed
	// authentication: AWS's are 16 to 128 characters.
	MaxAccessKeyID = 128
	// MaxUnauthParams bounds the request parameters of a request that
	// failed authentication; larger ones are recorded as null.
	MaxUnauthParams = 1024
)

// readOnlyPrefixes mark the operations CloudTrail calls read-only.
var readOnlyPrefixes = []string{"Describe", "List", "Get", "Encrypt", "Decrypt", "ReEncrypt", "Generate", "Sign", "Verify", "Derive", "Encapsulate", "Decapsulate"}

// Err is the error that keeps the log from storing records now
// (Log.Retry).
func (r *LogRecorder) Err() error { return r.log.Retry() }

// Record encodes e and appends it to the log; it returns once the record
// is durable.
func (r *LogRecorder) Record(_ context.Context, e *Event) error {
	return r.log.Append(e.record())
}

// Snapshot is the record e would become now, as JSON without its place
// in a chain (a Record read from it has no Sequence or PrevHash): what
// internal/outbox keeps beside a call's change until the call's record
// is written.
func (e *Event) Snapshot() ([]byte, error) {
	return append(appendRecordHead(nil, e.record()), '}'), nil
}

// jsonNull is the JSON null of a record's empty members, shared by every
// record: nothing writes into a record's raw members.
var jsonNull = json.RawMessage("null")

// record is the Record e becomes.
func (e *Event) record() *Record {
	id := e.EventID
	if id == "" {
		id = keys.NewID().String()
	}
	rec := &Record{
		EventVersion: "1.11", EventTime: FormatTime(e.Time), EventSource: e.Source, EventName: Clip(e.Operation, MaxField),
		AWSRegion: e.Region, SourceIPAddress: e.SourceIP, UserAgent: Clip(e.UserAgent, MaxField), RequestID: e.RequestID,
		EventID: id, EventType: e.EventType, ManagementEvent: true, EventCategory: "Management",
		RequestParameters: e.Params, ResponseElements: jsonNull,
		ErrorCode: e.ErrorCode, ErrorMessage: Clip(e.ErrorMessage, MaxField), ServiceEventDetails: e.Details,
	}
	if rec.EventType == "" {
		rec.EventType = "AwsApiCall"
	}
	if e.Identity.Type == "" {
		rec.UnrecordedBefore = e.UnrecordedBefore
	}
	for _, p := range readOnlyPrefixes {
		if strings.HasPrefix(e.Operation, p) {
			rec.ReadOnly = true
		}
	}
	if e.Identity.Type == "" {
		// What an unauthenticated caller sent is recorded only when
		// small: anyone could otherwise fill the trail with large records.
		rec.UserIdentity = UserIdentity{Type: "Unknown", AccessKeyID: Clip(e.Identity.AccessKeyID, MaxAccessKeyID)}
		if len(rec.RequestParameters) > MaxUnauthParams {
			rec.RequestParameters = nil
		}
	} else {
		rec.UserIdentity = e.Identity
		rec.RecipientAccountID = e.Identity.AccountID
	}
	if len(rec.RequestParameters) == 0 {
		rec.RequestParameters = jsonNull
	}
	e.mu.Lock()
	if len(e.response) > 0 && e.Identity.Type != "" {
		rec.ResponseElements = e.response
	}
	if len(e.keys) > 0 {
		rec.Resources = make([]Resource, 0, len(e.keys))
	}
	for _, arn := range e.keys {
		rec.Resources = append(rec.Resources, Resource{AccountID: arnAccount(arn), Type: "AWS::KMS::Key", ARN: arn})
	}
	e.mu.Unlock()
	return rec
}

// arnAccount is the account field of arn:partition:service:region:account:resource,
// or "" if arn has not that many fields.
func arnAccount(arn string) string {
	rest := arn
	for range 4 {
		var ok bool
		if _, rest, ok = strings.Cut(rest, ":"); !ok {
			return ""
		}
	}
	acct, _, ok := strings.Cut(rest, ":")
	if !ok {
		return ""
	}
	return acct
}

// Clip cuts s to n bytes, marking the cut.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + Truncated
}

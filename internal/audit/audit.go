// Package audit keeps the audit trail: one record per API call, shaped like
// an AWS CloudTrail event for KMS (who, what, which key, from where, when,
// and the result), chained by hash so that an edited, removed or reordered
// record is detected, and anchored by signed digests so that cutting off
// the newest records is detected too (docs/audit.md).
//
// A Log appends to one chain, kept in a file beside the server's data
// (Open) or, for a cluster, in PostgreSQL, where each server process
// appends to a chain of its own (OpenPostgres). Both share the chaining
// and the group commit: a record is durable before Append returns, and
// appends from concurrent requests are stored together (one write and one
// fsync for a file, one INSERT for PostgreSQL), so the trail costs a
// request a share of one write (SyncEvery relaxes this for a file, on
// request). The log never holds plaintext, ciphertext, key material or
// secrets; the caller builds records from what may be shown.
//
// A call's record is gathered in an Event while the call runs (event.go):
// the protocol layer fills in who called and how it ended, the service
// adds the keys it resolved, and a Recorder encodes it.
//
// A data directory's newest digest is also kept as a high-water mark
// (MarkRecord in the key store, MarkFile beside the trail), so that
// cutting off the newest records together with the newest digests is
// detected too.
//
// A data directory's trail is cut into numbered segment files
// (segment.go); a cluster's chains are listed in a hash-chained registry
// whose head every digest signs (registry.go), so that a chain removed
// whole is detected.
//
// Limits: records after the last digest are protected by the chain only;
// in PostgreSQL there is no high-water mark, and the newest chain removed
// with its registry entry before any other chain signed a digest leaves
// no trace.
package audit

import (
	"encoding/json"
	"time"
)

// Record is one call, in CloudTrail's shape.
type Record struct {
	EventVersion      string          `json:"eventVersion"`
	UserIdentity      UserIdentity    `json:"userIdentity"`
	EventTime         string          `json:"eventTime"`
	EventSource       string          `json:"eventSource"`
	EventName         string          `json:"eventName"`
	AWSRegion         string          `json:"awsRegion"`
	SourceIPAddress   string          `json:"sourceIPAddress"`
	UserAgent         string          `json:"userAgent"`
	RequestParameters json.RawMessage `json:"requestParameters"`
	ResponseElements  json.RawMessage `json:"responseElements"`
	ErrorCode         string          `json:"errorCode,omitempty"`
	ErrorMessage      string          `json:"errorMessage,omitempty"`
	// UnrecordedBefore, on the record of a call refused before its caller
	// was known, counts such calls left unrecorded (over their budget)
	// since the previous record of one.
	UnrecordedBefore   uint64     `json:"unrecordedBefore,omitempty"`
	RequestID          string     `json:"requestID"`
	EventID            string     `json:"eventID"`
	ReadOnly           bool       `json:"readOnly"`
	Resources          []Resource `json:"resources,omitempty"`
	EventType          string     `json:"eventType"`
	ManagementEvent    bool       `json:"managementEvent"`
	RecipientAccountID string     `json:"recipientAccountId,omitempty"`
	// ServiceEventDetails, on a service event, says what the service did
	// as CloudTrail says it: {"rotationType", "keyId", ...} of RotateKey.
	ServiceEventDetails json.RawMessage `json:"serviceEventDetails,omitempty"`
	// AdditionalEventData, on a record written after its call's change
	// was made and the call was not recorded (internal/outbox), is
	// {"recovered":true} (docs/audit.md, "Recovered records").
	AdditionalEventData json.RawMessage `json:"additionalEventData,omitempty"`
	EventCategory       string          `json:"eventCategory"`

	// Position in the chain, set by the log.
	Sequence uint64 `json:"sequence"`
	PrevHash string `json:"previousHash"`
}

// UserIdentity is the caller.
type UserIdentity struct {
	Type        string `json:"type"` // Root, IAMUser, AssumedRole, Unknown, AWSService
	PrincipalID string `json:"principalId,omitempty"`
	ARN         string `json:"arn,omitempty"`
	AccountID   string `json:"accountId,omitempty"`
	AccessKeyID string `json:"accessKeyId,omitempty"`
	UserName    string `json:"userName,omitempty"`
	// InvokedBy, for work the service did on its own (type AWSService),
	// names the invoker as CloudTrail does: Internal ("AWS Internal").
	InvokedBy string `json:"invokedBy,omitempty"`
	// SessionContext, for a role session, names the role that issued
	// it. Who started the session is in the record of the AssumeRole
	// call whose responseElements name the session's access key id.
	SessionContext *SessionContext `json:"sessionContext,omitempty"`
}

// SessionContext is CloudTrail's sessionContext of a role session.
type SessionContext struct {
	SessionIssuer SessionIssuer     `json:"sessionIssuer"`
	Attributes    SessionAttributes `json:"attributes"`
}

// SessionIssuer is the role a session is of.
type SessionIssuer struct {
	Type        string `json:"type"`        // Role
	PrincipalID string `json:"principalId"` // the role's id, AROA...
	ARN         string `json:"arn"`         // arn:aws:iam::ACCT:role/[path/]NAME
	AccountID   string `json:"accountId"`
	UserName    string `json:"userName"` // the role's name
}

// SessionAttributes say when a session was issued (CloudTrail's time
// format) and whether with MFA ("false": this server has no MFA).
type SessionAttributes struct {
	CreationDate     string `json:"creationDate"`
	MFAAuthenticated string `json:"mfaAuthenticated"`
}

// Resource is a key the call was about.
type Resource struct {
	AccountID string `json:"accountId,omitempty"`
	Type      string `json:"type"`
	ARN       string `json:"ARN"`
}

// Recovered reports whether r was written after its call's change was
// made and its call was not recorded (AdditionalEventData
// {"recovered":true}, docs/audit.md "Recovered records").
func (r *Record) Recovered() bool {
	if len(r.AdditionalEventData) == 0 {
		return false
	}
	var extra struct {
		Recovered bool `json:"recovered"`
	}
	return json.Unmarshal(r.AdditionalEventData, &extra) == nil && extra.Recovered
}

// TimeFormat is CloudTrail's eventTime format.
const TimeFormat = "2006-01-02T15:04:05Z"

// FormatTime formats an event time.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

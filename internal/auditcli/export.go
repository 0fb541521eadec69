package auditcli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/openkms/kms/internal/audit"
)

// `kms audit export` writes the records of a time range as JSON lines
// (the events as stored) or as a CloudTrail log file, {"Records":[...]},
// each record an event as CloudTrail delivers it for KMS. Before writing
// it checks the trail as `kms audit verify` does and refuses a trail that
// does not verify, unless told not to check (NoVerify).

// ExportOptions are the options of Export beyond the source's.
type ExportOptions struct {
	Format   string // "jsonl" (default) or "cloudtrail"
	NoVerify bool
}

// ErrExportBroken is returned by Export when the trail does not verify.
var ErrExportBroken = errors.New("the audit trail does not verify: nothing exported (run kms audit verify; --no-verify exports it as it is)")

// Export writes the records of o's source between o.Since (included) and
// o.Until (excluded) to o.Output, or to stdout if it is "". A file is
// written beside its path and renamed into place once complete.
func Export(ctx context.Context, o Options, e ExportOptions, stdout io.Writer) (err error) {
	switch e.Format {
	case "", "jsonl":
		e.Format = "jsonl"
	case "cloudtrail":
	default:
		return fmt.Errorf("--format is jsonl or cloudtrail, not %q", e.Format)
	}
	if o.Endpoint != "" {
		return errors.New("export reads a data directory or a database: give --data-dir or --storage")
	}
	if err := refuseOutputInTrail(o, "-o", false); err != nil {
		return err
	}
	flt, err := newFilter(Options{Since: o.Since, Until: o.Until})
	if err != nil {
		return err
	}
	src, err := openSource(ctx, o)
	if err != nil {
		return err
	}
	defer src.close()
	if !e.NoVerify {
		reports, err := src.verify(ctx, nil)
		if err != nil {
			return err
		}
		for _, r := range reports {
			if p := r.Problem; p != nil {
				where := ""
				if r.Chain != "" {
					where = "chain " + r.Chain + ": "
				}
				return fmt.Errorf("%s%s: %w", where, p.Reason, ErrExportBroken)
			}
		}
	}
	out := stdout
	var tmp *os.File
	if o.Output != "" {
		if tmp, err = os.CreateTemp(filepath.Dir(o.Output), "."+filepath.Base(o.Output)+".tmp*"); err != nil {
			return fmt.Errorf("-o: %w", err)
		}
		defer func() {
			if err != nil {
				tmp.Close()
				os.Remove(tmp.Name())
			}
		}()
		out = tmp
	}
	w := bufio.NewWriterSize(out, 1<<16)
	n := 0
	if e.Format == "cloudtrail" {
		w.WriteString(`{"Records":[`)
	}
	err = src.next(ctx, flt.keep, func(r record) error {
		if e.Format == "jsonl" {
			w.Write(r.event)
			return w.WriteByte('\n')
		}
		b, err := json.Marshal(CloudTrailEvent(r.rec))
		if err != nil {
			return err
		}
		if n > 0 {
			w.WriteByte(',')
		}
		n++
		_, err = w.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	if e.Format == "cloudtrail" {
		w.WriteString("]}\n")
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if tmp == nil {
		return nil
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), o.Output)
}

// CloudTrailRecord is a record as CloudTrail delivers a KMS event in a
// log file. The trail's own fields (the record's place in its chain) go
// in additionalEventData.
type CloudTrailRecord struct {
	EventVersion        string             `json:"eventVersion"`
	UserIdentity        audit.UserIdentity `json:"userIdentity"`
	EventTime           string             `json:"eventTime"`
	EventSource         string             `json:"eventSource"`
	EventName           string             `json:"eventName"`
	AWSRegion           string             `json:"awsRegion"`
	SourceIPAddress     string             `json:"sourceIPAddress"`
	UserAgent           string             `json:"userAgent"`
	ErrorCode           string             `json:"errorCode,omitempty"`
	ErrorMessage        string             `json:"errorMessage,omitempty"`
	RequestParameters   json.RawMessage    `json:"requestParameters"`
	ResponseElements    json.RawMessage    `json:"responseElements"`
	AdditionalEventData json.RawMessage    `json:"additionalEventData,omitempty"`
	RequestID           string             `json:"requestID"`
	EventID             string             `json:"eventID"`
	ReadOnly            bool               `json:"readOnly"`
	Resources           []audit.Resource   `json:"resources,omitempty"`
	EventType           string             `json:"eventType"`
	ManagementEvent     bool               `json:"managementEvent"`
	RecipientAccountID  string             `json:"recipientAccountId"`
	ServiceEventDetails json.RawMessage    `json:"serviceEventDetails,omitempty"`
	EventCategory       string             `json:"eventCategory"`
}

// CloudTrailEventVersion is the eventVersion of exported CloudTrail
// records: the version whose fields they carry.
const CloudTrailEventVersion = "1.08"

// CloudTrailEvent maps a record to CloudTrail's event fields.
func CloudTrailEvent(r *audit.Record) *CloudTrailRecord {
	extra, _ := json.Marshal(struct {
		Sequence         uint64 `json:"sequence"`
		PreviousHash     string `json:"previousHash"`
		UnrecordedBefore uint64 `json:"unrecordedBefore,omitempty"`
		Recovered        bool   `json:"recovered,omitempty"`
	}{r.Sequence, r.PrevHash, r.UnrecordedBefore, r.Recovered()})
	return &CloudTrailRecord{
		EventVersion:        CloudTrailEventVersion,
		UserIdentity:        r.UserIdentity,
		EventTime:           r.EventTime,
		EventSource:         r.EventSource,
		EventName:           r.EventName,
		AWSRegion:           r.AWSRegion,
		SourceIPAddress:     r.SourceIPAddress,
		UserAgent:           r.UserAgent,
		ErrorCode:           r.ErrorCode,
		ErrorMessage:        r.ErrorMessage,
		RequestParameters:   orNull(r.RequestParameters),
		ResponseElements:    orNull(r.ResponseElements),
		AdditionalEventData: extra,
		RequestID:           r.RequestID,
		EventID:             r.EventID,
		ReadOnly:            r.ReadOnly,
		Resources:           r.Resources,
		EventType:           orDefault(r.EventType, "AwsApiCall"),
		ManagementEvent:     true,
		RecipientAccountID:  orDefault(r.RecipientAccountID, r.UserIdentity.AccountID),
		ServiceEventDetails: r.ServiceEventDetails,
		EventCategory:       orDefault(r.EventCategory, "Management"),
	}
}

func orNull(b json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(b)) == 0 {
		return json.RawMessage("null")
	}
	return b
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

package audit

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// appendRecord writes r as JSON, the same bytes encoding/json would write
// for it (fields in declaration order, omitempty honoured), without
// reflection: the record is encoded on every call's path. RawMessage
// fields should hold valid, compact JSON; whatever they hold is written
// cleaned (CleanJSON), so that a record is valid JSON, without invalid
// UTF-8 or lone surrogates, whatever a client sent.
func appendRecord(b []byte, r *Record) []byte {
	return appendRecordTail(appendRecordHead(b, r), r)
}

// appendRecordHead writes r up to its position in the chain: all of the
// record but its last two fields, which only the log knows. Each caller of
// Append encodes its own head, outside the log's serial section.
func appendRecordHead(b []byte, r *Record) []byte {
	b = append(b, `{"eventVersion":`...)
	b = appendString(b, r.EventVersion)
	b = append(b, `,"userIdentity":{"type":`...)
	b = appendString(b, r.UserIdentity.Type)
	b = appendOpt(b, "principalId", r.UserIdentity.PrincipalID)
	b = appendOpt(b, "arn", r.UserIdentity.ARN)
	b = appendOpt(b, "accountId", r.UserIdentity.AccountID)
	b = appendOpt(b, "accessKeyId", r.UserIdentity.AccessKeyID)
	b = appendOpt(b, "userName", r.UserIdentity.UserName)
	b = appendOpt(b, "invokedBy", r.UserIdentity.InvokedBy)
	if sc := r.UserIdentity.SessionContext; sc != nil {
		si := &sc.SessionIssuer
		b = append(b, `,"sessionContext":{"sessionIssuer":{"type":`...)
		b = appendString(b, si.Type)
		b = append(b, `,"principalId":`...)
		b = appendString(b, si.PrincipalID)
		b = append(b, `,"arn":`...)
		b = appendString(b, si.ARN)
		b = append(b, `,"accountId":`...)
		b = appendString(b, si.AccountID)
		b = append(b, `,"userName":`...)
		b = appendString(b, si.UserName)
		b = append(b, `},"attributes":{"creationDate":`...)
		b = appendString(b, sc.Attributes.CreationDate)
		b = append(b, `,"mfaAuthenticated":`...)
		b = appendString(b, sc.Attributes.MFAAuthenticated)
		b = append(b, `}}`...)
	}
	b = append(b, `},"eventTime":`...)
	b = appendString(b, r.EventTime)
	b = append(b, `,"eventSource":`...)
	b = appendString(b, r.EventSource)
	b = append(b, `,"eventName":`...)
	b = appendString(b, r.EventName)
	b = append(b, `,"awsRegion":`...)
	b = appendString(b, r.AWSRegion)
	b = append(b, `,"sourceIPAddress":`...)
	b = appendString(b, r.SourceIPAddress)
	b = append(b, `,"userAgent":`...)
	b = appendString(b, r.UserAgent)
	b = append(b, `,"requestParameters":`...)
	b = appendRaw(b, r.RequestParameters)
	b = append(b, `,"responseElements":`...)
	b = appendRaw(b, r.ResponseElements)
	b = appendOpt(b, "errorCode", r.ErrorCode)
	b = appendOpt(b, "errorMessage", r.ErrorMessage)
	if r.UnrecordedBefore > 0 {
		b = append(b, `,"unrecordedBefore":`...)
		b = strconv.AppendUint(b, r.UnrecordedBefore, 10)
	}
	b = append(b, `,"requestID":`...)
	b = appendString(b, r.RequestID)
	b = append(b, `,"eventID":`...)
	b = appendString(b, r.EventID)
	b = append(b, `,"readOnly":`...)
	b = strconv.AppendBool(b, r.ReadOnly)
	if len(r.Resources) > 0 {
		b = append(b, `,"resources":[`...)
		for i, res := range r.Resources {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			if res.AccountID != "" {
				b = append(b, `"accountId":`...)
				b = appendString(b, res.AccountID)
				b = append(b, ',')
			}
			b = append(b, `"type":`...)
			b = appendString(b, res.Type)
			b = append(b, `,"ARN":`...)
			b = appendString(b, res.ARN)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"eventType":`...)
	b = appendString(b, r.EventType)
	b = append(b, `,"managementEvent":`...)
	b = strconv.AppendBool(b, r.ManagementEvent)
	b = appendOpt(b, "recipientAccountId", r.RecipientAccountID)
	if len(r.ServiceEventDetails) > 0 {
		b = append(b, `,"serviceEventDetails":`...)
		b = appendRaw(b, r.ServiceEventDetails)
	}
	if len(r.AdditionalEventData) > 0 {
		b = append(b, `,"additionalEventData":`...)
		b = appendRaw(b, r.AdditionalEventData)
	}
	b = append(b, `,"eventCategory":`...)
	return appendString(b, r.EventCategory)
}

// appendRecordTail writes the fields that place r in its chain, closing
// the record appendRecordHead began.
func appendRecordTail(b []byte, r *Record) []byte {
	b = append(b, `,"sequence":`...)
	b = strconv.AppendUint(b, r.Sequence, 10)
	b = append(b, `,"previousHash":`...)
	b = appendString(b, r.PrevHash)
	return append(b, '}')
}

func appendOpt(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, v)
}

func appendRaw(b []byte, raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return append(b, "null"...)
	}
	start := len(b)
	b = appendClean(b, raw, 0)
	if !json.Valid(b[start:]) {
		return append(b[:start], "null"...)
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string as encoding/json writes it:
// HTML characters and U+2028/U+2029 escaped, invalid UTF-8 as U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/openkms/kms/internal/audit"
)

// requestParameters keeps the audited members of a JSON request body that
// are in has (nil: all), named as CloudTrail names them. Members that are
// not audited, a plaintext among them, are skipped, not copied. Nil: none.
func requestParameters(body []byte, has *paramSet) json.RawMessage {
	if len(body) == 0 {
		return nil
	}
	b, ok := scanParams(body, has)
	if !ok {
		b = decodeParams(body, has)
	}
	return b
}

// paramSet says which audited members (by their index in auditedParams)
// an operation's input has.
type paramSet [len(auditedParams)]bool

// paramsOf is the set of audited members a request of type t has: those
// encoding/json would decode into one of its fields.
func paramsOf(t reflect.Type) *paramSet {
	var s paramSet
	for i, name := range auditedParams {
		f, _ := fieldOf(t, name)
		s[i] = f >= 0
	}
	return &s
}

// trailParams are the audited members of the trail-reading operations.
var trailParams = paramsOf(reflect.TypeFor[trailPageInput]())

// keep reports whether the audited member f is recorded for an input
// with the members has (nil: any).
func (has *paramSet) keep(f int) bool { return has == nil || has[f] }

// decodeParams is requestParameters for a body scanParams does not handle:
// it walks the top-level members with encoding/json's decoder, which
// unescapes member names as the operation's own decoding does.
func decodeParams(body []byte, has *paramSet) json.RawMessage {
	var found [len(auditedParams)][]byte
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil
		}
		name, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil
		}
		if f, ok := paramIndex([]byte(name)); ok && has.keep(f) {
			found[f] = v
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil
	}
	b, _ := writeParams(&found)
	return b
}

// scanParams collects the audited members of a JSON request body in one
// pass over its bytes, without decoding it: each top-level member's value
// is found by skipping over it (a long plaintext is passed with a search
// for its closing quote), and only the audited ones are kept, as the raw
// bytes the client sent. The result is what decodeParams gives (members
// matched with case folded as paramIndex does, the last of duplicates
// kept, written in auditedParams order, only those in has), and ok is
// false when the body has anything this scan does not handle as
// encoding/json would — an escaped or non-ASCII member name, or a value
// that is not valid JSON — so that the caller decodes it instead.
func scanParams(body []byte, has *paramSet) (json.RawMessage, bool) {
	var found [len(auditedParams)][]byte
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return nil, false
	}
	i = skipSpace(body, i+1)
	if i < len(body) && body[i] == '}' {
		return finishParams(&found, body, i+1)
	}
	for {
		if i >= len(body) || body[i] != '"' {
			return nil, false
		}
		start := i + 1
		end := start
		for end < len(body) && body[end] != '"' {
			if c := body[end]; c == '\\' || c >= 0x80 || c < 0x20 {
				return nil, false
			}
			end++
		}
		if end >= len(body) {
			return nil, false
		}
		name := body[start:end]
		i = skipSpace(body, end+1)
		if i >= len(body) || body[i] != ':' {
			return nil, false
		}
		i = skipSpace(body, i+1)
		vstart := i
		if i = skipValue(body, i); i < 0 {
			return nil, false
		}
		if f, ok := paramIndex(name); ok && has.keep(f) {
			v := body[vstart:i]
			if !json.Valid(v) {
				return nil, false
			}
			found[f] = v
		}
		i = skipSpace(body, i)
		if i >= len(body) {
			return nil, false
		}
		switch body[i] {
		case ',':
			i = skipSpace(body, i+1)
		case '}':
			return finishParams(&found, body, i+1)
		default:
			return nil, false
		}
	}
}

// finishParams writes the members found, once nothing but space follows
// the object.
func finishParams(found *[len(auditedParams)][]byte, body []byte, i int) (json.RawMessage, bool) {
	if skipSpace(body, i) != len(body) {
		return nil, false
	}
	return writeParams(found)
}

// writeParams writes the members found as one JSON object of at most
// maxParamsBytes, each string and array bounded (audit.AppendBounded); a
// member that would take the object past maxParamsBytes is written as the
// string audit.Truncated, or left out if even that would. Nil if none
// were found.
func writeParams(found *[len(auditedParams)][]byte) (json.RawMessage, bool) {
	var b []byte
	for f, v := range found {
		if v == nil {
			continue
		}
		mark := len(b)
		if b == nil {
			b = make([]byte, 0, 256)
			b = append(b, '{')
		} else {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, paramNames[f]...)
		b = append(b, '"', ':')
		room := maxParamsBytes - len(b) - len("}")
		if room > 0 {
			var ok bool
			if b, ok = audit.AppendBounded(b, v, maxParamString(paramNames[f]), maxParamItems, room); ok {
				continue
			}
		}
		if room >= len(audit.Truncated)+2 {
			b = append(b, '"')
			b = append(b, audit.Truncated...)
			b = append(b, '"')
		} else if b = b[:mark]; mark == 0 {
			b = nil
		}
	}
	if b == nil {
		return nil, true
	}
	return append(b, '}'), true
}

// paramIndex finds an audited member by its name, folded as
// encoding/json folds it (foldRune), so that no spelling the operation
// decodes as an audited member goes unrecorded.
func paramIndex(name []byte) (int, bool) {
	var folded [40]byte
	n := 0
	for i := 0; i < len(name); n++ {
		if n == len(folded) {
			return 0, false // longer than any audited name
		}
		r, size := rune(name[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRune(name[i:])
		}
		if r = foldRune(r); r >= utf8.RuneSelf {
			return 0, false // audited names are ASCII
		}
		folded[n], i = byte(r), i+size
	}
	f, ok := paramLookup[string(folded[:n])]
	return f, ok
}

// auditedParams lists the request members that may appear in the trail:
// identifiers, contexts, algorithms and settings, never plaintext,
// ciphertext, messages, signatures, key material or secrets. It is the one
// list both protocols read; records name the members in this order.
var auditedParams = [...]string{
	"KeyId", "EncryptionContext", "EncryptionAlgorithm", "KeySpec", "NumberOfBytes", "KeyUsage", "Origin", "Description",
	"AliasName", "TargetKeyId", "Limit", "PendingWindowInDays", "Tags", "TagKeys", "GrantTokens", "SourceKeyId",
	"DestinationKeyId", "SourceEncryptionContext", "DestinationEncryptionContext", "SourceEncryptionAlgorithm",
	"DestinationEncryptionAlgorithm", "RotationPeriodInDays", "IncludeKeyMaterial", "WrappingAlgorithm",
	"WrappingKeySpec", "ExpirationModel", "ValidTo", "ImportType", "KeyMaterialId", "PolicyName", "Policy",
	"BypassPolicyLockoutSafetyCheck", "GranteePrincipal", "RetiringPrincipal", "Operations", "Constraints", "Name",
	"GrantId", "SigningAlgorithm", "MessageType", "MacAlgorithm", "KeyAgreementAlgorithm", "KeyPairSpec", "DryRun",
	"EncapsulationAlgorithm",
	"MultiRegion", "ReplicaRegion", "PrimaryRegion", "CustomerMasterKeySpec", "DryRunModifiers", "KeyMaterialDescription",
	// custom key stores (their password and proxy credential are secrets)
	"CustomKeyStoreId", "CustomKeyStoreName", "NewCustomKeyStoreName", "CustomKeyStoreType", "CloudHsmClusterId",
	"XksProxyUriEndpoint", "XksProxyUriPath", "XksProxyConnectivity", "XksKeyId",
	// reading the audit trail
	"Chain", "AfterSequence",
	// IAM and STS
	"UserName", "RoleName", "Path", "PolicyDocument", "AssumeRolePolicyDocument",
	"AccessKeyId", "Status", "RoleArn", "RoleSessionName", "DurationSeconds", "MaxSessionDuration", "PasswordResetRequired",
}

// paramNames are auditedParams as CloudTrail names them (lower camel
// case); paramLookup maps each audited name, folded (foldRune), to its
// index.
var paramNames, paramLookup = func() ([len(auditedParams)]string, map[string]int) {
	var names [len(auditedParams)]string
	m := make(map[string]int, len(auditedParams))
	for i, n := range auditedParams {
		names[i] = lowerFirst(n)
		m[foldName(n)] = i
	}
	return names, m
}()

// isAuditedForm reports whether a form field is audited: form names
// match exactly.
func isAuditedForm(name string) bool {
	i, ok := paramIndex([]byte(name))
	return ok && auditedParams[i] == name
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns where the JSON value at i ends, or -1 if it is cut
// short. It checks the value's extent, not its validity.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				if i = skipString(b, i); i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	default: // a number or a literal: up to the next delimiter
		start := i
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
			i++
		}
		if i == start {
			return -1
		}
		return i
	}
}

// skipString returns the index after the string that starts at b[i] == '"'.
func skipString(b []byte, i int) int {
	i++
	for i < len(b) {
		switch b[i] {
		case '"':
			return i + 1
		case '\\':
			i += 2
			continue
		}
		i++
	}
	return -1
}

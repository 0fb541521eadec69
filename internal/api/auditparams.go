package api

import (
	"encoding/json"
	"reflect"

	"github.com/openkms/kms/internal/audit"
)

// scanParams collects the audited members of a JSON request body in one
// pass over its bytes, without decoding it: each top-level member's value
// is found by skipping over it (a long plaintext is passed with a search
// for its closing quote), and only the audited ones are kept, as the raw
// bytes the client sent. The result is what decoding into kmsParams gives
// (members matched case-insensitively, the last of duplicates kept, written
// in kmsParamFields order), and ok is false when the body has anything this
// scan does not handle as encoding/json would — an escaped or non-ASCII
// member name, or a value that is not valid JSON — so that the caller
// decodes it instead.
func scanParams(body []byte) (json.RawMessage, bool) {
	var found [len(kmsParamNames)][]byte
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
		if f, ok := paramIndex(name); ok {
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
func finishParams(found *[len(kmsParamNames)][]byte, body []byte, i int) (json.RawMessage, bool) {
	if skipSpace(body, i) != len(body) {
		return nil, false
	}
	var b []byte
	for f, v := range found {
		if v == nil {
			continue
		}
		if b == nil {
			b = make([]byte, 0, 256)
			b = append(b, '{')
		} else {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, kmsParamFields[f]...)
		b = append(b, '"', ':')
		b = append(b, audit.CleanJSON(v, maxParamString(kmsParamFields[f]))...)
	}
	if b == nil {
		return json.RawMessage("null"), true
	}
	return append(b, '}'), true
}

// paramIndex finds an audited member by its name, ignoring ASCII case as
// encoding/json does.
func paramIndex(name []byte) (int, bool) {
	if len(name) > 40 {
		return 0, false
	}
	var lower [40]byte
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	f, ok := kmsParamIndex[string(lower[:len(name)])]
	return f, ok
}

// kmsParamNames are kmsParams' field names; kmsParamIndex maps each,
// lower-cased, to its index.
var kmsParamNames = [...]string{
	"KeyId", "EncryptionContext", "EncryptionAlgorithm", "KeySpec", "NumberOfBytes", "KeyUsage", "Origin", "Description",
	"AliasName", "TargetKeyId", "Limit", "PendingWindowInDays", "Tags", "TagKeys", "GrantTokens", "SourceKeyId",
	"DestinationKeyId", "SourceEncryptionContext", "DestinationEncryptionContext", "SourceEncryptionAlgorithm",
	"DestinationEncryptionAlgorithm", "RotationPeriodInDays", "IncludeKeyMaterial", "WrappingAlgorithm",
	"WrappingKeySpec", "ExpirationModel", "ValidTo", "ImportType", "KeyMaterialId", "PolicyName", "Policy",
	"BypassPolicyLockoutSafetyCheck", "GranteePrincipal", "RetiringPrincipal", "Operations", "Constraints", "Name",
	"GrantId", "SigningAlgorithm", "MessageType", "MacAlgorithm", "KeyAgreementAlgorithm", "KeyPairSpec", "DryRun",
	"MultiRegion", "Chain", "AfterSequence",
}

var kmsParamIndex = func() map[string]int {
	t := reflect.TypeOf(kmsParams{})
	if t.NumField() != len(kmsParamNames) {
		panic("kmsParamNames does not match kmsParams")
	}
	m := make(map[string]int, len(kmsParamNames))
	for i, n := range kmsParamNames {
		if t.Field(i).Name != n {
			panic("kmsParamNames does not match kmsParams at " + n)
		}
		lower := []byte(n)
		for j, c := range lower {
			if 'A' <= c && c <= 'Z' {
				lower[j] = c + 'a' - 'A'
			}
		}
		m[string(lower)] = i
	}
	return m
}()

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

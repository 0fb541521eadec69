package api

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/sigv4"
)

// callInfo is what the audit record of a call needs to know about it.
type callInfo struct {
	source    string // eventSource: kms.amazonaws.com, iam.amazonaws.com, sts.amazonaws.com
	op        string
	body      []byte     // KMS: the JSON request
	form      url.Values // IAM and STS: the form
	principal *identity.Principal
}

// auditedParams lists the request members that may appear in the trail:
// identifiers, contexts, algorithms and settings, never plaintext,
// ciphertext, messages, signatures, key material or secrets.
var auditedParams = map[string]bool{
	"KeyId": true, "EncryptionContext": true, "EncryptionAlgorithm": true, "KeySpec": true, "NumberOfBytes": true,
	"KeyUsage": true, "Origin": true, "Description": true, "AliasName": true, "TargetKeyId": true, "Limit": true,
	"PendingWindowInDays": true, "Tags": true, "TagKeys": true, "GrantTokens": true, "SourceKeyId": true,
	"DestinationKeyId": true, "SourceEncryptionContext": true, "DestinationEncryptionContext": true,
	"SourceEncryptionAlgorithm": true, "DestinationEncryptionAlgorithm": true, "RotationPeriodInDays": true,
	"IncludeKeyMaterial": true, "WrappingAlgorithm": true, "WrappingKeySpec": true, "ExpirationModel": true,
	"ValidTo": true, "ImportType": true, "KeyMaterialId": true, "PolicyName": true, "Policy": true,
	"BypassPolicyLockoutSafetyCheck": true, "GranteePrincipal": true, "RetiringPrincipal": true, "Operations": true,
	"Constraints": true, "Name": true, "GrantId": true, "SigningAlgorithm": true, "MessageType": true,
	"MacAlgorithm": true, "KeyAgreementAlgorithm": true, "KeyPairSpec": true, "DryRun": true, "MultiRegion": true,
	// reading the audit trail
	"Chain": true, "AfterSequence": true,
	// IAM and STS
	"UserName": true, "RoleName": true, "Path": true, "PolicyDocument": true, "AssumeRolePolicyDocument": true,
	"AccessKeyId": true, "RoleArn": true, "RoleSessionName": true, "DurationSeconds": true, "MaxSessionDuration": true,
}

// readOnlyPrefixes mark the operations CloudTrail calls read-only.
var readOnlyPrefixes = []string{"Describe", "List", "Get", "Encrypt", "Decrypt", "ReEncrypt", "Generate", "Sign", "Verify", "Derive"}

// audit records a call before it is answered. Without a trail it does
// nothing. An error means the call must not be acknowledged.
func (h *Handler) audit(r *http.Request, reqID string, ci *callInfo, out any, callErr error) error {
	if h.trail == nil {
		return nil
	}
	rec := &audit.Record{
		EventVersion: "1.11", EventTime: audit.FormatTime(h.now()), EventSource: ci.source, EventName: clip(ci.op),
		AWSRegion: h.region, SourceIPAddress: sourceIP(r), UserAgent: clip(r.UserAgent()), RequestID: reqID,
		EventID: keys.NewID().String(), EventType: "AwsApiCall", ManagementEvent: true, EventCategory: "Management",
		ResponseElements: json.RawMessage("null"),
	}
	for _, p := range readOnlyPrefixes {
		if strings.HasPrefix(ci.op, p) {
			rec.ReadOnly = true
		}
	}
	if p := ci.principal; p != nil {
		rec.UserIdentity = audit.UserIdentity{Type: p.Type, PrincipalID: p.UserID, ARN: p.ARN, AccountID: p.Account,
			AccessKeyID: p.AccessKeyID, UserName: p.Username}
		rec.RecipientAccountID = p.Account
	} else {
		rec.UserIdentity.Type = "Unknown"
		if a, err := sigv4.Parse(r); err == nil {
			rec.UserIdentity.AccessKeyID = clipTo(a.AccessKeyID, maxAccessKeyID)
		}
	}
	// What an unauthenticated caller sent is recorded only when small:
	// anyone could otherwise fill the trail with large records.
	rec.RequestParameters = requestParameters(ci)
	if ci.principal == nil && len(rec.RequestParameters) > maxUnauthParams {
		rec.RequestParameters = json.RawMessage("null")
	}
	if callErr != nil {
		_, typ, msg := wireError(callErr)
		if ci.source == "iam.amazonaws.com" || ci.source == "sts.amazonaws.com" {
			_, typ, msg = queryWireError(callErr)
		}
		rec.ErrorCode, rec.ErrorMessage = typ, clip(msg)
	}
	arn := keyARN(ci, out)
	if arn == "" && ci.principal != nil && h.svc != nil {
		arn = h.resolvedKeyARN(r, ci)
	}
	if arn != "" {
		acct := ""
		if parts := strings.SplitN(arn, ":", 6); len(parts) == 6 {
			acct = parts[4]
		}
		rec.Resources = []audit.Resource{{AccountID: acct, Type: "AWS::KMS::Key", ARN: arn}}
	}
	if err := h.trail.Append(rec); err != nil {
		h.log.Error("audit trail write failed; the call is refused", "requestId", reqID, "err", err)
		return &protocolError{http.StatusInternalServerError, "KMSInternalException", "An internal error occurred. Retry the request."}
	}
	return nil
}

// requestParameters keeps the audited members of a request, named as
// CloudTrail names them (lower camel case). For a JSON body it decodes only
// those members (the others, a plaintext among them, are skipped, not
// copied) and writes them in a fixed order.
func requestParameters(ci *callInfo) json.RawMessage {
	if ci.form != nil {
		out := map[string]any{}
		for k, v := range ci.form {
			if auditedParams[k] && len(v) > 0 {
				name := lowerFirst(k)
				out[name] = clipTo(v[0], maxParamString(name))
			}
		}
		if len(out) == 0 {
			return json.RawMessage("null")
		}
		b, err := json.Marshal(out)
		if err != nil {
			return json.RawMessage("null")
		}
		return b
	}
	if len(ci.body) == 0 {
		return json.RawMessage("null")
	}
	if b, ok := scanParams(ci.body); ok {
		return b
	}
	return decodeParams(ci.body)
}

// decodeParams is requestParameters for a body scanParams does not handle:
// it decodes the audited members with encoding/json.
func decodeParams(body []byte) json.RawMessage {
	var p kmsParams
	if json.Unmarshal(body, &p) != nil {
		return json.RawMessage("null")
	}
	v := reflect.ValueOf(&p).Elem()
	b := make([]byte, 0, 256)
	for i, f := range kmsParamFields {
		raw := v.Field(i).Bytes()
		if len(raw) == 0 {
			continue
		}
		if len(b) == 0 {
			b = append(b, '{')
		} else {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, f...)
		b = append(b, '"', ':')
		b = append(b, audit.CleanJSON(raw, maxParamString(f))...)
	}
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return append(b, '}')
}

// kmsParams holds the audited members of a KMS request; its fields are
// named after auditedParams.
type kmsParams struct {
	KeyId, EncryptionContext, EncryptionAlgorithm, KeySpec, NumberOfBytes, KeyUsage, Origin, Description,
	AliasName, TargetKeyId, Limit, PendingWindowInDays, Tags, TagKeys, GrantTokens, SourceKeyId,
	DestinationKeyId, SourceEncryptionContext, DestinationEncryptionContext, SourceEncryptionAlgorithm,
	DestinationEncryptionAlgorithm, RotationPeriodInDays, IncludeKeyMaterial, WrappingAlgorithm,
	WrappingKeySpec, ExpirationModel, ValidTo, ImportType, KeyMaterialId, PolicyName, Policy,
	BypassPolicyLockoutSafetyCheck, GranteePrincipal, RetiringPrincipal, Operations, Constraints, Name,
	GrantId, SigningAlgorithm, MessageType, MacAlgorithm, KeyAgreementAlgorithm, KeyPairSpec, DryRun,
	MultiRegion, Chain, AfterSequence json.RawMessage
}

// kmsParamFields are the CloudTrail names of kmsParams' fields, in order.
var kmsParamFields = func() []string {
	t := reflect.TypeOf(kmsParams{})
	out := make([]string, t.NumField())
	for i := range out {
		out[i] = lowerFirst(t.Field(i).Name)
	}
	return out
}()

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// keyARN finds the key a KMS call was about: the ARN in the answer
// (KeyId, or KeyMetadata.Arn), or the key ARN the request gave.
func keyARN(ci *callInfo, out any) string {
	if ci.source != "kms.amazonaws.com" {
		return ""
	}
	if v := reflect.ValueOf(out); v.Kind() == reflect.Pointer && !v.IsNil() && v.Elem().Kind() == reflect.Struct {
		e := v.Elem()
		if f := e.FieldByName("KeyID"); f.Kind() == reflect.String && strings.HasPrefix(f.String(), "arn:") {
			return f.String()
		}
		if f := e.FieldByName("KeyMetadata"); f.Kind() == reflect.Pointer && !f.IsNil() {
			if a := f.Elem().FieldByName("Arn"); a.Kind() == reflect.String {
				return a.String()
			}
		}
	}
	var req struct {
		KeyID string `json:"KeyId"`
	}
	if len(ci.body) > 0 && json.Unmarshal(ci.body, &req) == nil && strings.HasPrefix(req.KeyID, "arn:") && strings.Contains(req.KeyID, ":key/") {
		return req.KeyID
	}
	return ""
}

func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Every field of a record that comes from the client is bounded, so that
// no request, signed or not, can make its record large: anyone can reach
// the trail, and it is written before every answer.
const (
	// maxField bounds free-text fields (user agent, operation name,
	// messages that quote them).
	maxField = 1024
	// maxAccessKeyID bounds the access key id of a request that failed
	// authentication: AWS's are 16 to 128 characters.
	maxAccessKeyID = 128
	// maxUnauthParams bounds the request parameters of a request that
	// failed authentication; larger ones are recorded as null.
	maxUnauthParams = 1024
	// maxParamBytes bounds each string in the request parameters, as
	// written in JSON, but for policies, which maxPolicyBytes bounds as AWS
	// does a key policy.
	maxParamBytes  = 2048
	maxPolicyBytes = 32 << 10
)

// maxParamString is the bound on the strings of the request parameter
// named name.
func maxParamString(name string) int {
	switch name {
	case "policy", "policyDocument", "assumeRolePolicyDocument":
		return maxPolicyBytes
	}
	return maxParamBytes
}

func clip(s string) string { return clipTo(s, maxField) }

// clipTo cuts s to n bytes, marking the cut. A character cut in two is
// written as U+FFFD.
func clipTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + audit.Truncated
}

// resolvedKeyARN asks the service which key the request's KeyId (or
// TargetKeyId) names, for calls that named it by id or alias and whose
// answer carries no ARN.
func (h *Handler) resolvedKeyARN(r *http.Request, ci *callInfo) string {
	var req struct {
		KeyID       string `json:"KeyId"`
		TargetKeyID string `json:"TargetKeyId"`
	}
	if len(ci.body) == 0 || json.Unmarshal(ci.body, &req) != nil {
		return ""
	}
	ident := req.KeyID
	if ident == "" {
		ident = req.TargetKeyID
	}
	if ident == "" {
		return ""
	}
	return h.svc.KeyARN(r.Context(), callerOf(ci.principal, r), ident)
}

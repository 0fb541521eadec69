package api

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
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
	// IAM and STS
	"UserName": true, "RoleName": true, "Path": true, "PolicyDocument": true, "AssumeRolePolicyDocument": true,
	"AccessKeyId": true, "RoleArn": true, "RoleSessionName": true, "DurationSeconds": true, "MaxSessionDuration": true,
}

// readOnlyPrefixes mark the operations CloudTrail calls read-only.
var readOnlyPrefixes = []string{"Describe", "List", "Get", "Encrypt", "Decrypt", "ReEncrypt", "Generate", "Sign", "Verify", "Derive"}

// audit records a call before it is answered. Without a trail it does
// nothing. An error means the call must not be acknowledged.
func (h *Handler) audit(r *http.Request, reqID string, ci *callInfo, respBody []byte, callErr error) error {
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
			rec.UserIdentity.AccessKeyID = a.AccessKeyID
		}
	}
	// What an unauthenticated caller sent is recorded only when small:
	// anyone could otherwise fill the trail with large records.
	rec.RequestParameters = requestParameters(ci)
	if ci.principal == nil && len(rec.RequestParameters) > maxField {
		rec.RequestParameters = json.RawMessage("null")
	}
	if callErr != nil {
		_, typ, msg := wireError(callErr)
		if ci.source != "kms.amazonaws.com" {
			_, typ, msg = queryWireError(callErr)
		}
		rec.ErrorCode, rec.ErrorMessage = typ, clip(msg)
	}
	arn := keyARN(ci, respBody)
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
// CloudTrail names them (lower camel case).
func requestParameters(ci *callInfo) json.RawMessage {
	out := map[string]any{}
	if ci.form != nil {
		for k, v := range ci.form {
			if auditedParams[k] && len(v) > 0 {
				out[lowerFirst(k)] = v[0]
			}
		}
	} else if len(ci.body) > 0 {
		var m map[string]json.RawMessage
		if json.Unmarshal(ci.body, &m) == nil {
			for k, v := range m {
				if auditedParams[k] {
					out[lowerFirst(k)] = v
				}
			}
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

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// keyARN finds the key a KMS call was about: the ARN in the response, or
// the identifier the request gave.
func keyARN(ci *callInfo, respBody []byte) string {
	if ci.source != "kms.amazonaws.com" {
		return ""
	}
	var resp struct {
		KeyID       string `json:"KeyId"`
		KeyMetadata *struct {
			Arn string `json:"Arn"`
		} `json:"KeyMetadata"`
	}
	if len(respBody) > 0 && json.Unmarshal(respBody, &resp) == nil {
		if resp.KeyMetadata != nil && resp.KeyMetadata.Arn != "" {
			return resp.KeyMetadata.Arn
		}
		if strings.HasPrefix(resp.KeyID, "arn:") {
			return resp.KeyID
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

// maxField bounds the free-text fields of a record that come from the
// client (user agent, operation name, messages that quote them).
const maxField = 1024

func clip(s string) string {
	if len(s) <= maxField {
		return s
	}
	return s[:maxField] + "...(truncated)"
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

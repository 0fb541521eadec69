package api

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/identity"
)

// The AWS Query protocol of IAM (2010-05-08) and STS (2011-06-15): a
// form-encoded POST with Action and Version, answered in XML. Only the
// actions the AWS CLI needs to administer principals are served.

const (
	iamNamespace = "https://iam.amazonaws.com/doc/2010-05-08/"
	stsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"
	isoTime      = "2006-01-02T15:04:05Z"
)

type queryFunc func(ctx context.Context, p *identity.Principal, form url.Values) (any, error)

type queryService struct {
	name      string // signing name: iam or sts
	namespace string
	actions   map[string]queryFunc
}

func (h *Handler) queryServices() map[string]*queryService {
	d := h.dir
	iam := &queryService{name: "iam", namespace: iamNamespace, actions: map[string]queryFunc{
		"CreateUser": func(ctx context.Context, p *identity.Principal, f url.Values) (any, error) {
			u, err := d.CreateUser(ctx, p, f.Get("UserName"), f.Get("Path"))
			return wrap(err, struct{ User xmlUser }{xmlUserOf(u)})
		},
		"GetUser": func(ctx context.Context, p *identity.Principal, f url.Values) (any, error) {
			u, err := d.GetUser(ctx, p, f.Get("UserName"))
			return wrap(err, struct{ User xmlUser }{xmlUserOf(u)})
		},
		"ListUsers": func(ctx context.Context, p *identity.Principal, f url.Values) (any, error) {
			us, next, err := d.ListUsers(ctx, p, f.Get("PathPrefix"), f.Get("Marker"), iamPageSize(f))
			out := struct {
				Users       []xmlUser `xml:"Users>member"`
				IsTruncated bool
				Marker      string `xml:",omitempty" json:",omitempty"`
			}{Users: []xmlUser{}, IsTruncated: next != "", Marker: next}
			for _, u := range us {
				out.Users = append(out.Users, xmlUserOf(u))
			}
			return wrap(err, out)
		},
		"DeleteUser": func(ctx context.Context, p *identity.Principal, f url.Values) (any, error) {
			return nil, d.DeleteUser(ctx, p, f.Get("UserName"))
		},
		"CreateAccessKey": func(ctx context.Context, p *identity.Principal, f url.Values) (any, error) {
			k, secret, err := d.CreateAccessKey(ctx, p, f.Get("UserName"))
			if err != nil {
				return nil, err
			}
			return struct {
				AccessKey xmlAccessKey
			}{xmlAccessKey{UserName: k.UserName, AccessKeyID: k.ID, Status: k.Status, SecretAccessKey: secret, CreateDate: k.Created.Format(isoTime)}}, nil
		},
		"ListAccessKeys": func(ctx context.Context, p *identity.Principal, f url.Values) (any, error) {
			ks, next, err := d.ListAccessKeys(ctx, p, f.Get("UserName"), f.Get("Marker"), iamPageSize(f))
			out := struct {
				AccessKeyMetadata []xmlAccessKey `xml:"AccessKeyMetadata>member"`
				IsTruncated       bool
				Marker            string `xml:",omitempty" json:",omitempty"`
			}{AccessKeyMetadata: []xmlAccessKey{}, IsTruncated: next != "", Marker: next}
			for _, k := range ks {
				out.AccessKeyMetadata = append(out.AccessKeyMetadata, xmlAccessKey{UserName: k.UserName, AccessKeyID: k.ID, Status: k.Status, CreateDate: k.Created.Format(isoTime)})
			}
			return wrap(err, out)
		},
		"DeleteAccessKey": func(ctx context.Context, p *identity.Principal, f url.Values) (any, error) {
			return nil, d.DeleteAccessKey(ctx, p, f.Get("UserName"), f.Get("AccessKeyId"))
		},
		"UpdateAccessKey": func(ctx context.Context, p *identity.Principal, f url.Values) (any, error) {
			return nil, d.UpdateAccessKey(ctx, p, f.Get("UserName"), f.Get("AccessKeyId"), f.Get("Status"))
		},
		"CreateLoginProfile": func(ctx context.Context, p *identity.Principal, f url.Values) (any, error) {
			lp, err := d.CreateLoginProfile(ctx, p, f.Get("UserName"), f.Get("Password"), f.Get("PasswordResetRequired") == "true")
			return wrap(err, struct{ LoginProfile xmlLoginProfile }{xmlLoginProfileOf(lp)})
		},
		"GetLoginProfile": func(ctx context.Context, p *identity.Principal, f url.Values) (any, error) {
			lp, err := d.GetLoginProfile(ctx, p, f.Get("UserName"))
			return wrap(err, struct{ LoginProfile xmlLoginProfile }{xmlLoginProfileOf(lp)})
		},
		"UpdateLoginProfile": func(ctx context.Context, p *identity.Principal, f url.Values) (any, error) {
			var password *string
			var reset *bool
			if f.Has("Password") {
				password = new(f.Get("Password"))
			}
			if f.Has("PasswordResetRequired") {
				reset = new(f.Get("PasswordResetRequired") == "true")
			}
			return nil, d.UpdateLoginProfile(ctx, p, f.Get("UserName"), password, reset)
		},
		"DeleteLoginProfile": func(ctx context.Context, p *identity.Principal, f url.Values) (any, error) {
			return nil, d.DeleteLoginProfile(ctx, p, f.Get("UserName"))
		},
		"CreateRole": func(ctx context.Context, p *identity.Principal, f url.Values) (any, error) {
			max, err := intParam(f, "MaxSessionDuration")
			if err != nil {
				return nil, err
			}
			r, err := d.CreateRole(ctx, p, f.Get("RoleName"), f.Get("Path"), f.Get("AssumeRolePolicyDocument"), f.Get("Description"), max)
			return wrap(err, struct{ Role xmlRole }{xmlRoleOf(r)})
		},
		"GetRole": func(ctx context.Context, p *identity.Principal, f url.Values) (any, error) {
			r, err := d.GetRole(ctx, p, f.Get("RoleName"))
			return wrap(err, struct{ Role xmlRole }{xmlRoleOf(r)})
		},
		"ListRoles": func(ctx context.Context, p *identity.Principal, f url.Values) (any, error) {
			rs, next, err := d.ListRoles(ctx, p, f.Get("PathPrefix"), f.Get("Marker"), iamPageSize(f))
			out := struct {
				Roles       []xmlRole `xml:"Roles>member"`
				IsTruncated bool
				Marker      string `xml:",omitempty" json:",omitempty"`
			}{Roles: []xmlRole{}, IsTruncated: next != "", Marker: next}
			for _, r := range rs {
				out.Roles = append(out.Roles, xmlRoleOf(r))
			}
			return wrap(err, out)
		},
		"DeleteRole": func(ctx context.Context, p *identity.Principal, f url.Values) (any, error) {
			return nil, d.DeleteRole(ctx, p, f.Get("RoleName"))
		},
	}}
	for _, kind := range []string{"User", "Role"} {
		owner := kind + "Name"
		iam.actions["Put"+kind+"Policy"] = func(ctx context.Context, p *identity.Principal, f url.Values) (any, error) {
			return nil, d.PutPolicy(ctx, p, kind, f.Get(owner), f.Get("PolicyName"), f.Get("PolicyDocument"))
		}
		iam.actions["Get"+kind+"Policy"] = func(ctx context.Context, p *identity.Principal, f url.Values) (any, error) {
			name, doc, err := d.GetPolicy(ctx, p, kind, f.Get(owner), f.Get("PolicyName"))
			if err != nil {
				return nil, err
			}
			return xmlPolicy{Owner: xml.Name{Local: owner}, OwnerName: name, PolicyName: f.Get("PolicyName"), PolicyDocument: iamEscape(doc)}, nil
		}
		iam.actions["List"+kind+"Policies"] = func(ctx context.Context, p *identity.Principal, f url.Values) (any, error) {
			names, next, err := d.ListPolicies(ctx, p, kind, f.Get(owner), f.Get("Marker"), iamPageSize(f))
			return wrap(err, struct {
				PolicyNames []string `xml:"PolicyNames>member"`
				IsTruncated bool
				Marker      string `xml:",omitempty" json:",omitempty"`
			}{PolicyNames: append([]string{}, names...), IsTruncated: next != "", Marker: next})
		}
		iam.actions["Delete"+kind+"Policy"] = func(ctx context.Context, p *identity.Principal, f url.Values) (any, error) {
			return nil, d.DeletePolicy(ctx, p, kind, f.Get(owner), f.Get("PolicyName"))
		}
	}
	sts := &queryService{name: "sts", namespace: stsNamespace, actions: map[string]queryFunc{
		"GetCallerIdentity": func(_ context.Context, p *identity.Principal, _ url.Values) (any, error) {
			return struct{ UserId, Account, Arn string }{p.UserID, p.Account, p.ARN}, nil
		},
		"AssumeRole": func(ctx context.Context, p *identity.Principal, f url.Values) (any, error) {
			dur, err := intParam(f, "DurationSeconds")
			if err != nil {
				return nil, err
			}
			c, r, err := d.AssumeRole(ctx, p, f.Get("RoleArn"), f.Get("RoleSessionName"), dur, f.Get("Policy"))
			if err != nil {
				return nil, err
			}
			audit.FromContext(ctx).SetResponse(assumeRoleElements(c, r))
			return struct {
				Credentials struct {
					AccessKeyId, SecretAccessKey, SessionToken, Expiration string
				}
				AssumedRoleUser struct{ AssumedRoleId, Arn string }
			}{
				Credentials:     struct{ AccessKeyId, SecretAccessKey, SessionToken, Expiration string }{c.AccessKeyID, c.SecretAccessKey, c.SessionToken, c.Expiration.Format(isoTime)},
				AssumedRoleUser: struct{ AssumedRoleId, Arn string }{r.AssumedRoleID, r.Arn},
			}, nil
		},
	}}
	out := map[string]*queryService{}
	for _, svc := range []*queryService{iam, sts} {
		for a := range svc.actions {
			out[a] = svc
		}
	}
	return out
}

// assumeRoleElements is the responseElements of an AssumeRole record, as
// CloudTrail's but without the session token: the session's access key
// id ties every call the session makes to this record, and so to whoever
// started it, and the trail holds no part of a credential that signs.
func assumeRoleElements(c *identity.Credentials, r *identity.AssumedRole) json.RawMessage {
	type credentials struct {
		AccessKeyID string `json:"accessKeyId"`
		Expiration  string `json:"expiration"`
	}
	type assumedRoleUser struct {
		AssumedRoleID string `json:"assumedRoleId"`
		ARN           string `json:"arn"`
	}
	b, _ := json.Marshal(struct {
		Credentials     credentials     `json:"credentials"`
		AssumedRoleUser assumedRoleUser `json:"assumedRoleUser"`
	}{credentials{c.AccessKeyID, audit.FormatTime(c.Expiration)}, assumedRoleUser{r.AssumedRoleID, r.Arn}})
	return b
}

// unsupportedParams are the parameters of IAM and STS actions that would
// restrict or bind what a session or an entity may do, and that this
// server does not implement, with the message each is refused with: a
// caller must never believe it got a restriction it did not get (a
// session narrowed by PolicyArns with the role's full rights, a user
// under a permissions boundary that binds nothing). Policy, an inline
// session policy, is refused by identity.AssumeRole.
var unsupportedParams = map[string][]struct{ name, message string }{
	"AssumeRole": {
		{"PolicyArns", "Session policies are not supported by this server."},
		{"Tags", "Session tags are not supported by this server."},
		{"TransitiveTagKeys", "Session tags are not supported by this server."},
		{"ExternalId", "External ids are not supported by this server."},
		{"SerialNumber", "MFA is not supported by this server."},
		{"TokenCode", "MFA is not supported by this server."},
		{"SourceIdentity", "Source identities are not supported by this server."},
		{"ProvidedContexts", "Context assertions are not supported by this server."},
	},
	"CreateUser": {
		{"PermissionsBoundary", "Permissions boundaries are not supported by this server."},
		{"Tags", "Tags on users and roles are not supported by this server."},
	},
	"CreateRole": {
		{"PermissionsBoundary", "Permissions boundaries are not supported by this server."},
		{"Tags", "Tags on users and roles are not supported by this server."},
	},
}

// refuseUnsupported refuses a call of action that gives one of its
// unsupportedParams: the parameter itself, or a member of a list or
// structure of that name (PolicyArns.member.1.arn), with a value. An
// empty value (an empty list, as the SDKs send one) gives nothing.
func refuseUnsupported(action string, form url.Values) error {
	for _, p := range unsupportedParams[action] {
		for k, vs := range form {
			if k != p.name && !strings.HasPrefix(k, p.name+".") {
				continue
			}
			for _, v := range vs {
				if v != "" {
					return fault.Newf(fault.Validation, "%s", p.message)
				}
			}
		}
	}
	return nil
}

// intParam reads an optional integer parameter, 0 when absent. A value
// that is not a 32-bit integer is refused rather than read as 0 or
// wrapped, so that "abc" never means the default and 2^32+900 never
// means 900.
func intParam(f url.Values, name string) (int32, error) {
	s := f.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		field := strings.ToLower(name[:1]) + name[1:]
		return 0, fault.Newf(fault.Validation, "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must be a 32-bit integer", s, field)
	}
	return int32(n), nil
}

// iamPageSize is the MaxItems of an IAM listing (validated already, 1 to
// 1000), or AWS's default of 100.
func iamPageSize(f url.Values) int {
	if n, err := intParam(f, "MaxItems"); err == nil && n > 0 {
		return int(n)
	}
	return 100
}

// wrap returns out unless err is set.
func wrap(err error, out any) (any, error) {
	if err != nil {
		return nil, err
	}
	return out, nil
}

type xmlUser struct {
	Path       string `xml:",omitempty"`
	UserName   string `xml:",omitempty"`
	UserId     string
	Arn        string
	CreateDate string
}

func xmlUserOf(u *identity.User) xmlUser {
	if u == nil {
		return xmlUser{}
	}
	created := u.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	return xmlUser{Path: u.Path, UserName: u.UserName, UserId: u.UserID, Arn: u.Arn, CreateDate: created.UTC().Format(isoTime)}
}

type xmlAccessKey struct {
	UserName        string `xml:",omitempty"`
	AccessKeyID     string `xml:"AccessKeyId" json:"AccessKeyId"`
	Status          string
	SecretAccessKey string `xml:",omitempty"`
	CreateDate      string
}

type xmlLoginProfile struct {
	UserName              string
	CreateDate            string
	PasswordResetRequired bool
}

func xmlLoginProfileOf(lp *identity.LoginProfile) xmlLoginProfile {
	if lp == nil {
		return xmlLoginProfile{}
	}
	return xmlLoginProfile{UserName: lp.UserName, CreateDate: lp.Created.Format(isoTime), PasswordResetRequired: lp.PasswordResetRequired}
}

type xmlRole struct {
	Path                     string
	RoleName                 string
	RoleId                   string
	Arn                      string
	CreateDate               string
	AssumeRolePolicyDocument string
	Description              string `xml:",omitempty"`
	MaxSessionDuration       int32
}

func xmlRoleOf(r *identity.Role) xmlRole {
	if r == nil {
		return xmlRole{}
	}
	return xmlRole{Path: r.Path, RoleName: r.RoleName, RoleId: r.RoleID, Arn: r.Arn, CreateDate: r.Created.Format(isoTime),
		AssumeRolePolicyDocument: iamEscape(r.TrustPolicy), Description: r.Description, MaxSessionDuration: r.MaxSession}
}

// xmlPolicy is Get{User,Role}PolicyResult: the owner element is UserName
// or RoleName; the document is URL-encoded, as IAM returns it.
type xmlPolicy struct {
	Owner          xml.Name
	OwnerName      string
	PolicyName     string
	PolicyDocument string
}

func (p xmlPolicy) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	for _, kv := range [][2]string{{p.Owner.Local, p.OwnerName}, {"PolicyName", p.PolicyName}, {"PolicyDocument", p.PolicyDocument}} {
		if err := e.EncodeElement(kv[1], xml.StartElement{Name: xml.Name{Local: kv[0]}}); err != nil {
			return err
		}
	}
	return e.EncodeToken(start.End())
}

// serveQuery handles an IAM or STS request.
func (h *Handler) serveQuery(w http.ResponseWriter, r *http.Request, reqID string, ci *callInfo) {
	body, release, err := h.readBody(r, w)
	defer release()
	if err != nil {
		h.answerQueryError(w, r, reqID, ci, iamNamespace, err)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		h.answerQueryError(w, r, reqID, ci, iamNamespace, errMalformedQuery(err))
		return
	}
	action := form.Get("Action")
	svc := h.query[action]
	ci.ev.Operation = action
	h.formParams(ci, form)
	if svc == nil {
		err := errInvalidAction(action, form.Get("Version"))
		h.answerQueryError(w, r, reqID, ci, iamNamespace, err)
		return
	}
	ci.ev.Source = svc.name + ".amazonaws.com"
	if svc.name == "iam" {
		ci.ev.Region = identity.IAMRegion // as CloudTrail records IAM's calls
	}
	// IAM and STS change who may do what: their callers are read from the
	// store, not the cache (api.cachedOps says why).
	ctx, cancel := h.callContext(r)
	defer cancel()
	p, region, err := h.dir.Authenticate(identity.WithoutCache(ctx), r, body, svc.name)
	if err != nil {
		h.answerQueryError(w, r, reqID, ci, svc.namespace, timedOut(ctx, err))
		return
	}
	h.setPrincipal(ci, p)
	if svc.name == "iam" {
		region = identity.IAMRegion // signed for any region, made in one
	}
	if !h.limits.allow(svc.name, region, p.Account) {
		h.answerQueryError(w, r, reqID, ci, svc.namespace, errThrottled)
		return
	}
	if svc.name == "sts" { // STS answers in the request's region
		ci.ev.Region = region
	} else { // IAM is global: its calls are made in us-east-1, whatever the signature's region
		region = identity.IAMRegion
	}
	if err := h.trailDown(reqID); err != nil {
		h.answerQueryError(w, r, reqID, ci, svc.namespace, err)
		return
	}
	// AWS validates a request against its model before it authorizes
	// it, and before this server refuses what it does not support.
	if err := validateQuery(action, form); err != nil {
		h.answerQueryError(w, r, reqID, ci, svc.namespace, err)
		return
	}
	if err := refuseUnsupported(action, form); err != nil {
		h.answerQueryError(w, r, reqID, ci, svc.namespace, err)
		return
	}
	out, err := svc.actions[action](audit.NewContext(identity.WithRequest(ctx, h.requestInfo(r, region)), ci.ev), p, form)
	if err != nil {
		h.answerQueryError(w, r, reqID, ci, svc.namespace, timedOut(ctx, err))
		return
	}
	if err := h.audit(r.Context(), r, ci, nil); err != nil {
		h.writeQueryError(w, reqID, svc.namespace, err)
		return
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	fmt.Fprintf(&buf, `<%sResponse xmlns="%s">`, action, svc.namespace)
	if out != nil {
		enc := xml.NewEncoder(&buf)
		if err := enc.EncodeElement(out, xml.StartElement{Name: xml.Name{Local: action + "Result"}}); err != nil {
			h.writeQueryError(w, reqID, svc.namespace, err)
			return
		}
		enc.Flush()
	}
	fmt.Fprintf(&buf, `<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></%sResponse>`, reqID, action)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
}

// answerQueryError records a failed call and answers it.
func (h *Handler) answerQueryError(w http.ResponseWriter, r *http.Request, reqID string, ci *callInfo, namespace string, err error) {
	if aerr := h.audit(r.Context(), r, ci, err); aerr != nil {
		err = aerr
	}
	h.writeQueryError(w, reqID, namespace, err)
}

type queryError struct {
	status        int
	code, message string
}

func (e *queryError) Error() string { return e.code + ": " + e.message }

func (h *Handler) writeQueryError(w http.ResponseWriter, reqID, namespace string, err error) {
	status, code, msg := queryWireError(err)
	noteCode(w, code)
	if status >= 500 {
		h.log.Error("request failed", "requestId", reqID, "err", err)
	}
	var body struct {
		XMLName xml.Name `xml:"ErrorResponse"`
		Xmlns   string   `xml:"xmlns,attr"`
		Error   struct {
			Type, Code, Message string
		}
		RequestId string
	}
	body.Xmlns, body.RequestId = namespace, reqID
	body.Error.Type, body.Error.Code, body.Error.Message = "Sender", code, msg
	if status >= 500 {
		body.Error.Type = "Receiver"
	}
	b, _ := xml.Marshal(body)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// iamEscape URL-encodes a policy document as IAM returns them: every
// character but the unreserved ones, spaces as %20.
func iamEscape(doc string) string {
	return strings.ReplaceAll(url.QueryEscape(doc), "+", "%20")
}

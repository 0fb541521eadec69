package e2e_test

// The model-driven validation sweep of the IAM and STS actions served:
// for each of them, every constrained member of its input, from AWS's IAM
// and STS service models (testdata/iam-model, testdata/sts-model), is
// broken on an otherwise valid, signed Query request, and the server must
// refuse it as AWS's request validation does: HTTP 400, the XML error
// ValidationError, the Coral message for each violation, and nothing
// changed in the store. The actions the server does not serve are
// refused as docs/identity.md says: InvalidAction.

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/openkms/kms/internal/identity"
)

// queryPatternSamples are sample values of the IAM and STS models'
// patterns (see patternSample).
var queryPatternSamples = map[string]patternSample{
	`(\u002F)|(\u002F[\u0021-\u007E]+\u002F)`: {"/sweep/", "/sweep", 'a', 1},
	`[\w+=,.@-]+`:            {"sweep", "swe ep", 'a', -1},
	`\u002F[\u0021-\u007F]*`: {"/", "sweep", 'a', -1},
	`[\u0020-\u00FF]+`:       {"marker", "marker\u0100", 'a', -1},
	`[\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]*`:                                    {"d", "d\u007f", 'a', -1},
	`[\u0009\u000A\u000D\u0020-\u007E\u0085\u00A0-\uD7FF\uE000-\uFFFD\u10000-\u10FFFF]+`: {"arn:aws:iam::111122223333:role/sweep", "arn:aws:iam::111122223333:role/\u0001", 'a', -1},
	`[\w+=,.@-]*`:                 {"sweep", "swe ep", 'a', -1},
	`[\p{L}\p{Z}\p{N}_.:/=+\-@]+`: {"k", "k!", 'k', -1},
	`[\p{L}\p{Z}\p{N}_.:/=+\-@]*`: {"v", "v!", 'v', -1},
	`[\w+=,.@:\/-]*`:              {"external", "ext ernal", 'a', -1},
	`[\w+=/:,.@-]*`:               {"arn:aws:iam::111122223333:mfa/sweep", "arn:aws:iam::111122223333:mfa/swe ep", 'a', -1},
	`[\d]*`:                       {"123456", "12345a", '1', -1},
}

// queryDocumented are where the server answers otherwise than the model
// alone says, and why (the member's path as messages name it, and the
// violation's head the server gives).
var queryDocumented = []struct{ path, why string }{
	{"tags", "a list of structures: AWS prints each element as its implementation does, which is not documented; the server leaves the value out, as it does a sensitive one"},
	{"policyArns", "as tags"},
	{"providedContexts", "as tags"},
	{"", "a control character (the only kind an ARN's pattern refuses) cannot be carried in XML 1.0: the server's XML encoder writes U+FFFD for it, as AWS's writes it in a form not documented"},
	{"description", "a role's description is left out of the message (it may be 1000 characters, and the request is in the audit trail)"},
}

// queryRefusedWithinLimits are the values the model allows that the
// server refuses, as the documentation says: UpdateAccessKey "changes the
// status of the specified access key from Active to Inactive, or vice
// versa" (IAM API reference), so the model's Expired is refused, with the
// values it may take.
var queryRefusedWithinLimits = map[string][]string{
	"UpdateAccessKey": {"status = Expired"},
}

// queryRequiredByDocs are the members the model leaves optional that the
// documentation requires of every caller this server has: CreateLoginProfile's
// Password "must be omitted when you make the request with an AssumeRoot
// session. It is required in all other cases." (IAM API reference), and
// the server serves no AssumeRoot.
var queryRequiredByDocs = map[string][]string{
	"CreateLoginProfile": {"Password"},
}

// queryFill are the optional members the sweep gives a structure it makes
// (an element of a list too long): a Query request cannot say an empty
// structure.
var queryFill = map[string][]string{
	"PolicyDescriptorType": {"arn"},
	"ProvidedContext":      {"ProviderArn"},
}

// queryServed are the IAM and STS actions the server serves
// (docs/identity.md).
var queryServed = map[string][]string{
	"iam": {"CreateUser", "GetUser", "ListUsers", "DeleteUser", "CreateAccessKey", "ListAccessKeys", "DeleteAccessKey", "UpdateAccessKey",
		"CreateLoginProfile", "GetLoginProfile", "UpdateLoginProfile", "DeleteLoginProfile",
		"CreateRole", "GetRole", "ListRoles", "DeleteRole",
		"PutUserPolicy", "GetUserPolicy", "ListUserPolicies", "DeleteUserPolicy",
		"PutRolePolicy", "GetRolePolicy", "ListRolePolicies", "DeleteRolePolicy"},
	"sts": {"GetCallerIdentity", "AssumeRole"},
}

var queryVersions = map[string]string{"iam": "2010-05-08", "sts": "2011-06-15"}

func loadModel(t testing.TB, path string) *kmsModel {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m kmsModel
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return &m
}

// TestQueryModelValidationSweep breaks every input constraint of each IAM
// and STS action served, one at a time and several at once, and checks
// that the server refuses each as AWS does, for the account's root and
// for a user who may do nothing; that the valid request is not refused
// for its input; that values at the model's limits pass validation; and
// that the actions not served are refused as unknown.
func TestQueryModelValidationSweep(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	inputs := e.queryInputs(t)
	u := e.newUser(t, "sweep-nobody")
	nobody := identity.AccessKey{ID: u.akid, Secret: u.secret}
	for _, svc := range []string{"iam", "sts"} {
		model := loadModel(t, "testdata/"+svc+"-model/service-2.json")
		for _, op := range queryServed[svc] {
			if _, ok := model.Operations[op]; !ok {
				t.Fatalf("%s is not in the %s model", op, svc)
			}
		}
		t.Run(svc, func(t *testing.T) {
			for _, op := range slices.Sorted(maps.Keys(model.Operations)) {
				if !slices.Contains(queryServed[svc], op) {
					r := e.queryCall(t, e.creds, svc, op, map[string]any{})
					if problem := checkQueryError(r, svc, 400, "InvalidAction", fmt.Sprintf("Could not find operation %s for version %s", op, queryVersions[svc])); problem != "" {
						t.Errorf("%s, not served: %s", op, problem)
					}
					continue
				}
				in, ok := inputs[op]
				if !ok {
					t.Fatalf("no valid input for %s", op)
				}
				t.Run(op, func(t *testing.T) {
					s := &sweeper{t: t, model: model, samples: queryPatternSamples, fill: queryFill}
					var cases []sweepCase
					if ref := model.Operations[op].Input; ref != nil {
						cases = s.cases(ref.Shape, nil, nil, "")
					}
					cases = append(cases, combined(cases, nil)...)
					for _, c := range cases {
						body := cloneBody(t, in.body)
						c.change(body)
						want := documentedWant(c.want)
						e.querySweepCase(t, e.creds, svc, op, c.name, body, want)
						e.querySweepCase(t, nobody, svc, op, c.name+" (by a user with no permission)", body, want)
					}
					if ref := model.Operations[op].Input; ref != nil {
						for _, c := range s.limitCases(ref.Shape) {
							body := cloneBody(t, in.body)
							c.change(body)
							r := e.queryCall(t, nobody, svc, op, body)
							var eb queryErrorBody
							_ = xml.Unmarshal(r.body, &eb)
							if strings.Contains(eb.Error.Message, " detected: Value ") && !slices.Contains(queryRefusedWithinLimits[op], c.name) {
								t.Errorf("%s, within the model's limits, is refused: %.300q", c.name, eb.Error.Message)
							}
						}
					}
					// A member the model leaves optional, left out, is
					// not called missing.
					for m := range in.body {
						if ref := model.Operations[op].Input; ref != nil && !slices.Contains(model.Shapes[ref.Shape].Required, m) && !slices.Contains(queryRequiredByDocs[op], m) {
							body := cloneBody(t, in.body)
							delete(body, m)
							r := e.queryCall(t, nobody, svc, op, body)
							var eb queryErrorBody
							_ = xml.Unmarshal(r.body, &eb)
							if strings.Contains(eb.Error.Message, "Value null at") {
								t.Errorf("%s left out is called missing: %.300q", m, eb.Error.Message)
							}
						}
					}
					r := e.queryCall(t, e.creds, svc, op, in.body)
					got := ""
					if r.status != 200 {
						var eb queryErrorBody
						_ = xml.Unmarshal(r.body, &eb)
						got = eb.Error.Code
					}
					if got != in.answer {
						t.Errorf("the valid input %v answered %d %.300q, want %q", in.body, r.status, r.body, in.answer)
					}
				})
			}
		})
	}
}

// documentedWant rewrites the violations the server gives otherwise, as
// queryDocumented says.
func documentedWant(want []string) []string {
	out := slices.Clone(want)
	for i, w := range out {
		out[i] = strings.Map(func(r rune) rune {
			if r < 0x20 && r != '\t' && r != '\n' && r != '\r' {
				return '\uFFFD'
			}
			return r
		}, w)
		w = out[i]
		for _, d := range queryDocumented {
			if d.path == "" {
				continue
			}
			if _, rest, ok := strings.Cut(w, "' at '"+d.path+"' failed"); ok && strings.HasPrefix(w, "Value '") {
				out[i] = "Value at '" + d.path + "' failed" + rest
			}
		}
	}
	return out
}

// querySweepCase sends body and checks that it is refused with want, and
// changes nothing.
func (e *kmsEnv) querySweepCase(t *testing.T, creds identity.AccessKey, svc, op, name string, body map[string]any, want []string) {
	t.Helper()
	before := e.storeSnapshot(t)
	r := e.queryCall(t, creds, svc, op, body)
	head := "1 validation error detected: "
	if len(want) > 1 {
		head = fmt.Sprintf("%d validation errors detected: ", len(want))
	}
	if problem := checkQueryError(r, svc, 400, "ValidationError", ""); problem != "" {
		t.Errorf("%s: %s", name, problem)
	} else {
		var eb queryErrorBody
		_ = xml.Unmarshal(r.body, &eb)
		rest, ok := strings.CutPrefix(eb.Error.Message, head)
		if !ok || !sameViolations(strings.Split(rest, "; "), want) {
			t.Errorf("%s:\n got %.600q\nwant %.600q", name, eb.Error.Message, head+strings.Join(want, "; "))
		}
	}
	if after := e.storeSnapshot(t); after != before {
		t.Errorf("%s: the refused request changed the store", name)
	}
}

// checkQueryError says how r is not the Query protocol's error answer
// with status and code (and message, unless "").
func checkQueryError(r rawResponse, svc string, status int, code, msg string) string {
	var eb queryErrorBody
	if err := xml.Unmarshal(r.body, &eb); err != nil || r.status != status {
		return fmt.Sprintf("answered %d %.300q, want %d %s", r.status, r.body, status, code)
	}
	ns := iamNS
	if svc == "sts" && code != "InvalidAction" {
		ns = stsNS
	}
	if eb.Error.Code != code || eb.Error.Type != "Sender" || eb.Xmlns != ns || (msg != "" && eb.Error.Message != msg) {
		return fmt.Sprintf("answered %+v, want Sender %s %q in %s", eb, code, msg, ns)
	}
	if id := r.header.Get("X-Amzn-Requestid"); id == "" || eb.RequestId != id {
		return fmt.Sprintf("RequestId %q in the body, %q in the header", eb.RequestId, id)
	}
	return ""
}

// queryCall sends op with body's members as the SDKs put them in a Query
// request (lists as Name.member.N, structures as Name.Field, an empty
// list as "Name="), signed with creds for svc as a client signs it.
func (e *kmsEnv) queryCall(t testing.TB, creds identity.AccessKey, svc, op string, body map[string]any) rawResponse {
	t.Helper()
	form := url.Values{"Action": {op}, "Version": {queryVersions[svc]}}
	var flatten func(prefix string, v any)
	flatten = func(prefix string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				flatten(prefix+k, x)
			}
		case []any:
			if len(v) == 0 {
				form.Set(strings.TrimSuffix(prefix, "."), "")
			}
			for i, x := range v {
				switch x.(type) {
				case map[string]any:
					flatten(fmt.Sprintf("%smember.%d.", prefix, i+1), x)
				default:
					form.Set(fmt.Sprintf("%smember.%d", prefix, i+1), fmt.Sprint(x))
				}
			}
		default:
			form.Set(strings.TrimSuffix(prefix, "."), fmt.Sprint(v))
		}
	}
	for k, v := range body {
		switch v.(type) {
		case map[string]any, []any:
			flatten(k+".", v)
		default:
			flatten(k, v)
		}
	}
	raw := form.Encode()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/", strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	region := e2eRegion
	if svc == "iam" {
		region = "us-east-1"
	}
	signWith(t, req, raw, signing{akid: creds.ID, secret: creds.Secret, service: svc, region: region, at: time.Now()})
	return e.send(t, req)
}

// queryInputs makes the users, keys, login profiles, roles and policies
// the sweep's requests name, and returns each action's minimal valid
// input with how the server answers it ("" for success, else the code).
func (e *kmsEnv) queryInputs(t testing.TB) map[string]sweepInput {
	t.Helper()
	ctx := context.Background()
	root := e.rootIAM()
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:DescribeKey","Resource":"*"}]}`
	for _, name := range []string{"sweep", "sweep-doomed", "sweep-keys", "sweep-k1", "sweep-lp", "sweep-lp-doomed", "sweep-lp-new"} {
		if _, err := root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
	}
	key := func(user string) string {
		out, err := root.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(user)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.AccessKey.AccessKeyId)
	}
	k1, k2 := key("sweep-k1"), key("sweep")
	for _, name := range []string{"sweep-lp", "sweep-lp-doomed"} {
		if _, err := root.CreateLoginProfile(ctx, &iam.CreateLoginProfileInput{UserName: aws.String(name), Password: aws.String("Sweep-password-1!")}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"sweep", "sweep-doomed"} {
		if _, err := root.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trustAccount)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"p", "doomed"} {
		if _, err := root.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("sweep"), PolicyName: aws.String(p), PolicyDocument: aws.String(policy)}); err != nil {
			t.Fatal(err)
		}
		if _, err := root.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("sweep"), PolicyName: aws.String(p), PolicyDocument: aws.String(policy)}); err != nil {
			t.Fatal(err)
		}
	}
	in := func(kv ...string) sweepInput {
		b := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			b[kv[i]] = kv[i+1]
		}
		return sweepInput{body: b}
	}
	out := map[string]sweepInput{
		"CreateUser":         in("UserName", "sweep-new"),
		"GetUser":            in("UserName", "sweep"),
		"ListUsers":          in(),
		"DeleteUser":         in("UserName", "sweep-doomed"),
		"CreateAccessKey":    in("UserName", "sweep-keys"),
		"ListAccessKeys":     in("UserName", "sweep"),
		"DeleteAccessKey":    in("UserName", "sweep-k1", "AccessKeyId", k1),
		"UpdateAccessKey":    in("UserName", "sweep", "AccessKeyId", k2, "Status", "Inactive"),
		"CreateLoginProfile": in("UserName", "sweep-lp-new", "Password", "Sweep-password-1!"),
		"GetLoginProfile":    in("UserName", "sweep-lp"),
		"UpdateLoginProfile": in("UserName", "sweep-lp"),
		"DeleteLoginProfile": in("UserName", "sweep-lp-doomed"),
		"CreateRole":         in("RoleName", "sweep-new", "AssumeRolePolicyDocument", trustAccount),
		"GetRole":            in("RoleName", "sweep"),
		"ListRoles":          in(),
		"DeleteRole":         in("RoleName", "sweep-doomed"),
		"PutUserPolicy":      in("UserName", "sweep", "PolicyName", "p", "PolicyDocument", policy),
		"GetUserPolicy":      in("UserName", "sweep", "PolicyName", "p"),
		"ListUserPolicies":   in("UserName", "sweep"),
		"DeleteUserPolicy":   in("UserName", "sweep", "PolicyName", "doomed"),
		"PutRolePolicy":      in("RoleName", "sweep", "PolicyName", "p", "PolicyDocument", policy),
		"GetRolePolicy":      in("RoleName", "sweep", "PolicyName", "p"),
		"ListRolePolicies":   in("RoleName", "sweep"),
		"DeleteRolePolicy":   in("RoleName", "sweep", "PolicyName", "doomed"),
		"GetCallerIdentity":  in(),
		// The account's root may not assume a role.
		"AssumeRole": {body: map[string]any{"RoleArn": roleARNOf("sweep"), "RoleSessionName": "sweep"}, answer: "AccessDenied"},
	}
	return out
}

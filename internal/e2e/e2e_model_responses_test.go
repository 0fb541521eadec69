package e2e_test

// The response check: every KMS answer that any end-to-end test gets is
// checked against AWS's KMS service model (testdata/kms-model), as the
// SDKs generated from it read them. An SDK ignores a member it does not
// know, but not a member of the wrong JSON type, a value outside its
// enum, or an error type that the operation does not list, which no SDK
// maps to a modelled exception.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// kmsExchange is one KMS JSON 1.1 call the server answered.
type kmsExchange struct {
	op     string // from X-Amz-Target: TrentService.<op>
	status int
	body   []byte
}

// commonErrors are the error types that any operation of an AWS JSON 1.1
// service may answer besides the ones its model lists: those of the
// "Common Errors" page of the KMS API reference, in the form JSON
// services name them (reference §1.4: UnrecognizedClientException for an
// unknown access key, InvalidSignatureException for a wrong signature),
// and the protocol failures of a request that never reached an
// operation. The SDKs map each to a generic API error.
var commonErrors = map[string]bool{
	"AccessDeniedException":               true,
	"ExpiredTokenException":               true,
	"IncompleteSignatureException":        true,
	"InternalFailure":                     true,
	"InvalidSignatureException":           true,
	"MissingAuthenticationTokenException": true,
	"RequestExpired":                      true,
	"ServiceUnavailable":                  true,
	"ThrottlingException":                 true,
	"NotAuthorizedException":              true, // the page's NotAuthorized; reference §3: alias/aws/ names
	"UnrecognizedClientException":         true,
	"ValidationException":                 true,
	// protocol failures: no operation was reached
	"SerializationException":         true,
	"UnknownOperationException":      true,
	"RequestEntityTooLargeException": true,
}

// Where the reference records AWS answering otherwise than the model
// says, the server follows the reference, and so does the check.
var (
	// messageless errors carry no message member although their model
	// shape has one (reference §1.3 and §6: a bad ciphertext, a signature
	// or MAC that does not verify, a rotation the key cannot have).
	messagelessErrors = map[string]bool{
		"InvalidCiphertextException":    true,
		"KMSInvalidSignatureException":  true,
		"KMSInvalidMacException":        true,
		"UnsupportedOperationException": true,
	}
	// unlistedErrors are errors an operation's model does not list that
	// the reference has it answer: every paginated operation refuses a
	// marker it did not give with InvalidMarkerException (§4.15), which
	// the model lists for all of them but ListKeyPolicies.
	unlistedErrors = map[string][]string{
		"ListKeyPolicies": {"InvalidMarkerException"},
		// DescribeKey takes GrantTokens like every operation that lists
		// InvalidGrantTokenException, but its model does not list it, and
		// the reference does not say what AWS answers a malformed token
		// with there; the server refuses it as every other operation does.
		"DescribeKey": {"InvalidGrantTokenException"},
	}
	// customerMasterKeySpecShape takes the values of KeySpec: the
	// reference (§6, KeyMetadata) has the deprecated CustomerMasterKeySpec
	// always carry the key's KeySpec, while its enum in the model lacks
	// the newer specs (ML_DSA_*, ECC_NIST_EDWARDS25519).
	customerMasterKeySpecShape = "CustomerMasterKeySpec"
	// notServedRE is the message of an UnsupportedOperationException by
	// which this server refuses a feature it does not have (Nitro
	// Enclaves recipients, EXTERNAL_MU, service principals, a Region it
	// does not serve), whatever the operation: a documented limit of this
	// server, not an answer AWS gives.
	notServedRE = regexp.MustCompile(`this server`)
)

var (
	responseModelOnce sync.Once
	responseModel     *kmsModel
	responseModelErr  error
	modelPatterns     sync.Map // pattern -> *regexp.Regexp
)

func sharedKMSModel() (*kmsModel, error) {
	responseModelOnce.Do(func() {
		responseModel, responseModelErr = readKMSModel()
	})
	return responseModel, responseModelErr
}

// checkResponsesConform checks every KMS answer that g saw against the
// model, and fails t, the test that made the calls, for each difference.
func (g *leakGuard) checkResponsesConform(t testing.TB) {
	t.Helper()
	model, err := sharedKMSModel()
	if err != nil {
		t.Fatalf("reading the KMS model: %v", err)
	}
	g.mu.Lock()
	calls := slices.Clone(g.kms)
	g.mu.Unlock()
	seen := map[string]bool{}
	for i, c := range calls {
		for _, p := range conformProblems(model, c) {
			if seen[p] {
				continue
			}
			seen[p] = true
			t.Errorf("KMS model: call %d, TrentService.%s answered %d: %s\n\tbody: %.400s", i, c.op, c.status, p, c.body)
		}
	}
}

// conformProblems lists how c's answer differs from what the model says.
func conformProblems(model *kmsModel, c kmsExchange) []string {
	op, known := model.Operations[c.op]
	if !known {
		// A test's deliberately unknown operation: only the protocol's
		// own answer is expected.
		if c.status < 400 {
			return []string{"an operation the model does not have succeeded"}
		}
		return errorProblems(model, nil, c.body)
	}
	if c.status >= 400 {
		listed := slices.Clone(unlistedErrors[c.op])
		for _, e := range op.Errors {
			listed = append(listed, e.Shape)
		}
		return errorProblems(model, listed, c.body)
	}
	v := &conformer{model: model}
	body := bytes.TrimSpace(c.body)
	if op.Output == nil {
		if len(body) != 0 && !bytes.Equal(body, []byte("{}")) {
			v.addf("", "the operation has no output, the body is %q", body)
		}
		return v.problems
	}
	val, err := decodeJSON(body)
	if err != nil {
		v.addf("", "the body is not JSON: %v", err)
		return v.problems
	}
	v.value(op.Output.Shape, op.Output.Shape, val)
	return v.problems
}

// errorProblems checks an error body: its __type is one the operation
// lists (listed; nil for an operation the model does not have) or a
// common one, and it carries the members of the model's error shape.
func errorProblems(model *kmsModel, listed []string, raw []byte) []string {
	v := &conformer{model: model}
	val, err := decodeJSON(bytes.TrimSpace(raw))
	if err != nil {
		v.addf("", "the error body is not JSON: %v", err)
		return v.problems
	}
	obj, ok := val.(map[string]any)
	if !ok {
		v.addf("", "the error body is %T, want an object", val)
		return v.problems
	}
	typ, _ := obj["__type"].(string)
	if typ == "" {
		v.addf("__type", "missing or not a string")
		return v.problems
	}
	if i := strings.LastIndexByte(typ, '#'); i >= 0 {
		typ = typ[i+1:] // the SDKs drop a namespace
	}
	if commonErrors[typ] && !slices.Contains(listed, typ) {
		return v.problems
	}
	msg, _ := obj["message"].(string)
	if typ == "UnsupportedOperationException" && notServedRE.MatchString(msg) {
		listed = append(listed, typ)
	}
	if !slices.Contains(listed, typ) {
		v.addf("__type", "%q is neither an error the operation lists %v nor a common one", typ, listed)
		return v.problems
	}
	shape := model.Shapes[typ]
	rest := map[string]any{}
	for k, x := range obj {
		if k != "__type" {
			rest[k] = x
		}
	}
	if _, ok := shape.Members["message"]; ok && !messagelessErrors[typ] {
		if _, ok := rest["message"]; !ok {
			v.addf(typ+".message", "missing")
		}
	}
	v.value(typ, typ, rest)
	return v.problems
}

func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("more than one JSON value")
	}
	return v, nil
}

// conformer walks a decoded value beside a model shape.
type conformer struct {
	model    *kmsModel
	problems []string
}

func (v *conformer) addf(path, format string, args ...any) {
	v.problems = append(v.problems, path+": "+fmt.Sprintf(format, args...))
}

// value checks x, at path, against the shape named shape.
func (v *conformer) value(path, shape string, x any) {
	s := v.model.Shapes[shape]
	if s == nil {
		v.addf(path, "the model has no shape %s", shape)
		return
	}
	switch s.Type {
	case "structure":
		obj, ok := x.(map[string]any)
		if !ok {
			v.addf(path, "is %s, want an object (%s)", jsonKind(x), shape)
			return
		}
		for _, name := range sortedKeys(obj) {
			ref, ok := s.Members[name]
			if !ok {
				v.addf(path+"."+name, "not a member of %s", shape)
				continue
			}
			if obj[name] == nil {
				v.addf(path+"."+name, "is null")
				continue
			}
			v.value(path+"."+name, ref.Shape, obj[name])
		}
		if !s.Exception {
			for _, name := range s.Required {
				if _, ok := obj[name]; !ok {
					v.addf(path+"."+name, "required by %s, missing", shape)
				}
			}
		}
	case "list":
		arr, ok := x.([]any)
		if !ok {
			v.addf(path, "is %s, want an array (%s)", jsonKind(x), shape)
			return
		}
		v.bounds(path, "length", int64(len(arr)), s)
		for i, el := range arr {
			v.value(fmt.Sprintf("%s[%d]", path, i), s.Member.Shape, el)
		}
	case "map":
		obj, ok := x.(map[string]any)
		if !ok {
			v.addf(path, "is %s, want an object (%s)", jsonKind(x), shape)
			return
		}
		for _, k := range sortedKeys(obj) {
			v.value(path+"{key}", s.Key.Shape, k)
			v.value(path+"["+strconv.Quote(k)+"]", s.Value.Shape, obj[k])
		}
	case "string":
		str, ok := x.(string)
		if !ok {
			v.addf(path, "is %s, want a string (%s)", jsonKind(x), shape)
			return
		}
		enum := s.Enum
		if shape == customerMasterKeySpecShape {
			enum = v.model.Shapes["KeySpec"].Enum
		}
		if len(enum) > 0 && !slices.Contains(enum, str) {
			v.addf(path, "%q is not in the enum %s", str, shape)
		}
		v.bounds(path, "length", int64(utf8.RuneCountInString(str)), s)
		if s.Pattern != "" && !modelPattern(s.Pattern).MatchString(str) {
			v.addf(path, "%q does not match %s's pattern %s", str, shape, s.Pattern)
		}
	case "blob":
		str, ok := x.(string)
		if !ok {
			v.addf(path, "is %s, want a base64 string (%s)", jsonKind(x), shape)
			return
		}
		b, err := base64.StdEncoding.DecodeString(str)
		if err != nil {
			v.addf(path, "is not base64: %v", err)
			return
		}
		v.bounds(path, "length in bytes", int64(len(b)), s)
	case "integer", "long":
		n, ok := x.(json.Number)
		if !ok {
			v.addf(path, "is %s, want a number (%s)", jsonKind(x), shape)
			return
		}
		i, err := strconv.ParseInt(n.String(), 10, 64)
		if err != nil {
			v.addf(path, "%s is not a JSON integer", n)
			return
		}
		if s.Type == "integer" && (i < math.MinInt32 || i > math.MaxInt32) {
			v.addf(path, "%d is outside a 32-bit integer", i)
		}
		v.bounds(path, "value", i, s)
	case "boolean":
		if _, ok := x.(bool); !ok {
			v.addf(path, "is %s, want a boolean (%s)", jsonKind(x), shape)
		}
	case "timestamp":
		// JSON 1.1 services send epoch seconds, as a number.
		n, ok := x.(json.Number)
		if !ok {
			v.addf(path, "is %s, want epoch seconds as a number (%s)", jsonKind(x), shape)
			return
		}
		if _, err := n.Float64(); err != nil {
			v.addf(path, "%s is not a number", n)
		}
	case "double", "float":
		if _, ok := x.(json.Number); !ok {
			v.addf(path, "is %s, want a number (%s)", jsonKind(x), shape)
		}
	default:
		v.addf(path, "the check does not know the model type %q", s.Type)
	}
}

// bounds checks n, the size or value the shape's min and max bound.
func (v *conformer) bounds(path, what string, n int64, s *modelShape) {
	if s.Min != nil && n < *s.Min {
		v.addf(path, "%s %d is below the model's min %d", what, n, *s.Min)
	}
	if s.Max != nil && n > *s.Max {
		v.addf(path, "%s %d is above the model's max %d", what, n, *s.Max)
	}
}

// modelPattern is modelRegexp, compiled once for every test.
func modelPattern(p string) *regexp.Regexp {
	if re, ok := modelPatterns.Load(p); ok {
		return re.(*regexp.Regexp)
	}
	re, err := compileModelPattern(p)
	if err != nil {
		panic(err) // the model's patterns all compile: TestModelValidationSweep
	}
	modelPatterns.Store(p, re)
	return re
}

func jsonKind(x any) string {
	switch x := x.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "the number " + x.String()
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", x)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestResponseConformanceCheck shows that the check finds each kind of
// difference it is for, and passes answers AWS gives.
func TestResponseConformanceCheck(t *testing.T) {
	t.Parallel()
	model, err := sharedKMSModel()
	if err != nil {
		t.Fatal(err)
	}
	const arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	cases := []struct {
		name   string
		call   kmsExchange
		wantIn string // "" for none
	}{
		{"an Encrypt answer", kmsExchange{"Encrypt", 200, []byte(`{"KeyId":"` + arn + `","CiphertextBlob":"AQID","EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}`)}, ""},
		{"an empty answer", kmsExchange{"EnableKey", 200, nil}, ""},
		{"a member the model lacks", kmsExchange{"CancelKeyDeletion", 200, []byte(`{"KeyId":"` + arn + `","keyId":"x"}`)}, "CancelKeyDeletionResponse.keyId: not a member"},
		{"a timestamp as text", kmsExchange{"ScheduleKeyDeletion", 200, []byte(`{"KeyId":"` + arn + `","DeletionDate":"2030-01-01T00:00:00Z"}`)}, "DeletionDate: is a string, want epoch seconds"},
		{"an integer as text", kmsExchange{"ScheduleKeyDeletion", 200, []byte(`{"PendingWindowInDays":"7"}`)}, "PendingWindowInDays: is a string, want a number"},
		{"an integer with a fraction", kmsExchange{"ScheduleKeyDeletion", 200, []byte(`{"PendingWindowInDays":7.5}`)}, "7.5 is not a JSON integer"},
		{"an integer out of range", kmsExchange{"ScheduleKeyDeletion", 200, []byte(`{"PendingWindowInDays":366}`)}, "value 366 is above the model's max 365"},
		{"a value outside its enum", kmsExchange{"ScheduleKeyDeletion", 200, []byte(`{"KeyState":"Gone"}`)}, `"Gone" is not in the enum KeyState`},
		{"a blob not base64", kmsExchange{"Encrypt", 200, []byte(`{"CiphertextBlob":"not base64!"}`)}, "CiphertextBlob: is not base64"},
		{"a string shorter than its min", kmsExchange{"ListAliases", 200, []byte(`{"Aliases":[{"AliasArn":"x"}]}`)}, "AliasArn: length 1 is below the model's min 20"},
		{"a required member missing", kmsExchange{"DescribeKey", 200, []byte(`{"KeyMetadata":{"Arn":"` + arn + `"}}`)}, "KeyMetadata.KeyId: required by KeyMetadata, missing"},
		{"a pattern not matched", kmsExchange{"DeleteImportedKeyMaterial", 200, []byte(`{"KeyMaterialId":""}`)}, "does not match BackingKeyIdResponseType's pattern"},
		{"a boolean as text", kmsExchange{"GetKeyRotationStatus", 200, []byte(`{"KeyRotationEnabled":"true"}`)}, "KeyRotationEnabled: is a string, want a boolean"},
		{"a listed error", kmsExchange{"DescribeKey", 400, []byte(`{"__type":"NotFoundException","message":"x"}`)}, ""},
		{"a common error", kmsExchange{"DescribeKey", 400, []byte(`{"__type":"UnrecognizedClientException","message":"x"}`)}, ""},
		{"an error the operation does not list", kmsExchange{"EnableKey", 400, []byte(`{"__type":"IncorrectKeyException","message":"x"}`)}, `"IncorrectKeyException" is neither an error the operation lists`},
		{"an error without __type", kmsExchange{"EnableKey", 400, []byte(`{"message":"x"}`)}, "__type: missing"},
		{"an error without its message", kmsExchange{"EnableKey", 400, []byte(`{"__type":"NotFoundException"}`)}, "NotFoundException.message: missing"},
		{"an error AWS gives without a message", kmsExchange{"Decrypt", 400, []byte(`{"__type":"InvalidCiphertextException"}`)}, ""},
		{"an unknown operation's answer", kmsExchange{"Bogus", 400, []byte(`{"__type":"UnknownOperationException"}`)}, ""},
	}
	for _, c := range cases {
		got := strings.Join(conformProblems(model, c.call), "\n")
		if c.wantIn == "" && got != "" || !strings.Contains(got, c.wantIn) {
			t.Errorf("%s: problems\n%s\nwant one with %q", c.name, got, c.wantIn)
		}
	}
}

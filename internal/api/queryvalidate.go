package api

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/openkms/kms/internal/fault"
)

// The request validation of the IAM and STS actions served: the input
// constraints of AWS's IAM (2010-05-08) and STS (2011-06-15) service
// models, checked before the caller is authorized, as AWS checks them,
// and every violation named in one ValidationError, in AWS's words:
// "2 validation errors detected: Value 'a b' at 'userName' failed to
// satisfy constraint: Member must satisfy regular expression pattern:
// [\w+=,.@-]+; Value null at ...".

// queryShape is a member's type and constraints.
type queryShape struct {
	kind     byte  // 's' string, 'i' integer, 'b' boolean, 'l' list, 'r' structure
	min, max int64 // -1: none
	pattern  string
	re       *regexp.Regexp
	enum     []string
	hidden   bool // the value is left out of messages (sensitive, or long)
	elem     *queryShape
	fields   []queryMember // a structure's
}

type queryMember struct {
	name     string // as the form names it: UserName
	required bool
	shape    *queryShape
}

func str(min, max int64, pattern, goPattern string) *queryShape {
	s := &queryShape{kind: 's', min: min, max: max, pattern: pattern}
	if goPattern != "" {
		s.re = regexp.MustCompile(`^(?:` + goPattern + `)$`)
	}
	return s
}

func integer(min, max int64) *queryShape { return &queryShape{kind: 'i', min: min, max: max} }

func hide(s *queryShape) *queryShape { c := *s; c.hidden = true; return &c }

func listOf(min, max int64, elem *queryShape) *queryShape {
	return &queryShape{kind: 'l', min: min, max: max, elem: elem}
}

func req(name string, s *queryShape) queryMember { return queryMember{name, true, s} }
func opt(name string, s *queryShape) queryMember { return queryMember{name, false, s} }

// The model's shapes, with its patterns as messages show them and as Go
// reads them.
var (
	qName            = `[\w+=,.@-]+`
	qUserName        = str(1, 64, qName, qName)  // userNameType
	qExistingName    = str(1, 128, qName, qName) // existingUserNameType
	qRoleName        = str(1, 64, qName, qName)
	qPolicyName      = str(1, 128, qName, qName)
	qPath            = str(1, 512, `(\u002F)|(\u002F[\u0021-\u007E]+\u002F)`, `(/)|(/[\x21-\x7E]+/)`)
	qPathPrefix      = str(1, 512, `\u002F[\u0021-\u007F]*`, `/[\x21-\x7F]*`)
	qMarker          = str(1, 320, `[\u0020-\u00FF]+`, `[\x{20}-\x{FF}]+`)
	qMaxItems        = integer(1, 1000)
	qPolicyDocument  = str(1, 131072, `[\u0009\u000A\u000D\u0020-\u00FF]+`, `[\t\n\r\x{20}-\x{FF}]+`)
	qBoundary        = str(20, 2048, "", "")
	qAccessKeyID     = str(16, 128, `[\w]+`, `[\w]+`)
	qStatus          = &queryShape{kind: 's', min: -1, max: -1, enum: []string{"Active", "Inactive", "Expired"}}
	qPassword        = hide(str(1, 128, `[\u0009\u000A\u000D\u0020-\u00FF]+`, `[\t\n\r\x{20}-\x{FF}]+`))
	qBool            = &queryShape{kind: 'b', min: -1, max: -1}
	qTagKey          = str(1, 128, `[\p{L}\p{Z}\p{N}_.:/=+\-@]+`, `[\p{L}\p{Z}\p{N}_.:/=+\-@]+`)
	qTagValue        = str(0, 256, `[\p{L}\p{Z}\p{N}_.:/=+\-@]*`, `[\p{L}\p{Z}\p{N}_.:/=+\-@]*`)
	qTag             = &queryShape{kind: 'r', min: -1, max: -1, fields: []queryMember{req("Key", qTagKey), req("Value", qTagValue)}}
	qTags            = listOf(-1, 50, qTag)
	qArnPattern      = `[\u0009\u000A\u000D\u0020-\u007E\u0085\u00A0-\uD7FF\uE000-\uFFFD\u10000-\u10FFFF]+`
	qArn             = str(20, 2048, qArnPattern, `[\t\n\r\x{20}-\x{7E}\x{85}\x{A0}-\x{D7FF}\x{E000}-\x{FFFD}\x{10000}-\x{10FFFF}]+`)
	qSessionName     = str(2, 64, `[\w+=,.@-]*`, `[\w+=,.@-]*`)
	qSessionPolicy   = str(1, -1, `[\u0009\u000A\u000D\u0020-\u00FF]+`, `[\t\n\r\x{20}-\x{FF}]+`)
	qPolicyArns      = listOf(-1, -1, &queryShape{kind: 'r', min: -1, max: -1, fields: []queryMember{opt("arn", qArn)}})
	qProvidedContext = &queryShape{kind: 'r', min: -1, max: -1, fields: []queryMember{opt("ProviderArn", qArn), opt("ContextAssertion", str(4, 2048, "", ""))}}
	// A role's description is left out of messages: it may be long, and
	// the request records it in the audit trail.
	qDescription = hide(str(-1, 1000, `[\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]*`, `[\t\n\r\x{20}-\x{7E}\x{A1}-\x{FF}]*`))
)

// queryInputs are the members of each action's input.
var queryInputs = map[string][]queryMember{
	"CreateUser":         {opt("Path", qPath), req("UserName", qUserName), opt("PermissionsBoundary", qBoundary), opt("Tags", qTags)},
	"GetUser":            {opt("UserName", qExistingName)},
	"ListUsers":          {opt("PathPrefix", qPathPrefix), opt("Marker", qMarker), opt("MaxItems", qMaxItems)},
	"DeleteUser":         {req("UserName", qExistingName)},
	"CreateAccessKey":    {opt("UserName", qExistingName)},
	"ListAccessKeys":     {opt("UserName", qExistingName), opt("Marker", qMarker), opt("MaxItems", qMaxItems)},
	"DeleteAccessKey":    {opt("UserName", qExistingName), req("AccessKeyId", qAccessKeyID)},
	"UpdateAccessKey":    {opt("UserName", qExistingName), req("AccessKeyId", qAccessKeyID), req("Status", qStatus)},
	"CreateLoginProfile": {opt("UserName", qUserName), opt("Password", qPassword), opt("PasswordResetRequired", qBool)},
	"GetLoginProfile":    {opt("UserName", qUserName)},
	"UpdateLoginProfile": {req("UserName", qUserName), opt("Password", qPassword), opt("PasswordResetRequired", qBool)},
	"DeleteLoginProfile": {opt("UserName", qUserName)},
	"CreateRole": {opt("Path", qPath), req("RoleName", qRoleName), req("AssumeRolePolicyDocument", qPolicyDocument),
		opt("Description", qDescription), opt("MaxSessionDuration", integer(3600, 43200)), opt("PermissionsBoundary", qBoundary), opt("Tags", qTags)},
	"GetRole":           {req("RoleName", qRoleName)},
	"ListRoles":         {opt("PathPrefix", qPathPrefix), opt("Marker", qMarker), opt("MaxItems", qMaxItems)},
	"DeleteRole":        {req("RoleName", qRoleName)},
	"PutUserPolicy":     {req("UserName", qExistingName), req("PolicyName", qPolicyName), req("PolicyDocument", qPolicyDocument)},
	"GetUserPolicy":     {req("UserName", qExistingName), req("PolicyName", qPolicyName)},
	"ListUserPolicies":  {req("UserName", qExistingName), opt("Marker", qMarker), opt("MaxItems", qMaxItems)},
	"DeleteUserPolicy":  {req("UserName", qExistingName), req("PolicyName", qPolicyName)},
	"PutRolePolicy":     {req("RoleName", qRoleName), req("PolicyName", qPolicyName), req("PolicyDocument", qPolicyDocument)},
	"GetRolePolicy":     {req("RoleName", qRoleName), req("PolicyName", qPolicyName)},
	"ListRolePolicies":  {req("RoleName", qRoleName), opt("Marker", qMarker), opt("MaxItems", qMaxItems)},
	"DeleteRolePolicy":  {req("RoleName", qRoleName), req("PolicyName", qPolicyName)},
	"GetCallerIdentity": {},
	"AssumeRole": {req("RoleArn", qArn), req("RoleSessionName", qSessionName), opt("PolicyArns", qPolicyArns), opt("Policy", qSessionPolicy),
		opt("DurationSeconds", integer(900, 43200)), opt("Tags", qTags),
		opt("TransitiveTagKeys", listOf(-1, 50, qTagKey)), opt("ExternalId", str(2, 1224, `[\w+=,.@:\/-]*`, `[\w+=,.@:/-]*`)),
		opt("SerialNumber", str(9, 256, `[\w+=/:,.@-]*`, `[\w+=/:,.@-]*`)), opt("TokenCode", str(6, 6, `[\d]*`, `[\d]*`)),
		opt("SourceIdentity", str(2, 64, `[\w+=,.@-]*`, `[\w+=,.@-]*`)), opt("ProvidedContexts", listOf(1, 5, qProvidedContext))},
}

// validateQuery checks action's form against its input's constraints.
func validateQuery(action string, form map[string][]string) error {
	var v []string
	validateMembers(queryInputs[action], form, "", "", &v)
	switch len(v) {
	case 0:
		return nil
	case 1:
		return fault.Newf(fault.Validation, "1 validation error detected: %s", v[0])
	}
	return fault.Newf(fault.Validation, "%d validation errors detected: %s", len(v), strings.Join(v, "; "))
}

// validateMembers checks members, given in form under prefix (the
// structure's own key and a dot), named in messages under path.
func validateMembers(members []queryMember, form map[string][]string, prefix, path string, v *[]string) {
	for _, m := range members {
		key, mpath := prefix+m.name, path+lowerFirst(m.name)
		if !present(form, key) {
			if m.required {
				*v = append(*v, fmt.Sprintf("Value null at '%s' failed to satisfy constraint: Member must not be null", mpath))
			}
			continue
		}
		validateValue(m.shape, form, key, mpath, v)
	}
}

// present reports whether form gives key, or a member of it.
func present(form map[string][]string, key string) bool {
	if _, ok := form[key]; ok {
		return true
	}
	for k := range form {
		if strings.HasPrefix(k, key+".") {
			return true
		}
	}
	return false
}

func validateValue(s *queryShape, form map[string][]string, key, path string, v *[]string) {
	shown := func(value string) string {
		if s.hidden {
			return fmt.Sprintf("Value at '%s' failed to satisfy constraint: ", path)
		}
		return fmt.Sprintf("Value '%s' at '%s' failed to satisfy constraint: ", value, path)
	}
	value := ""
	if vs := form[key]; len(vs) > 0 {
		value = vs[0]
	}
	switch s.kind {
	case 's':
		if s.re != nil && !s.re.MatchString(value) {
			*v = append(*v, shown(value)+"Member must satisfy regular expression pattern: "+s.pattern)
		}
		if s.enum != nil && !slices.Contains(s.enum, value) {
			*v = append(*v, shown(value)+"Member must satisfy enum value set: ["+strings.Join(s.enum, ", ")+"]")
		}
		n := int64(utf8.RuneCountInString(value))
		if s.min >= 0 && n < s.min {
			*v = append(*v, fmt.Sprintf("%sMember must have length greater than or equal to %d", shown(value), s.min))
		}
		if s.max >= 0 && n > s.max {
			*v = append(*v, fmt.Sprintf("%sMember must have length less than or equal to %d", shown(value), s.max))
		}
	case 'i':
		n, err := strconv.ParseInt(value, 10, 32)
		if err != nil {
			*v = append(*v, shown(value)+"Member must be a 32-bit integer")
			return
		}
		if s.min >= 0 && n < s.min {
			*v = append(*v, fmt.Sprintf("%sMember must have value greater than or equal to %d", shown(value), s.min))
		}
		if s.max >= 0 && n > s.max {
			*v = append(*v, fmt.Sprintf("%sMember must have value less than or equal to %d", shown(value), s.max))
		}
	case 'l':
		n := listLength(form, key)
		var elems []string
		for i := 1; i <= n; i++ {
			ekey, epath := fmt.Sprintf("%s.member.%d", key, i), fmt.Sprintf("%s.%d.member", path, i)
			if s.elem.kind == 'r' {
				validateMembers(s.elem.fields, form, ekey+".", epath+".", v)
				continue
			}
			elems = append(elems, firstValue(form, ekey))
			if present(form, ekey) {
				validateValue(s.elem, form, ekey, epath, v)
			}
		}
		// A list of structures is left out of messages, which would show
		// each element as AWS's implementation prints it.
		head := fmt.Sprintf("Value '[%s]' at '%s' failed to satisfy constraint: ", strings.Join(elems, ", "), path)
		if s.elem.kind == 'r' {
			head = fmt.Sprintf("Value at '%s' failed to satisfy constraint: ", path)
		}
		if s.min >= 0 && int64(n) < s.min {
			*v = append(*v, fmt.Sprintf("%sMember must have length greater than or equal to %d", head, s.min))
		}
		if s.max >= 0 && int64(n) > s.max {
			*v = append(*v, fmt.Sprintf("%sMember must have length less than or equal to %d", head, s.max))
		}
	}
}

func firstValue(form map[string][]string, key string) string {
	if vs := form[key]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// listLength is the number of elements of the list at key: its highest
// member index (key.member.N or key.member.N.Field). "key=" with no
// members is an empty list, as the SDKs send one.
func listLength(form map[string][]string, key string) int {
	n := 0
	for k := range form {
		rest, ok := strings.CutPrefix(k, key+".member.")
		if !ok {
			continue
		}
		idx, _, _ := strings.Cut(rest, ".")
		if i, err := strconv.Atoi(idx); err == nil && i > n && i <= 1000 {
			n = i
		}
	}
	return n
}

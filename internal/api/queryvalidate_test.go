package api

import (
	"net/url"
	"strings"
	"testing"
)

func TestValidateQuery(t *testing.T) {
	for _, tc := range []struct {
		action, form, want string
	}{
		{"ListUsers", "", ""},
		{"GetUser", "UserName=", "2 validation errors detected: Value '' at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+; Value '' at 'userName' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{"GetUserPolicy", "UserName=a%20b", "2 validation errors detected: Value 'a b' at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+; Value null at 'policyName' failed to satisfy constraint: Member must not be null"},
		{"ListRoles", "MaxItems=1001", "1 validation error detected: Value '1001' at 'maxItems' failed to satisfy constraint: Member must have value less than or equal to 1000"},
		{"ListRoles", "MaxItems=ten", "1 validation error detected: Value 'ten' at 'maxItems' failed to satisfy constraint: Member must be a 32-bit integer"},
		{"UpdateLoginProfile", "UserName=u&Password=%C4%80", "1 validation error detected: Value at 'password' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+"},
		// A list's length is its highest index; an empty one is "Name=".
		{"AssumeRole", "RoleArn=arn:aws:iam::111122223333:role/r&RoleSessionName=s1&TransitiveTagKeys.member.51=k", "1 validation error detected: Value '[" + strings.Repeat(", ", 50) + "k]' at 'transitiveTagKeys' failed to satisfy constraint: Member must have length less than or equal to 50"},
		{"AssumeRole", "RoleArn=arn:aws:iam::111122223333:role/r&RoleSessionName=s1&ProvidedContexts=", "1 validation error detected: Value at 'providedContexts' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{"AssumeRole", "RoleArn=arn:aws:iam::111122223333:role/r&RoleSessionName=s1&Tags.member.2.Key=k", "3 validation errors detected: Value null at 'tags.1.member.key' failed to satisfy constraint: Member must not be null; Value null at 'tags.1.member.value' failed to satisfy constraint: Member must not be null; Value null at 'tags.2.member.value' failed to satisfy constraint: Member must not be null"},
	} {
		form, err := url.ParseQuery(tc.form)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if err := validateQuery(tc.action, form); err != nil {
			got = err.Error()
		}
		if !strings.HasSuffix(got, tc.want) || (tc.want == "") != (got == "") {
			t.Errorf("%s %s:\n got %q\nwant %q", tc.action, tc.form, got, tc.want)
		}
	}
}

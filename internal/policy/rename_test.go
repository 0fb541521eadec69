package policy

import (
	"encoding/json"
	"testing"
)

func TestRenamePrincipals(t *testing.T) {
	const gone = "arn:aws:iam::111122223333:user/alice"
	names := map[string]string{gone: "AIDAEXAMPLEALICE00001"}
	for _, tc := range []struct{ doc, want string }{
		{`{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:*","Resource":"*"}]}`,
			`{"Statement":[{"Effect":"Allow","Principal":{"AWS":"AIDAEXAMPLEALICE00001"},"Action":"kms:*","Resource":"*"}]}`},
		// Lists, NotPrincipal, a single statement object, layout kept; the
		// same ARN in a Condition and other principals stay.
		{"{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": {\n    \"Effect\": \"Deny\",\n    \"NotPrincipal\": { \"AWS\": [ \"arn:aws:iam::111122223333:root\", \"arn:aws:iam::111122223333:user/alice\" ] },\n    \"Action\": \"kms:Decrypt\",\n    \"Resource\": \"*\",\n    \"Condition\": {\"StringEquals\": {\"aws:PrincipalArn\": \"arn:aws:iam::111122223333:user/alice\"}}\n  }\n}",
			"{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": {\n    \"Effect\": \"Deny\",\n    \"NotPrincipal\": { \"AWS\": [ \"arn:aws:iam::111122223333:root\", \"AIDAEXAMPLEALICE00001\" ] },\n    \"Action\": \"kms:Decrypt\",\n    \"Resource\": \"*\",\n    \"Condition\": {\"StringEquals\": {\"aws:PrincipalArn\": \"arn:aws:iam::111122223333:user/alice\"}}\n  }\n}"},
		// Escapes in the document: the string is found by its value.
		{`{"Statement":[{"Sid":"a\"b","Principal":{"AWS":["arn:aws:iam::111122223333:user\/alice"]},"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`,
			`{"Statement":[{"Sid":"a\"b","Principal":{"AWS":["AIDAEXAMPLEALICE00001"]},"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`},
		// Elsewhere than Statement/Principal/AWS: untouched.
		{`{"Statement":[{"Principal":{"Service":"arn:aws:iam::111122223333:user/alice"},"Resource":"arn:aws:iam::111122223333:user/alice"}]}`,
			`{"Statement":[{"Principal":{"Service":"arn:aws:iam::111122223333:user/alice"},"Resource":"arn:aws:iam::111122223333:user/alice"}]}`},
	} {
		if got := RenamePrincipals(tc.doc, names); got != tc.want {
			t.Errorf("RenamePrincipals:\n%s\ngot\n%s\nwant\n%s", tc.doc, got, tc.want)
		}
	}
	for _, doc := range []string{"not json", `{"Statement":{"Principal":{"AWS":"` + gone + `"}}} {}`,
		`{"Statement":{"Principal":{"AWS":"` + gone + `"}}`} {
		if got := RenamePrincipals(doc, names); got != doc {
			t.Errorf("a document that is not one JSON value changed: %q", got)
		}
	}
}

func FuzzRenamePrincipals(f *testing.F) {
	f.Add(`{"Statement":[{"Principal":{"AWS":["x","y"]}}]}`, "x")
	f.Add(`{"Statement":{"Principal":{"AWS":"x"}}} {}`, "x")
	f.Fuzz(func(t *testing.T, doc, name string) {
		got := RenamePrincipals(doc, map[string]string{name: "AIDA0"})
		if (got != doc || json.Valid([]byte(doc))) && !json.Valid([]byte(got)) {
			t.Fatalf("not JSON after renaming: %q -> %q", doc, got)
		}
	})
}

package authz

import (
	"testing"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/kmsapi"
)

func TestGrantCovers(t *testing.T) {
	subset := &kmsapi.GrantConstraints{EncryptionContextSubset: map[string]string{"app": "a"}}
	equals := &kmsapi.GrantConstraints{EncryptionContextEquals: map[string]string{"app": "a"}}
	child := func(c *kmsapi.GrantConstraints, ops ...string) *Conditions {
		return &Conditions{Child: &ChildGrant{Operations: ops, Constraints: c}}
	}
	ec := func(m map[string]string) *Conditions { return &Conditions{EC: m} }
	for _, tc := range []struct {
		name  string
		g     *keyrepo.GrantRecord
		op    string
		cond  *Conditions
		allow bool
	}{
		{"listed operation", &keyrepo.GrantRecord{Operations: []string{"Encrypt"}}, "Encrypt", ec(nil), true},
		{"unlisted operation", &keyrepo.GrantRecord{Operations: []string{"Encrypt"}}, "Decrypt", ec(nil), false},
		{"constraint met", &keyrepo.GrantRecord{Operations: []string{"Decrypt"}, Constraints: subset}, "Decrypt", ec(map[string]string{"app": "a", "x": "y"}), true},
		{"constraint not met", &keyrepo.GrantRecord{Operations: []string{"Decrypt"}, Constraints: subset}, "Decrypt", ec(map[string]string{"app": "b"}), false},
		{"exact constraint, extra pair", &keyrepo.GrantRecord{Operations: []string{"Decrypt"}, Constraints: equals}, "Decrypt", ec(map[string]string{"app": "a", "x": "y"}), false},
		{"constraints do not bind DescribeKey", &keyrepo.GrantRecord{Operations: []string{"DescribeKey"}, Constraints: equals}, "DescribeKey", ec(nil), true},
		{"constraints do not bind RetireGrant", &keyrepo.GrantRecord{Operations: []string{"RetireGrant"}, Constraints: subset}, "RetireGrant", ec(nil), true},
		{"CreateGrant, subset of operations", &keyrepo.GrantRecord{Operations: []string{"CreateGrant", "Encrypt", "Decrypt"}}, "CreateGrant", child(nil, "Decrypt"), true},
		{"CreateGrant, CreateGrant itself", &keyrepo.GrantRecord{Operations: []string{"CreateGrant", "Encrypt"}}, "CreateGrant", child(nil, "CreateGrant", "Encrypt"), true},
		{"CreateGrant, an operation beyond", &keyrepo.GrantRecord{Operations: []string{"CreateGrant", "Encrypt"}}, "CreateGrant", child(nil, "Decrypt"), false},
		{"CreateGrant, no child known", &keyrepo.GrantRecord{Operations: []string{"CreateGrant"}}, "CreateGrant", ec(nil), false},
		{"CreateGrant, child loses the constraint", &keyrepo.GrantRecord{Operations: []string{"CreateGrant", "Decrypt"}, Constraints: subset}, "CreateGrant", child(nil, "Decrypt"), false},
		{"CreateGrant, child keeps it", &keyrepo.GrantRecord{Operations: []string{"CreateGrant", "Decrypt"}, Constraints: subset}, "CreateGrant", child(subset, "Decrypt"), true},
		{"CreateGrant, child narrows to exact", &keyrepo.GrantRecord{Operations: []string{"CreateGrant", "Decrypt"}, Constraints: subset}, "CreateGrant",
			child(&kmsapi.GrantConstraints{EncryptionContextEquals: map[string]string{"App": "a", "b": "c"}}, "Decrypt"), true},
		{"CreateGrant, exact parent, subset child", &keyrepo.GrantRecord{Operations: []string{"CreateGrant", "Decrypt"}, Constraints: equals}, "CreateGrant", child(subset, "Decrypt"), false},
		{"CreateGrant, exact parent, same child", &keyrepo.GrantRecord{Operations: []string{"CreateGrant", "Decrypt"}, Constraints: equals}, "CreateGrant", child(equals, "Decrypt"), true},
		{"CreateGrant, exact parent whose required pair it lacks, same exact child", &keyrepo.GrantRecord{Operations: []string{"CreateGrant", "Decrypt"},
			Constraints: &kmsapi.GrantConstraints{EncryptionContextEquals: map[string]string{"app": "a"}, EncryptionContextSubset: map[string]string{"team": "x"}}},
			"CreateGrant", child(equals, "Decrypt"), false},
		{"CreateGrant, exact parent with a required pair it holds, same exact child", &keyrepo.GrantRecord{Operations: []string{"CreateGrant", "Decrypt"},
			Constraints: &kmsapi.GrantConstraints{EncryptionContextEquals: map[string]string{"app": "a", "team": "x"}, EncryptionContextSubset: map[string]string{"team": "x"}}},
			"CreateGrant", child(&kmsapi.GrantConstraints{EncryptionContextEquals: map[string]string{"App": "a", "team": "x"}}, "Decrypt"), true},
		{"CreateGrant, both constraints in the child", &keyrepo.GrantRecord{Operations: []string{"CreateGrant", "Decrypt"}, Constraints: subset}, "CreateGrant",
			child(&kmsapi.GrantConstraints{EncryptionContextEquals: map[string]string{"app": "a"}, EncryptionContextSubset: map[string]string{"b": "c"}}, "Decrypt"), true},
		{"CreateGrant, subset parent, exact child without its pair", &keyrepo.GrantRecord{Operations: []string{"CreateGrant", "Decrypt"}, Constraints: subset}, "CreateGrant",
			child(&kmsapi.GrantConstraints{EncryptionContextEquals: map[string]string{"b": "c"}, EncryptionContextSubset: map[string]string{"app": "a"}}, "Decrypt"), false},
		{"CreateGrant, empty constraints parent", &keyrepo.GrantRecord{Operations: []string{"CreateGrant", "Decrypt"}, Constraints: &kmsapi.GrantConstraints{}}, "CreateGrant", child(nil, "Decrypt"), true},
	} {
		if got := grantCovers(tc.g, tc.op, tc.cond); got != tc.allow {
			t.Errorf("%s: grantCovers = %v, want %v", tc.name, got, tc.allow)
		}
	}
}

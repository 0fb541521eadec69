package main_test

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestAWSCLIKeyPolicyLayout: `aws kms get-key-policy --query Policy
// --output text` prints a key policy as it prints one from AWS, in
// Jackson's layout, whatever the layout it was put in; and the copy of a
// policy from one key to another (get-key-policy into a file, then
// put-key-policy --policy file://...) gives the second key the same text.
func TestAWSCLIKeyPolicyLayout(t *testing.T) {
	t.Parallel()
	bin := requireAWS(t)
	s := startDev(t, filepath.Join(t.TempDir(), "data"))
	a := newAWSCLI(t, bin, s)
	getPolicy := func(keyID string) string {
		t.Helper()
		return string(a.ok("get-key-policy", "--key-id", keyID, "--policy-name", "default", "--query", "Policy", "--output", "text"))
	}
	k1 := strings.TrimSpace(string(a.ok("create-key", "--query", "KeyMetadata.KeyId", "--output", "text")))
	k2 := strings.TrimSpace(string(a.ok("create-key", "--query", "KeyMetadata.KeyId", "--output", "text")))

	const defaultPolicy = `{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::111122223333:root"
    },
    "Action" : "kms:*",
    "Resource" : "*"
  } ]
}
`
	if got := getPolicy(k1); got != defaultPolicy {
		t.Errorf("get-key-policy of a new key printed\n%s\nwant\n%s", got, defaultPolicy)
	}

	a.ok("put-key-policy", "--key-id", k1, "--policy-name", "default", "--policy",
		`{"Version": "2012-10-17", "Statement": [{"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
		  "Action": ["kms:*"], "Resource": "*"}, {"Sid": "No signing \/ \u00e9", "Effect": "Deny", "Principal": {"AWS": "*"},
		  "Action": "kms:Sign", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}`)
	const shown = `{
  "Version" : "2012-10-17",
  "Statement" : [ {
    "Sid" : "Root",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::111122223333:root"
    },
    "Action" : [ "kms:*" ],
    "Resource" : "*"
  }, {
    "Sid" : "No signing / é",
    "Effect" : "Deny",
    "Principal" : {
      "AWS" : "*"
    },
    "Action" : "kms:Sign",
    "Resource" : "*",
    "Condition" : {
      "Bool" : {
        "aws:SecureTransport" : "false"
      }
    }
  } ]
}
`
	got := getPolicy(k1)
	if got != shown {
		t.Errorf("get-key-policy after put-key-policy printed\n%s\nwant\n%s", got, shown)
	}
	policyFile := a.file("policy.txt", []byte(got))
	a.ok("put-key-policy", "--key-id", k2, "--policy-name", "default", "--policy", "file://"+strings.TrimPrefix(policyFile, "fileb://"))
	if got := getPolicy(k2); got != shown {
		t.Errorf("get-key-policy of the key the policy was copied to printed\n%s\nwant\n%s", got, shown)
	}
}

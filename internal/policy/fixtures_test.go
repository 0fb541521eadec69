package policy

import (
	"errors"
	"strings"
	"testing"
)

const (
	account      = "111122223333"
	otherAccount = "444455556666"
	keyARN       = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
)

// defaultKeyPolicy is reference §6.1: what CreateKey stores without Policy.
const defaultKeyPolicy = `{
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
}`

// consoleKeyPolicy is reference §6.2 for a symmetric encryption key.
const consoleKeyPolicy = `{
  "Version": "2012-10-17",
  "Id": "key-consolepolicy-3",
  "Statement": [
    {
      "Sid": "Enable IAM User Permissions",
      "Effect": "Allow",
      "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
      "Action": "kms:*",
      "Resource": "*"
    },
    {
      "Sid": "Allow access for Key Administrators",
      "Effect": "Allow",
      "Principal": {"AWS": ["arn:aws:iam::111122223333:user/KMSAdminUser","arn:aws:iam::111122223333:role/KMSAdminRole"]},
      "Action": ["kms:Create*","kms:Describe*","kms:Enable*","kms:List*","kms:Put*","kms:Update*","kms:Revoke*",
                 "kms:Disable*","kms:Get*","kms:Delete*","kms:TagResource","kms:UntagResource",
                 "kms:ScheduleKeyDeletion","kms:CancelKeyDeletion"],
      "Resource": "*"
    },
    {
      "Sid": "Allow use of the key",
      "Effect": "Allow",
      "Principal": {"AWS": ["arn:aws:iam::111122223333:user/ExampleUser","arn:aws:iam::111122223333:role/ExampleRole"]},
      "Action": ["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey"],
      "Resource": "*"
    },
    {
      "Sid": "Allow attachment of persistent resources",
      "Effect": "Allow",
      "Principal": {"AWS": ["arn:aws:iam::111122223333:user/ExampleUser","arn:aws:iam::111122223333:role/ExampleRole"]},
      "Action": ["kms:CreateGrant","kms:ListGrants","kms:RevokeGrant"],
      "Resource": "*",
      "Condition": {"Bool": {"kms:GrantIsForAWSResource": true}}
    }
  ]
}`

var (
	root = Principal{ARN: "arn:aws:iam::111122223333:root", Account: account}
	// keyAdmin is named in the console policy's administrators statement.
	keyAdmin = Principal{ARN: "arn:aws:iam::111122223333:user/KMSAdminUser", Account: account, Username: "KMSAdminUser", UserID: "AIDAADMIN"}
	// adminSession is a session of the administrators' role.
	adminSession = Principal{ARN: "arn:aws:sts::111122223333:assumed-role/KMSAdminRole/alice", Account: account,
		RoleARN: "arn:aws:iam::111122223333:role/KMSAdminRole", UserID: "AROAADMIN:alice"}
	// keyUser is named in the console policy's key users statements.
	keyUser = Principal{ARN: "arn:aws:iam::111122223333:user/ExampleUser", Account: account, Username: "ExampleUser", UserID: "AIDAUSER"}
	// userSession is a session of the key users' role.
	userSession = Principal{ARN: "arn:aws:sts::111122223333:assumed-role/ExampleRole/app", Account: account,
		RoleARN: "arn:aws:iam::111122223333:role/ExampleRole"}
	// stranger is an IAM user of the same account that no statement names.
	stranger = Principal{ARN: "arn:aws:iam::111122223333:user/Mallory", Account: account, Username: "Mallory"}
	// outsider is a user of another account.
	outsider = Principal{ARN: "arn:aws:iam::444455556666:user/Bob", Account: otherAccount, Username: "Bob"}
)

func mustParse(t testing.TB, parse func(string) (*Policy, error), doc string) *Policy {
	t.Helper()
	p, err := parse(doc)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, doc)
	}
	return p
}

// keyPolicy wraps statements in a 2012-10-17 document.
func keyPolicy(statements ...string) string {
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(statements, ",") + `]}`
}

func req(p Principal, action string, ctx Context) *Request {
	return &Request{Principal: p, Action: action, Resource: keyARN, Context: ctx}
}

func wantPolicyError(t *testing.T, err error) *Error {
	t.Helper()
	var pe *Error
	if !errors.As(err, &pe) || pe.Message == "" {
		t.Fatalf("error %v (%T) is not a *policy.Error with a message", err, err)
	}
	return pe
}

package policy

import "testing"

// The personas of reference §6.3 against the policies of §6.1 and §6.2.

func TestDefaultKeyPolicy(t *testing.T) {
	p := mustParse(t, ParseResource, defaultKeyPolicy)
	if p.Version != "2012-10-17" || p.ID != "key-default-1" || len(p.Statements) != 1 ||
		p.Statements[0].Sid != "Enable IAM User Permissions" || p.Statements[0].Effect != Allow {
		t.Fatalf("parsed %+v", p)
	}
	tests := []struct {
		who  string
		p    Principal
		want Decision
	}{
		// The root user is the account principal itself.
		{"root", root, Decision{Allow: true, AccountAllow: true}},
		// Everyone else in the account needs an identity policy.
		{"user", keyUser, Decision{AccountAllow: true}},
		{"admin", keyAdmin, Decision{AccountAllow: true}},
		{"session", adminSession, Decision{AccountAllow: true}},
		{"other account", outsider, Decision{}},
	}
	for _, tt := range tests {
		for _, action := range []string{"kms:Encrypt", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion"} {
			if got := p.EvaluateResource(req(tt.p, action, nil)); got != tt.want {
				t.Errorf("%s %s: got %+v, want %+v", tt.who, action, got, tt.want)
			}
		}
	}
}

func TestConsoleKeyPolicy(t *testing.T) {
	p := mustParse(t, ParseResource, consoleKeyPolicy)
	grantForAWS := MapContext{"kms:grantisforawsresource": {"true"}}
	notForAWS := MapContext{"kms:grantisforawsresource": {"false"}}

	tests := []struct {
		who    string
		p      Principal
		action string
		ctx    Context
		allow  bool // named directly by an applicable statement
	}{
		// Administrators manage the key but cannot use it.
		{"admin", keyAdmin, "kms:DisableKey", nil, true},
		{"admin", keyAdmin, "kms:EnableKeyRotation", nil, true},
		{"admin", keyAdmin, "kms:PutKeyPolicy", nil, true},
		{"admin", keyAdmin, "kms:GetKeyPolicy", nil, true},
		{"admin", keyAdmin, "kms:GetPublicKey", nil, true},
		{"admin", keyAdmin, "kms:DescribeKey", nil, true},
		{"admin", keyAdmin, "kms:ListResourceTags", nil, true},
		{"admin", keyAdmin, "kms:CreateAlias", nil, true},
		{"admin", keyAdmin, "kms:CreateGrant", nil, true},
		{"admin", keyAdmin, "kms:ScheduleKeyDeletion", nil, true},
		{"admin", keyAdmin, "kms:CancelKeyDeletion", nil, true},
		{"admin", keyAdmin, "kms:TagResource", nil, true},
		{"admin", keyAdmin, "kms:DeleteImportedKeyMaterial", nil, true},
		{"admin", keyAdmin, "kms:Encrypt", nil, false},
		{"admin", keyAdmin, "kms:Decrypt", nil, false},
		{"admin", keyAdmin, "kms:GenerateDataKey", nil, false},
		{"admin", keyAdmin, "kms:Sign", nil, false},
		{"admin", keyAdmin, "kms:ImportKeyMaterial", nil, false},
		{"admin", keyAdmin, "kms:RotateKeyOnDemand", nil, false},
		// A session of the administrators' role is named through the role.
		{"admin session", adminSession, "kms:DisableKey", nil, true},
		{"admin session", adminSession, "kms:Encrypt", nil, false},
		// Users use the key but cannot manage it.
		{"user", keyUser, "kms:Encrypt", nil, true},
		{"user", keyUser, "kms:Decrypt", nil, true},
		{"user", keyUser, "kms:ReEncryptFrom", nil, true},
		{"user", keyUser, "kms:ReEncryptTo", nil, true},
		{"user", keyUser, "kms:GenerateDataKey", nil, true},
		{"user", keyUser, "kms:GenerateDataKeyWithoutPlaintext", nil, true},
		{"user", keyUser, "kms:GenerateDataKeyPair", nil, true},
		{"user", keyUser, "kms:DescribeKey", nil, true},
		{"user", keyUser, "kms:PutKeyPolicy", nil, false},
		{"user", keyUser, "kms:DisableKey", nil, false},
		{"user", keyUser, "kms:ScheduleKeyDeletion", nil, false},
		{"user", keyUser, "kms:TagResource", nil, false},
		{"user", keyUser, "kms:CreateAlias", nil, false},
		// Grants only when an AWS service asks on the user's behalf.
		{"user", keyUser, "kms:CreateGrant", nil, false},
		{"user", keyUser, "kms:CreateGrant", notForAWS, false},
		{"user", keyUser, "kms:CreateGrant", grantForAWS, true},
		{"user", keyUser, "kms:ListGrants", grantForAWS, true},
		{"user", keyUser, "kms:RetireGrant", grantForAWS, false},
		{"user session", userSession, "kms:Decrypt", nil, true},
		{"user session", userSession, "kms:CreateGrant", grantForAWS, true},
		{"user session", userSession, "kms:DisableKey", nil, false},
		// Nobody else is named.
		{"stranger", stranger, "kms:Encrypt", nil, false},
		{"stranger", stranger, "kms:DescribeKey", nil, false},
		{"outsider", outsider, "kms:Decrypt", nil, false},
		{"root", root, "kms:Encrypt", nil, true},
		{"root", root, "kms:PutKeyPolicy", nil, true},
	}
	for _, tt := range tests {
		got := p.EvaluateResource(req(tt.p, tt.action, tt.ctx))
		want := Decision{Allow: tt.allow, AccountAllow: tt.p.Account == account}
		if got != want {
			t.Errorf("%s %s: got %+v, want %+v", tt.who, tt.action, got, want)
		}
	}
}

func TestAllowsForLockoutCheck(t *testing.T) {
	console := mustParse(t, ParseResource, consoleKeyPolicy)
	usersOnly := mustParse(t, ParseResource, keyPolicy(
		`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/ExampleUser"},"Action":"kms:Encrypt","Resource":"*"}`))
	adminsOnly := mustParse(t, ParseResource, keyPolicy(
		`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/KMSAdminUser"},"Action":"kms:*","Resource":"*"}`,
		`{"Effect":"Deny","Principal":"*","Action":"kms:PutKeyPolicy","Resource":"*","Condition":{"StringNotEquals":{"aws:username":"KMSAdminUser"}}}`))
	denied := mustParse(t, ParseResource, keyPolicy(
		`{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}`,
		`{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"kms:PutKeyPolicy","Resource":"*"}`))

	tests := []struct {
		name string
		p    *Policy
		who  Principal
		want bool
	}{
		{"console, admin", console, keyAdmin, true},
		{"console, stranger through the account", console, stranger, true},
		{"console, outsider", console, outsider, false},
		{"users only, admin", usersOnly, keyAdmin, false},
		{"users only, user", usersOnly, keyUser, false},
		{"admins only, admin", adminsOnly, keyAdmin, true},
		{"admins only, root denied by condition", adminsOnly, root, false},
		{"deny wins", denied, keyAdmin, false},
	}
	for _, tt := range tests {
		if got := tt.p.Allows(req(tt.who, "kms:PutKeyPolicy", nil)); got != tt.want {
			t.Errorf("%s: Allows = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestEvaluationDoesNotAllocate(t *testing.T) {
	p := mustParse(t, ParseResource, consoleKeyPolicy)
	ctx := MapContext{"kms:grantisforawsresource": {"true"}}
	requests := []*Request{
		req(keyUser, "kms:Encrypt", ctx),
		req(keyAdmin, "kms:Encrypt", ctx),
		req(userSession, "kms:CreateGrant", ctx),
		req(outsider, "kms:Decrypt", ctx),
	}
	for _, r := range requests {
		if n := testing.AllocsPerRun(100, func() { p.EvaluateResource(r) }); n != 0 {
			t.Errorf("%s %s: %v allocations", r.Principal.ARN, r.Action, n)
		}
	}
}

package e2e_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
)

// Key lifecycle through the SDK: CreateKey, DescribeKey, ListKeys,
// EnableKey/DisableKey, ScheduleKeyDeletion/CancelKeyDeletion, the
// deletion sweeper and UpdateKeyDescription.

func TestE2ECreateKeyDefaults(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	out, err := e.client.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if requestID(out.ResultMetadata) == "" {
		t.Error("CreateKey response has no x-amzn-RequestId")
	}
	m := out.KeyMetadata
	id := aws.ToString(m.KeyId)
	if !uuidRE.MatchString(id) {
		t.Errorf("KeyId %q is not a lowercase UUID", id)
	}
	checks := []struct {
		field    string
		got, exp any
	}{
		{"AWSAccountId", aws.ToString(m.AWSAccountId), e2eAccount},
		{"Arn", aws.ToString(m.Arn), e.keyARN(id)},
		{"Enabled", m.Enabled, true},
		{"Description", m.Description != nil && *m.Description == "", true},
		{"KeyUsage", m.KeyUsage, types.KeyUsageTypeEncryptDecrypt},
		{"KeyState", m.KeyState, types.KeyStateEnabled},
		{"Origin", m.Origin, types.OriginTypeAwsKms},
		{"KeyManager", m.KeyManager, types.KeyManagerTypeCustomer},
		{"KeySpec", m.KeySpec, types.KeySpecSymmetricDefault},
		{"CustomerMasterKeySpec", m.CustomerMasterKeySpec, types.CustomerMasterKeySpecSymmetricDefault},
		{"EncryptionAlgorithms", slices.Equal(m.EncryptionAlgorithms, []types.EncryptionAlgorithmSpec{types.EncryptionAlgorithmSpecSymmetricDefault}), true},
		{"MultiRegion", m.MultiRegion != nil && !*m.MultiRegion, true},
		{"MultiRegionConfiguration absent", m.MultiRegionConfiguration == nil, true},
		{"DeletionDate absent", m.DeletionDate == nil, true},
		{"PendingDeletionWindowInDays absent", m.PendingDeletionWindowInDays == nil, true},
		{"SigningAlgorithms absent", m.SigningAlgorithms == nil && m.MacAlgorithms == nil && m.KeyAgreementAlgorithms == nil, true},
		{"ValidTo absent", m.ValidTo == nil && m.ExpirationModel == "", true},
		{"CreationDate is the clock", sameInstant(e2eStart, m.CreationDate), true},
		{"CurrentKeyMaterialId is 64 hex", hex64RE.MatchString(aws.ToString(m.CurrentKeyMaterialId)), true},
	}
	for _, c := range checks {
		if c.got != c.exp {
			t.Errorf("KeyMetadata.%s = %v, want %v", c.field, c.got, c.exp)
		}
	}

	// DescribeKey returns the same metadata.
	d := e.describe(t, id)
	if aws.ToString(d.Arn) != aws.ToString(m.Arn) || d.KeyState != m.KeyState || !sameInstant(*m.CreationDate, d.CreationDate) ||
		aws.ToString(d.CurrentKeyMaterialId) != aws.ToString(m.CurrentKeyMaterialId) {
		t.Errorf("DescribeKey %+v differs from CreateKey %+v", d, m)
	}

	// On the wire: Description is present as "", absent members are omitted,
	// CreationDate is epoch seconds as a JSON number.
	r := e.rawCall(t, "DescribeKey", `{"KeyId":"`+id+`"}`)
	if r.status != 200 {
		t.Fatalf("DescribeKey: %d %s", r.status, r.body)
	}
	km, _ := r.json(t)["KeyMetadata"].(map[string]any)
	if km == nil {
		t.Fatalf("no KeyMetadata in %s", r.body)
	}
	if v, ok := km["Description"]; !ok || v != "" {
		t.Errorf("Description on the wire = %v (present %v), want \"\"", v, ok)
	}
	for _, absent := range []string{"DeletionDate", "MultiRegionConfiguration", "SigningAlgorithms", "MacAlgorithms", "ValidTo", "ExpirationModel"} {
		if _, ok := km[absent]; ok {
			t.Errorf("%s present on the wire for a new symmetric key", absent)
		}
	}
	if cd, ok := km["CreationDate"].(float64); !ok || cd != float64(e2eStart.UnixMilli())/1000 {
		t.Errorf("CreationDate on the wire = %v (%T), want %v", km["CreationDate"], km["CreationDate"], float64(e2eStart.UnixMilli())/1000)
	}
}

func TestE2ECreateKeyOptions(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()

	t.Run("description and tags", func(t *testing.T) {
		m := e.createKey(t, &kms.CreateKeyInput{
			Description: aws.String("payments key"),
			Tags:        []types.Tag{{TagKey: aws.String("team"), TagValue: aws.String("pay")}, {TagKey: aws.String("env"), TagValue: aws.String("")}},
		})
		if aws.ToString(m.Description) != "payments key" {
			t.Errorf("Description = %q", aws.ToString(m.Description))
		}
		if d := e.describe(t, aws.ToString(m.KeyId)); aws.ToString(d.Description) != "payments key" {
			t.Errorf("DescribeKey Description = %q", aws.ToString(d.Description))
		}
		tags, err := e.client.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: m.KeyId})
		if err != nil {
			t.Fatal(err)
		}
		if got := tagPairs(tags.Tags); got != "team=pay,env=" {
			t.Errorf("tags = %s, want team=pay,env=", got)
		}
	})

	t.Run("explicit valid policy", func(t *testing.T) {
		policy := `{"Version":"2012-10-17","Statement":[{"Sid":"root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`
		m := e.createKey(t, &kms.CreateKeyInput{Policy: aws.String(policy)})
		if m.KeyState != types.KeyStateEnabled {
			t.Errorf("KeyState = %s", m.KeyState)
		}
		// The key works like any other.
		e.decrypt(t, e.encrypt(t, aws.ToString(m.KeyId), []byte("x"), nil).CiphertextBlob, nil)
	})

	errCases := []struct {
		name string
		in   *kms.CreateKeyInput
		code string
		msg  string // exact, or prefix when it ends in "…"
	}{
		{"policy not JSON", &kms.CreateKeyInput{Policy: aws.String(`{"Statement": [`)}, "MalformedPolicyDocumentException", ""},
		{"policy a JSON array", &kms.CreateKeyInput{Policy: aws.String(`[]`)}, "MalformedPolicyDocumentException", ""},
		{"policy without Statement", &kms.CreateKeyInput{Policy: aws.String(`{"Version":"2012-10-17"}`)}, "MalformedPolicyDocumentException", ""},
		{"RSA without KeyUsage", &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048}, "ValidationException",
			"You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."},
		{"HMAC without KeyUsage", &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256}, "ValidationException",
			"You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."},
		{"SM2 key", &kms.CreateKeyInput{KeySpec: types.KeySpecSm2, KeyUsage: types.KeyUsageTypeSignVerify}, "UnsupportedOperationException", ""},
		{"ECC key for encryption", &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeEncryptDecrypt}, "ValidationException",
			"KeyUsage ENCRYPT_DECRYPT is not compatible with KeySpec ECC_NIST_P256"},
		{"HMAC key for signing", &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeSignVerify}, "ValidationException",
			"KeyUsage SIGN_VERIFY is not compatible with KeySpec HMAC_256"},
		{"symmetric key for signing", &kms.CreateKeyInput{KeyUsage: types.KeyUsageTypeSignVerify}, "ValidationException",
			"KeyUsage SIGN_VERIFY is not compatible with KeySpec SYMMETRIC_DEFAULT"},
		{"unknown KeySpec", &kms.CreateKeyInput{KeySpec: "HMAC_random"}, "ValidationException",
			"1 validation error detected: Value 'HMAC_random' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [RSA_2048, ECC_NIST_P384, ECC_NIST_P256, ECC_NIST_P521, HMAC_384, RSA_3072, ECC_SECG_P256K1, RSA_4096, SYMMETRIC_DEFAULT, HMAC_256, HMAC_224, HMAC_512…"},
		{"unknown KeyUsage", &kms.CreateKeyInput{KeyUsage: "RANDOM"}, "ValidationException",
			"1 validation error detected: Value 'RANDOM' at 'keyUsage' failed to satisfy constraint: Member must satisfy enum value set: [ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC…"},
		{"KeySpec and CustomerMasterKeySpec", &kms.CreateKeyInput{KeySpec: types.KeySpecSymmetricDefault, CustomerMasterKeySpec: types.CustomerMasterKeySpecSymmetricDefault}, "ValidationException",
			"You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec is deprecated."},
		{"CloudHSM origin", &kms.CreateKeyInput{Origin: types.OriginTypeAwsCloudhsm}, "UnsupportedOperationException", ""},
		{"description too long", &kms.CreateKeyInput{Description: aws.String(strings.Repeat("d", 8193))}, "ValidationException",
			"1 validation error detected: Value '" + strings.Repeat("d", 8193) + "' at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192"},
		{"reserved tag", &kms.CreateKeyInput{Tags: []types.Tag{{TagKey: aws.String("aws:owner"), TagValue: aws.String("x")}}}, "TagException",
			"Tags beginning with aws: are reserved"},
		{"duplicate tags", &kms.CreateKeyInput{Tags: []types.Tag{{TagKey: aws.String("a"), TagValue: aws.String("1")}, {TagKey: aws.String("a"), TagValue: aws.String("2")}}}, "TagException",
			"Duplicate tag keys"},
		{"51 tags", &kms.CreateKeyInput{Tags: nTags(51, "t")}, "TagException", "Too many tags"},
	}
	for _, c := range errCases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.client.CreateKey(ctx, c.in)
			switch {
			case c.msg == "":
				if ae := expectAPIErrorCode(t, err, c.code); ae != nil && ae.ErrorMessage() == "" {
					t.Errorf("%s without a message", c.code)
				}
			case strings.HasSuffix(c.msg, "…"):
				expectAPIErrorPrefix(t, err, c.code, strings.TrimSuffix(c.msg, "…"))
			default:
				expectAPIError(t, err, c.code, c.msg)
			}
		})
	}
	t.Run("typed errors", func(t *testing.T) {
		_, err := e.client.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String("not json")})
		expectTyped[*types.MalformedPolicyDocumentException](t, err)
		_, err = e.client.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecSm2, KeyUsage: types.KeyUsageTypeSignVerify})
		expectTyped[*types.UnsupportedOperationException](t, err)
		_, err = e.client.CreateKey(ctx, &kms.CreateKeyInput{Tags: nTags(51, "t")})
		expectTyped[*types.TagException](t, err)
	})
	t.Run("50 tags", func(t *testing.T) {
		m := e.createKey(t, &kms.CreateKeyInput{Tags: nTags(50, "t")})
		tags, err := e.client.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: m.KeyId})
		if err != nil {
			t.Fatal(err)
		}
		if len(tags.Tags) != 50 || tags.Truncated {
			t.Errorf("got %d tags (truncated %v), want 50", len(tags.Tags), tags.Truncated)
		}
	})
}

func TestE2EDescribeKeyIdentifierForms(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	id := e.newKey(t)
	e.newKey(t) // a second key, so that a lookup cannot get lucky
	e.createAlias(t, "alias/orders", id)
	for _, ident := range []string{id, e.keyARN(id), "alias/orders", e.aliasARN("alias/orders")} {
		t.Run(ident, func(t *testing.T) {
			m := e.describe(t, ident)
			if aws.ToString(m.KeyId) != id || aws.ToString(m.Arn) != e.keyARN(id) {
				t.Errorf("DescribeKey(%s) = %s / %s, want %s", ident, aws.ToString(m.KeyId), aws.ToString(m.Arn), id)
			}
		})
	}
}

func TestE2EDescribeKeyErrors(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	id := e.newKey(t)
	unknown := "0b7a4d2e-5c1f-4e3a-9d8b-7f6e5d4c3b2a"
	cases := []struct {
		ident, code, msg string
	}{
		{"x", "NotFoundException", "Invalid keyId 'x'"},
		{"fake-key-id", "NotFoundException", "Invalid keyId 'fake-key-id'"},
		{strings.ReplaceAll(id, "-", ""), "NotFoundException", "Invalid keyId '" + strings.ReplaceAll(id, "-", "") + "'"},
		{"mrk-fake-key-id", "NotFoundException", "Invalid keyId 'mrk-fake-key-id'"},
		{unknown, "NotFoundException", "Key '" + e.keyARN(unknown) + "' does not exist"},
		{e.keyARN(unknown), "NotFoundException", "Key '" + e.keyARN(unknown) + "' does not exist"},
		{"mrk-1234abcd12ab34cd56ef1234567890ab", "NotFoundException", "Key '" + e.keyARN("mrk-1234abcd12ab34cd56ef1234567890ab") + "' does not exist"},
		{"arn:aws:kms:us-west-2:" + e2eAccount + ":key/" + id, "NotFoundException", "Invalid arn us-west-2"},
		{"arn:aws:kms:us-east-1:444455556666:key/" + id, "NotFoundException", "Key 'arn:aws:kms:us-east-1:444455556666:key/" + id + "' does not exist"},
		{"alias/nope", "NotFoundException", "Alias " + e.aliasARN("alias/nope") + " is not found."},
		{e.aliasARN("alias/nope"), "NotFoundException", "Alias " + e.aliasARN("alias/nope") + " is not found."},
		{strings.Repeat("k", 2049), "ValidationException",
			"1 validation error detected: Value '" + strings.Repeat("k", 2049) + "' at 'keyId' failed to satisfy constraint: Member must have length less than or equal to 2048"},
	}
	for _, c := range cases {
		name := c.ident
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := e.client.DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String(c.ident)})
			expectAPIError(t, err, c.code, c.msg)
			if c.code == "NotFoundException" {
				expectTyped[*types.NotFoundException](t, err)
			}
		})
	}
}

func TestE2EListKeysPagination(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	want := map[string]bool{}
	for range 5 {
		want[e.newKey(t)] = true
	}
	// Keys in every state are listed.
	var ids []string
	for id := range want {
		ids = append(ids, id)
	}
	e.disable(t, ids[0])
	e.scheduleDeletion(t, ids[1], 7)

	seen := map[string]int{}
	var marker *string
	var sizes []int
	var prev string
	for page := 0; ; page++ {
		if page > 5 {
			t.Fatal("ListKeys does not terminate")
		}
		out, err := e.client.ListKeys(ctx, &kms.ListKeysInput{Limit: aws.Int32(2), Marker: marker})
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(out.Keys))
		for _, k := range out.Keys {
			id := aws.ToString(k.KeyId)
			seen[id]++
			if aws.ToString(k.KeyArn) != e.keyARN(id) {
				t.Errorf("KeyArn %s for %s", aws.ToString(k.KeyArn), id)
			}
			if id <= prev {
				t.Errorf("ListKeys not ordered: %s after %s", id, prev)
			}
			prev = id
		}
		if out.Truncated != (out.NextMarker != nil) {
			t.Errorf("Truncated %v with NextMarker %v", out.Truncated, out.NextMarker)
		}
		if !out.Truncated {
			break
		}
		marker = out.NextMarker
	}
	if !slices.Equal(sizes, []int{2, 2, 1}) {
		t.Errorf("page sizes %v, want [2 2 1]", sizes)
	}
	if len(seen) != 5 {
		t.Errorf("saw %d keys, want 5", len(seen))
	}
	for id, n := range seen {
		if !want[id] || n != 1 {
			t.Errorf("key %s seen %d times (created here: %v)", id, n, want[id])
		}
	}

	t.Run("default limit lists all", func(t *testing.T) {
		out, err := e.client.ListKeys(ctx, &kms.ListKeysInput{})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Keys) != 5 || out.Truncated || out.NextMarker != nil {
			t.Errorf("got %d keys, truncated %v, marker %v", len(out.Keys), out.Truncated, out.NextMarker)
		}
	})
	t.Run("paginator", func(t *testing.T) {
		if n := len(e.listAllKeys(t)); n != 5 {
			t.Errorf("paginator saw %d keys", n)
		}
	})
	t.Run("garbage marker", func(t *testing.T) {
		for _, m := range []string{"garbage", "!!!", "bTE6"} {
			_, err := e.client.ListKeys(ctx, &kms.ListKeysInput{Marker: aws.String(m)})
			expectAPIErrorCode(t, err, "InvalidMarkerException")
			expectTyped[*types.InvalidMarkerException](t, err)
		}
	})
	t.Run("limit out of range", func(t *testing.T) {
		_, err := e.client.ListKeys(ctx, &kms.ListKeysInput{Limit: aws.Int32(0)})
		expectAPIError(t, err, "ValidationException", "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1")
		_, err = e.client.ListKeys(ctx, &kms.ListKeysInput{Limit: aws.Int32(1001)})
		expectAPIError(t, err, "ValidationException", "1 validation error detected: Value '1001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 1000")
	})
}

func TestE2EEnableDisableKey(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newKey(t)
	arn := e.keyARN(id)

	state := func(want types.KeyState) {
		t.Helper()
		m := e.describe(t, id)
		if m.KeyState != want || m.Enabled != (want == types.KeyStateEnabled) {
			t.Errorf("KeyState %s Enabled %v, want %s", m.KeyState, m.Enabled, want)
		}
	}
	out, err := e.client.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	if requestID(out.ResultMetadata) == "" {
		t.Error("DisableKey response has no request id")
	}
	state(types.KeyStateDisabled)
	// Idempotent, and the key ARN works too.
	if _, err := e.client.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	state(types.KeyStateDisabled)
	if _, err := e.client.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	state(types.KeyStateEnabled)
	if _, err := e.client.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	state(types.KeyStateEnabled)

	// Management operations take a key id or key ARN only.
	e.createAlias(t, "alias/toggle", id)
	_, err = e.client.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String("alias/toggle")})
	expectAPIError(t, err, "NotFoundException", "Invalid keyId 'alias/toggle'")
	_, err = e.client.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(e.aliasARN("alias/toggle"))})
	expectAPIError(t, err, "NotFoundException", "Invalid keyId '"+e.aliasARN("alias/toggle")+"'")

	unknown := "0b7a4d2e-5c1f-4e3a-9d8b-7f6e5d4c3b2a"
	_, err = e.client.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(unknown)})
	expectAPIError(t, err, "NotFoundException", "Key '"+e.keyARN(unknown)+"' does not exist")

	e.scheduleDeletion(t, id, 7)
	_, err = e.client.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(id)})
	expectAPIError(t, err, "KMSInvalidStateException", arn+" is pending deletion.")
	expectTyped[*types.KMSInvalidStateException](t, err)
	_, err = e.client.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(id)})
	expectAPIError(t, err, "KMSInvalidStateException", arn+" is pending deletion.")
	state(types.KeyStatePendingDeletion)
}

func TestE2EScheduleKeyDeletion(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		days *int32
		want int32
	}{
		{"default", nil, 30},
		{"7", aws.Int32(7), 7},
		{"30", aws.Int32(30), 30},
		{"15", aws.Int32(15), 15},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := e.newKey(t)
			now := e.clock.Now()
			out, err := e.client.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: c.days})
			if err != nil {
				t.Fatal(err)
			}
			wantDate := now.Add(time.Duration(c.want) * 24 * time.Hour)
			if aws.ToString(out.KeyId) != e.keyARN(id) || out.KeyState != types.KeyStatePendingDeletion ||
				aws.ToInt32(out.PendingWindowInDays) != c.want || !sameInstant(wantDate, out.DeletionDate) {
				t.Errorf("ScheduleKeyDeletion = KeyId %s state %s window %d date %v; want %s PendingDeletion %d %v",
					aws.ToString(out.KeyId), out.KeyState, aws.ToInt32(out.PendingWindowInDays), out.DeletionDate, e.keyARN(id), c.want, wantDate)
			}
			m := e.describe(t, id)
			if m.KeyState != types.KeyStatePendingDeletion || m.Enabled || !sameInstant(wantDate, m.DeletionDate) {
				t.Errorf("DescribeKey: state %s enabled %v deletion date %v", m.KeyState, m.Enabled, m.DeletionDate)
			}
			// Scheduling again is refused.
			_, err = e.client.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id)})
			expectAPIError(t, err, "KMSInvalidStateException", e.keyARN(id)+" is pending deletion.")
		})
	}
	t.Run("disabled key", func(t *testing.T) {
		id := e.newKey(t)
		e.disable(t, id)
		e.scheduleDeletion(t, id, 7)
		if m := e.describe(t, id); m.KeyState != types.KeyStatePendingDeletion {
			t.Errorf("state %s", m.KeyState)
		}
	})
	id := e.newKey(t)
	for _, c := range []struct {
		days int32
		msg  string
	}{
		{6, "PendingWindowInDays must be between 7 and 30"},
		{31, "PendingWindowInDays must be between 7 and 30"},
		{1, "PendingWindowInDays must be between 7 and 30"},
		{365, "PendingWindowInDays must be between 7 and 30"},
		{0, "1 validation error detected: Value '0' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		{366, "1 validation error detected: Value '366' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value less than or equal to 365"},
	} {
		_, err := e.client.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(c.days)})
		expectAPIError(t, err, "ValidationException", c.msg)
	}
	if m := e.describe(t, id); m.KeyState != types.KeyStateEnabled {
		t.Errorf("a refused ScheduleKeyDeletion changed the key to %s", m.KeyState)
	}
	_, err := e.client.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String("alias/x")})
	expectAPIError(t, err, "NotFoundException", "Invalid keyId 'alias/x'")
}

func TestE2ECancelKeyDeletion(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newKey(t)
	arn := e.keyARN(id)

	_, err := e.client.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(id)})
	expectAPIError(t, err, "KMSInvalidStateException", arn+" is not pending deletion.")

	e.scheduleDeletion(t, id, 10)
	e.clock.Advance(9 * 24 * time.Hour)
	out, err := e.client.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.KeyId) != arn {
		t.Errorf("CancelKeyDeletion KeyId = %s, want the ARN", aws.ToString(out.KeyId))
	}
	m := e.describe(t, id)
	if m.KeyState != types.KeyStateDisabled || m.Enabled || m.DeletionDate != nil {
		t.Errorf("after cancel: state %s enabled %v deletion date %v; want Disabled, no date", m.KeyState, m.Enabled, m.DeletionDate)
	}
	_, err = e.client.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(id)})
	expectAPIError(t, err, "KMSInvalidStateException", arn+" is not pending deletion.")

	// The sweeper leaves a cancelled key alone even after its old date.
	e.clock.Advance(30 * 24 * time.Hour)
	if n, err := e.svc.DeleteExpiredKeys(ctx); err != nil || n != 0 {
		t.Errorf("DeleteExpiredKeys = %d, %v; want 0", n, err)
	}
	if _, err := e.client.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	e.decrypt(t, e.encrypt(t, id, []byte("alive"), nil).CiphertextBlob, nil)

	_, err = e.client.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String("alias/x")})
	expectAPIError(t, err, "NotFoundException", "Invalid keyId 'alias/x'")
}

func TestE2EDeletionSweeper(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	doomed := e.newKey(t)
	kept := e.newKey(t)
	cancelled := e.newKey(t)
	e.createAlias(t, "alias/doomed-1", doomed)
	e.createAlias(t, "alias/doomed-2", doomed)
	e.createAlias(t, "alias/kept", kept)
	blob := e.encrypt(t, doomed, []byte("secret"), nil).CiphertextBlob
	// Warm the cache through the alias as well as the id.
	e.describe(t, "alias/doomed-1")

	out := e.scheduleDeletion(t, doomed, 7)
	e.scheduleDeletion(t, cancelled, 7)
	if _, err := e.client.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(cancelled)}); err != nil {
		t.Fatal(err)
	}

	// One millisecond before the date the key still exists.
	e.clock.Advance(out.DeletionDate.Sub(e.clock.Now()) - time.Millisecond)
	if n, err := e.svc.DeleteExpiredKeys(ctx); err != nil || n != 0 {
		t.Fatalf("DeleteExpiredKeys before the date = %d, %v", n, err)
	}
	if m := e.describe(t, doomed); m.KeyState != types.KeyStatePendingDeletion {
		t.Fatalf("state %s", m.KeyState)
	}

	// At the date, before the sweeper runs, the key is already gone, and
	// its aliases with it, as after the sweep.
	e.clock.Advance(time.Millisecond)
	notExist := "Key '" + e.keyARN(doomed) + "' does not exist"
	_, err := e.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(doomed)})
	expectAPIError(t, err, "NotFoundException", notExist)
	_, err = e.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/doomed-1")})
	expectAPIError(t, err, "NotFoundException", "Alias "+e.aliasARN("alias/doomed-1")+" is not found.")
	_, err = e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(e.aliasARN("alias/doomed-2")), Plaintext: []byte("x")})
	expectAPIError(t, err, "NotFoundException", "Alias "+e.aliasARN("alias/doomed-2")+" is not found.")
	_, err = e.client.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(doomed)})
	expectAPIError(t, err, "NotFoundException", notExist)
	_, err = e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(doomed), Plaintext: []byte("x")})
	expectAPIError(t, err, "NotFoundException", notExist)
	_, err = e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob})
	expectAPIError(t, err, "AccessDeniedException", ciphertextKeyMsg)

	n, err := e.svc.DeleteExpiredKeys(ctx)
	if err != nil || n != 1 {
		t.Fatalf("DeleteExpiredKeys = %d, %v; want 1", n, err)
	}
	_, err = e.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(doomed)})
	expectAPIError(t, err, "NotFoundException", notExist)
	expectTyped[*types.NotFoundException](t, err)
	_, err = e.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/doomed-1")})
	expectAPIError(t, err, "NotFoundException", "Alias "+e.aliasARN("alias/doomed-1")+" is not found.")
	_, err = e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob})
	expectAPIError(t, err, "AccessDeniedException", ciphertextKeyMsg)

	var names []string
	for _, a := range e.listAllAliases(t, nil) {
		names = append(names, aws.ToString(a.AliasName))
	}
	if !slices.Equal(names, []string{"alias/kept"}) {
		t.Errorf("aliases after deletion: %v, want [alias/kept]", names)
	}
	var keyIDs []string
	for _, k := range e.listAllKeys(t) {
		keyIDs = append(keyIDs, aws.ToString(k.KeyId))
	}
	if slices.Contains(keyIDs, doomed) || !slices.Contains(keyIDs, kept) || !slices.Contains(keyIDs, cancelled) || len(keyIDs) != 2 {
		t.Errorf("ListKeys after deletion: %v", keyIDs)
	}
	// The alias names are free again; the other keys are untouched.
	e.createAlias(t, "alias/doomed-1", kept)
	if m := e.describe(t, "alias/doomed-1"); aws.ToString(m.KeyId) != kept {
		t.Errorf("recreated alias names %s", aws.ToString(m.KeyId))
	}
	if m := e.describe(t, cancelled); m.KeyState != types.KeyStateDisabled {
		t.Errorf("cancelled key is %s", m.KeyState)
	}
	if n, err := e.svc.DeleteExpiredKeys(ctx); err != nil || n != 0 {
		t.Errorf("second sweep = %d, %v; want 0", n, err)
	}
}

// A key past its deletion date is gone for every operation, lists included,
// even before the sweeper has run (service/resolve.go: "A key whose deletion
// date has passed is already gone, even before the sweeper removes it").
func TestE2EExpiredKeyHiddenFromListsBeforeSweep(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	doomed := e.newKey(t)
	kept := e.newKey(t)
	e.createAlias(t, "alias/doomed", doomed)
	e.createAlias(t, "alias/kept", kept)
	e.scheduleDeletion(t, doomed, 7)
	e.clock.Advance(7 * 24 * time.Hour)

	_, err := e.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(doomed)})
	expectAPIErrorCode(t, err, "NotFoundException")
	for _, k := range e.listAllKeys(t) {
		if aws.ToString(k.KeyId) == doomed {
			t.Errorf("ListKeys lists %s, which DescribeKey says does not exist", doomed)
		}
	}
	for _, a := range e.listAllAliases(t, nil) {
		if aws.ToString(a.TargetKeyId) == doomed {
			t.Errorf("ListAliases lists %s -> %s, a key that DescribeKey says does not exist", aws.ToString(a.AliasName), doomed)
		}
	}
}

// The aliases of a key past its deletion date are gone with it, before the
// sweeper runs: the name may be given to another key at once, and the old
// alias can be neither moved nor deleted. A millisecond before the date
// the alias still exists. The sweeper then leaves the new alias alone.
func TestE2EAliasesOfKeyPastDeletionDate(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	doomed := e.newKey(t)
	other := e.newKey(t)
	for _, name := range []string{"alias/reused", "alias/moved", "alias/deleted"} {
		e.createAlias(t, name, doomed)
	}
	out := e.scheduleDeletion(t, doomed, 7)

	e.clock.Set(out.DeletionDate.Add(-time.Millisecond))
	_, err := e.client.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/reused"), TargetKeyId: aws.String(other)})
	expectAPIError(t, err, "AlreadyExistsException", "An alias with the name "+e.aliasARN("alias/reused")+" already exists")

	e.clock.Set(*out.DeletionDate)
	e.createAlias(t, "alias/reused", other)
	if m := e.describe(t, "alias/reused"); aws.ToString(m.KeyId) != other {
		t.Errorf("alias/reused names %s, want %s", aws.ToString(m.KeyId), other)
	}
	_, err = e.client.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String("alias/moved"), TargetKeyId: aws.String(other)})
	expectAPIError(t, err, "NotFoundException", "Alias "+e.aliasARN("alias/moved")+" is not found.")
	_, err = e.client.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String("alias/deleted")})
	expectAPIError(t, err, "NotFoundException", "Alias "+e.aliasARN("alias/deleted")+" is not found.")

	if n, err := e.svc.DeleteExpiredKeys(ctx); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredKeys = %d, %v; want 1", n, err)
	}
	var names []string
	for _, a := range e.listAllAliases(t, nil) {
		names = append(names, aws.ToString(a.AliasName)+"->"+aws.ToString(a.TargetKeyId))
	}
	if want := []string{"alias/reused->" + other}; !slices.Equal(names, want) {
		t.Errorf("aliases after the sweep: %v, want %v", names, want)
	}
	if m := e.describe(t, "alias/reused"); aws.ToString(m.KeyId) != other {
		t.Errorf("after the sweep alias/reused names %s, want %s", aws.ToString(m.KeyId), other)
	}
}

func TestE2EUpdateKeyDescription(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newKey(t)
	for _, d := range []string{"first", "", strings.Repeat("x", 8192), "ünïcödé"} {
		if _, err := e.client.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: aws.String(id), Description: aws.String(d)}); err != nil {
			t.Fatalf("UpdateKeyDescription(%.20q): %v", d, err)
		}
		if got := aws.ToString(e.describe(t, id).Description); got != d {
			t.Errorf("Description = %.20q, want %.20q", got, d)
		}
	}
	// Disabled keys can be described; ARNs work.
	e.disable(t, id)
	if _, err := e.client.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: aws.String(e.keyARN(id)), Description: aws.String("off")}); err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(e.describe(t, id).Description); got != "off" {
		t.Errorf("Description = %q", got)
	}
	_, err := e.client.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: aws.String(id), Description: aws.String(strings.Repeat("x", 8193))})
	expectAPIErrorPrefix(t, err, "ValidationException", "1 validation error detected: Value '")
	_, err = e.client.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: aws.String("alias/x"), Description: aws.String("d")})
	expectAPIError(t, err, "NotFoundException", "Invalid keyId 'alias/x'")

	// The SDK insists on Description; on the wire its absence is refused.
	r := e.rawCall(t, "UpdateKeyDescription", `{"KeyId":"`+id+`"}`)
	expectRawError(t, r, 400, "ValidationException", "1 validation error detected: Value null at 'description' failed to satisfy constraint: Member must not be null")

	e.scheduleDeletion(t, id, 7)
	_, err = e.client.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: aws.String(id), Description: aws.String("late")})
	expectAPIError(t, err, "KMSInvalidStateException", e.keyARN(id)+" is pending deletion.")
}

// ---- helpers for this file and the tag tests ------------------------------

func nTags(n int, prefix string) []types.Tag {
	tags := make([]types.Tag, n)
	for i := range tags {
		tags[i] = types.Tag{TagKey: aws.String(prefix + strconv.Itoa(i)), TagValue: aws.String("v" + strconv.Itoa(i))}
	}
	return tags
}

func tagPairs(tags []types.Tag) string {
	var parts []string
	for _, t := range tags {
		parts = append(parts, aws.ToString(t.TagKey)+"="+aws.ToString(t.TagValue))
	}
	return strings.Join(parts, ",")
}

// A key ARN names a partition as well as a region and account; this server's
// keys are all in partition "aws" (their Arn says so), so an ARN of another
// partition does not name them (service/resolve.go only checks that the
// partition is not empty).
func TestE2EKeyARNOtherPartition(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	id := e.newKey(t)
	for _, arn := range []string{
		"arn:aws-cn:kms:" + e2eRegion + ":" + e2eAccount + ":key/" + id,
		"arn:aws-us-gov:kms:" + e2eRegion + ":" + e2eAccount + ":key/" + id,
		"arn:bogus:kms:" + e2eRegion + ":" + e2eAccount + ":key/" + id,
	} {
		_, err := e.client.DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String(arn)})
		if err == nil {
			t.Errorf("DescribeKey(%s) found the key %s", arn, e.keyARN(id))
			continue
		}
		expectAPIErrorCode(t, err, "NotFoundException")
	}
}

// Accounts share a server but nothing else: keys, aliases and ciphertexts
// of one are invisible to the other.
func TestE2EAccountIsolation(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	const other = "444455556666"
	c2 := e.clientAs(t, other)
	id := e.newKey(t)
	e.createAlias(t, "alias/shared-name", id)
	blob := e.encrypt(t, id, []byte("account one"), nil).CiphertextBlob

	_, err := c2.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
	expectAPIError(t, err, "NotFoundException", "Key 'arn:aws:kms:"+e2eRegion+":"+other+":key/"+id+"' does not exist")
	_, err = c2.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/shared-name")})
	expectAPIError(t, err, "NotFoundException", "Alias arn:aws:kms:"+e2eRegion+":"+other+":alias/shared-name is not found.")
	_, err = c2.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x")})
	expectAPIErrorCode(t, err, "NotFoundException")
	_, err = c2.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(id)})
	expectAPIErrorCode(t, err, "NotFoundException")
	_, err = c2.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id)})
	expectAPIErrorCode(t, err, "NotFoundException")
	_, err = c2.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(id), Tags: nTags(1, "x")})
	expectAPIErrorCode(t, err, "NotFoundException")
	_, err = c2.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob})
	if err == nil {
		t.Fatal("account 2 decrypted account 1's ciphertext")
	}
	_, err = c2.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/x"), TargetKeyId: aws.String(id)})
	expectAPIErrorCode(t, err, "NotFoundException")
	keys2, err := c2.ListKeys(ctx, &kms.ListKeysInput{})
	if err != nil {
		t.Fatal(err)
	}
	aliases2, err := c2.ListAliases(ctx, &kms.ListAliasesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys2.Keys) != 0 || len(aliases2.Aliases) != 0 {
		t.Errorf("account 2 lists %d keys and %d aliases of account 1", len(keys2.Keys), len(aliases2.Aliases))
	}

	// The same alias name can exist in both accounts.
	out, err := c2.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	id2 := aws.ToString(out.KeyMetadata.KeyId)
	if aws.ToString(out.KeyMetadata.AWSAccountId) != other || aws.ToString(out.KeyMetadata.Arn) != "arn:aws:kms:"+e2eRegion+":"+other+":key/"+id2 {
		t.Errorf("account 2's key: %s %s", aws.ToString(out.KeyMetadata.AWSAccountId), aws.ToString(out.KeyMetadata.Arn))
	}
	if _, err := c2.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/shared-name"), TargetKeyId: aws.String(id2)}); err != nil {
		t.Fatal(err)
	}
	d, err := c2.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/shared-name")})
	if err != nil || aws.ToString(d.KeyMetadata.KeyId) != id2 {
		t.Errorf("account 2's alias: %v", err)
	}
	if got := aws.ToString(e.describe(t, "alias/shared-name").KeyId); got != id {
		t.Errorf("account 1's alias now names %s", got)
	}
	if ks := e.listAllKeys(t); len(ks) != 1 || aws.ToString(ks[0].KeyId) != id {
		t.Errorf("account 1 lists %v", ks)
	}
}

// A key ARN names the key's account. Another account's root has no right to
// a key whose policy is the default one (reference §6.1: only the owning
// account's root), and the management operations are not cross-account at
// all (reference §2.13), so naming a foreign key by its ARN must fail — and
// must not change the key. (NotFoundException or AccessDeniedException;
// AWS answers AccessDeniedException for a caller the key policy does not
// allow.)
func TestE2ECrossAccountKeyARN(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	const other = "444455556666"
	intruder := e.clientAs(t, other)
	m := e.createKey(t, &kms.CreateKeyInput{Description: aws.String("victim")})
	arn := aws.ToString(m.Arn)
	blob := e.encrypt(t, arn, []byte("account one"), nil).CiphertextBlob
	own, err := intruder.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := intruder.Encrypt(ctx, &kms.EncryptInput{KeyId: own.KeyMetadata.KeyId, Plaintext: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	ownBlob := enc.CiphertextBlob

	// Read-only and cryptographic calls first, destructive ones last.
	calls := []struct {
		name string
		call func() error
	}{
		{"DescribeKey", func() error {
			_, err := intruder.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(arn)})
			return err
		}},
		{"Encrypt", func() error {
			_, err := intruder.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("x")})
			return err
		}},
		{"Decrypt with KeyId", func() error {
			_, err := intruder.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, KeyId: aws.String(arn)})
			return err
		}},
		{"GenerateDataKey", func() error {
			_, err := intruder.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(arn), KeySpec: types.DataKeySpecAes256})
			return err
		}},
		{"ReEncrypt to", func() error {
			_, err := intruder.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: ownBlob, DestinationKeyId: aws.String(arn)})
			return err
		}},
		{"ListResourceTags", func() error {
			_, err := intruder.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(arn)})
			return err
		}},
		{"ListAliases", func() error {
			_, err := intruder.ListAliases(ctx, &kms.ListAliasesInput{KeyId: aws.String(arn)})
			return err
		}},
		{"TagResource", func() error {
			_, err := intruder.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(arn), Tags: nTags(1, "owned-by-intruder")})
			return err
		}},
		{"UpdateKeyDescription", func() error {
			_, err := intruder.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: aws.String(arn), Description: aws.String("hijacked")})
			return err
		}},
		{"CreateAlias", func() error {
			_, err := intruder.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/stolen"), TargetKeyId: aws.String(arn)})
			return err
		}},
		{"DisableKey", func() error {
			_, err := intruder.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(arn)})
			return err
		}},
		{"ScheduleKeyDeletion", func() error {
			_, err := intruder.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(arn), PendingWindowInDays: aws.Int32(7)})
			return err
		}},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			if err == nil {
				t.Fatalf("account %s could %s account %s's key %s", other, c.name, e2eAccount, arn)
			}
			var ae smithy.APIError
			if !errors.As(err, &ae) || (ae.ErrorCode() != "NotFoundException" && ae.ErrorCode() != "AccessDeniedException") {
				t.Errorf("got %v, want NotFoundException or AccessDeniedException", err)
			}
			if s := httpStatus(err); s != 400 {
				t.Errorf("status %d, want 400", s)
			}
		})
	}
	after := e.describe(t, arn)
	if after.KeyState != types.KeyStateEnabled || aws.ToString(after.Description) != "victim" {
		t.Errorf("account 1's key after account 2's calls: state %s, description %q", after.KeyState, aws.ToString(after.Description))
	}
	tags, err := e.client.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if len(tags.Tags) != 0 {
		t.Errorf("account 1's key got tags %s", tagPairs(tags.Tags))
	}
	if n := len(e.listAllAliases(t, nil)); n != 0 {
		t.Errorf("account 1 has %d aliases", n)
	}
}

package service_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/kmsapi"
	"github.com/openkms/kms/internal/store"

	"github.com/openkms/kms/internal/service"
)

func (f *fixture) aliases(keyID *string) []kmsapi.AliasListEntry {
	f.t.Helper()
	out, err := f.svc.ListAliases(f.ctx, rootA, &kmsapi.ListAliasesInput{KeyID: keyID})
	if err != nil {
		f.t.Fatal(err)
	}
	return out.Aliases
}

func TestAliasLifecycle(t *testing.T) {
	f := newFixture(t)
	k1 := f.createKey(kmsapi.CreateKeyInput{})
	k2 := f.createKey(kmsapi.CreateKeyInput{})
	created := f.now
	f.must2(f.svc.CreateAlias(f.ctx, rootA, &kmsapi.AliasInput{AliasName: "alias/app", TargetKeyID: keyARN(acctA, k1)}))
	want := []kmsapi.AliasListEntry{{AliasName: "alias/app", AliasArn: "arn:aws:kms:us-east-1:111122223333:alias/app", TargetKeyID: k1,
		CreationDate: kmsapi.Time(created), LastUpdatedDate: kmsapi.Time(created)}}
	if got := f.aliases(nil); !reflect.DeepEqual(got, want) {
		t.Fatalf("ListAliases = %+v\nwant %+v", got, want)
	}
	f.advance(day)
	f.must2(f.svc.UpdateAlias(f.ctx, rootA, &kmsapi.AliasInput{AliasName: "alias/app", TargetKeyID: k2}))
	want[0].TargetKeyID, want[0].LastUpdatedDate = k2, kmsapi.Time(f.now)
	if got := f.aliases(nil); !reflect.DeepEqual(got, want) {
		t.Fatalf("after UpdateAlias: %+v\nwant %+v", got, want)
	}
	if got := f.aliases(strp(k1)); len(got) != 0 {
		t.Fatalf("k1 still has aliases %+v", got)
	}
	if got := f.aliases(strp(k2)); len(got) != 1 {
		t.Fatalf("k2's aliases %+v", got)
	}
	f.must2(f.svc.DeleteAlias(f.ctx, rootA, &kmsapi.DeleteAliasInput{AliasName: "alias/app"}))
	if got := f.aliases(nil); len(got) != 0 {
		t.Fatalf("after DeleteAlias: %+v", got)
	}
	_, err := f.svc.DeleteAlias(f.ctx, rootA, &kmsapi.DeleteAliasInput{AliasName: "alias/app"})
	wantErr(t, err, fault.NotFound, "Alias arn:aws:kms:us-east-1:111122223333:alias/app is not found.")
	_, err = f.svc.UpdateAlias(f.ctx, rootA, &kmsapi.AliasInput{AliasName: "alias/app", TargetKeyID: k1})
	wantErr(t, err, fault.NotFound, "Alias arn:aws:kms:us-east-1:111122223333:alias/app is not found.")
	// Each account has its own alias names.
	kb := f.createKeyAs(accountRoot(acctB), kmsapi.CreateKeyInput{})
	f.must2(f.svc.CreateAlias(f.ctx, rootA, &kmsapi.AliasInput{AliasName: "alias/same", TargetKeyID: k1}))
	f.must2(f.svc.CreateAlias(f.ctx, accountRoot(acctB), &kmsapi.AliasInput{AliasName: "alias/same", TargetKeyID: kb}))
	out, err := f.svc.Encrypt(f.ctx, accountRoot(acctB), &kmsapi.EncryptInput{KeyID: "alias/same", Plaintext: []byte("p")})
	if err != nil || out.KeyID != keyARN(acctB, kb) {
		t.Fatalf("B's alias/same: %+v, %v", out, err)
	}
	// A key's aliases go when it is deleted.
	f.must2(f.svc.ScheduleKeyDeletion(f.ctx, rootA, &kmsapi.ScheduleKeyDeletionInput{KeyID: k1, PendingWindowInDays: int32p(7)}))
	f.advance(7 * day)
	if got := f.aliases(nil); len(got) != 0 {
		t.Fatalf("an alias of a key past its deletion date is listed: %+v", got)
	}
	if n, err := f.svc.DeleteExpiredKeys(f.ctx); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredKeys = %d, %v", n, err)
	}
	f.must2(f.svc.CreateAlias(f.ctx, rootA, &kmsapi.AliasInput{AliasName: "alias/same", TargetKeyID: k2}))
}

func TestAliasRefusals(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{})
	rsaKey := f.createKey(kmsapi.CreateKeyInput{KeySpec: "RSA_2048", KeyUsage: "SIGN_VERIFY"})
	hmac256 := f.createKey(kmsapi.CreateKeyInput{KeySpec: "HMAC_256", KeyUsage: "GENERATE_VERIFY_MAC"})
	hmac512 := f.createKey(kmsapi.CreateKeyInput{KeySpec: "HMAC_512", KeyUsage: "GENERATE_VERIFY_MAC"})
	ecc := f.createKey(kmsapi.CreateKeyInput{KeySpec: "ECC_NIST_P256", KeyUsage: "SIGN_VERIFY"})
	rsaEncrypt := f.createKey(kmsapi.CreateKeyInput{KeySpec: "RSA_2048", KeyUsage: "ENCRYPT_DECRYPT"})
	doomed := f.keyInState("PendingDeletion")
	f.must2(f.svc.CreateAlias(f.ctx, rootA, &kmsapi.AliasInput{AliasName: "alias/taken", TargetKeyID: id}))
	f.must2(f.svc.CreateAlias(f.ctx, rootA, &kmsapi.AliasInput{AliasName: "alias/signer", TargetKeyID: rsaKey}))
	f.must2(f.svc.CreateAlias(f.ctx, rootA, &kmsapi.AliasInput{AliasName: "alias/mac", TargetKeyID: hmac256}))
	user := iamUser(t, acctA, "u")
	keyOnly := iamUser(t, acctA, "keyonly", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:CreateAlias","Resource":"arn:aws:kms:us-east-1:111122223333:alias/*"}]}`)
	for _, tc := range []struct {
		name   string
		op     string
		caller service.Caller
		in     kmsapi.AliasInput
		code   fault.Code
		msg    string
	}{
		{"no prefix", "CreateAlias", rootA, kmsapi.AliasInput{AliasName: "app", TargetKeyID: id}, fault.Validation,
			`Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html`},
		{"bad character", "CreateAlias", rootA, kmsapi.AliasInput{AliasName: "alias/a b", TargetKeyID: id}, fault.Validation,
			"1 validation error detected: Value 'alias/a b' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"},
		{"colon", "CreateAlias", rootA, kmsapi.AliasInput{AliasName: "alias/my:alias", TargetKeyID: id}, fault.Validation, "alias/my:alias contains invalid characters for an alias"},
		{"prefix only", "CreateAlias", rootA, kmsapi.AliasInput{AliasName: "alias/", TargetKeyID: id}, fault.Validation, "alias/ contains invalid characters for an alias"},
		{"reserved", "CreateAlias", rootA, kmsapi.AliasInput{AliasName: "alias/aws/s3", TargetKeyID: id}, fault.NotAuthorized, ""},
		{"no name", "CreateAlias", rootA, kmsapi.AliasInput{TargetKeyID: id}, fault.Validation,
			"1 validation error detected: Value null at 'aliasName' failed to satisfy constraint: Member must not be null"},
		{"no target", "CreateAlias", rootA, kmsapi.AliasInput{AliasName: "alias/x"}, fault.Validation,
			"1 validation error detected: Value null at 'targetKeyId' failed to satisfy constraint: Member must not be null"},
		{"alias ARN as target", "CreateAlias", rootA, kmsapi.AliasInput{AliasName: "alias/x", TargetKeyID: "arn:aws:kms:us-east-1:111122223333:alias/taken"}, fault.Validation,
			"Aliases must refer to keys. Not aliases"},
		{"taken", "CreateAlias", rootA, kmsapi.AliasInput{AliasName: "alias/taken", TargetKeyID: rsaKey}, fault.AlreadyExists,
			"An alias with the name arn:aws:kms:us-east-1:111122223333:alias/taken already exists"},
		{"target pending deletion", "CreateAlias", rootA, kmsapi.AliasInput{AliasName: "alias/x", TargetKeyID: doomed}, fault.InvalidState, keyARN(acctA, doomed) + " is pending deletion."},
		{"another account's key", "CreateAlias", accountRoot(acctB), kmsapi.AliasInput{AliasName: "alias/x", TargetKeyID: keyARN(acctA, id)}, fault.NotFound,
			"Key '" + keyARN(acctA, id) + "' does not exist"},
		{"user without permission", "CreateAlias", user, kmsapi.AliasInput{AliasName: "alias/x", TargetKeyID: id}, fault.AccessDenied,
			deniedMsg(user, "kms:CreateAlias", "arn:aws:kms:us-east-1:111122223333:alias/x", noIdentityPolicy("kms:CreateAlias"))},
		{"user without permission, target pending deletion", "CreateAlias", user, kmsapi.AliasInput{AliasName: "alias/x", TargetKeyID: doomed}, fault.AccessDenied,
			deniedMsg(user, "kms:CreateAlias", "arn:aws:kms:us-east-1:111122223333:alias/x", noIdentityPolicy("kms:CreateAlias"))},
		{"user without permission, to a key pending deletion", "UpdateAlias", user, kmsapi.AliasInput{AliasName: "alias/taken", TargetKeyID: doomed}, fault.AccessDenied,
			deniedMsg(user, "kms:UpdateAlias", "arn:aws:kms:us-east-1:111122223333:alias/taken", noIdentityPolicy("kms:UpdateAlias"))},
		{"allowed on aliases, not on the key", "CreateAlias", keyOnly, kmsapi.AliasInput{AliasName: "alias/x", TargetKeyID: id}, fault.AccessDenied,
			deniedMsg(keyOnly, "kms:CreateAlias", keyARN(acctA, id), noIdentityPolicy("kms:CreateAlias"))},
		{"symmetric to asymmetric", "UpdateAlias", rootA, kmsapi.AliasInput{AliasName: "alias/taken", TargetKeyID: rsaKey}, fault.Validation,
			"Alias alias/taken cannot be changed from a CMK with key usage ENCRYPT_DECRYPT to a CMK with key usage SIGN_VERIFY. The key usage of the current CMK and the new CMK must be the same."},
		{"symmetric to asymmetric of the same usage", "UpdateAlias", rootA, kmsapi.AliasInput{AliasName: "alias/taken", TargetKeyID: rsaEncrypt}, fault.Validation,
			"Alias alias/taken cannot be changed from a CMK with key spec SYMMETRIC_DEFAULT to a CMK with key spec RSA_2048. The key type (symmetric or asymmetric) of the current CMK and the new CMK must be the same."},
		{"HMAC to symmetric", "UpdateAlias", rootA, kmsapi.AliasInput{AliasName: "alias/mac", TargetKeyID: id}, fault.Validation,
			"Alias alias/mac cannot be changed from a CMK with key usage GENERATE_VERIFY_MAC to a CMK with key usage ENCRYPT_DECRYPT. The key usage of the current CMK and the new CMK must be the same."},
		{"to a key pending deletion", "UpdateAlias", rootA, kmsapi.AliasInput{AliasName: "alias/taken", TargetKeyID: doomed}, fault.InvalidState, keyARN(acctA, doomed) + " is pending deletion."},
		{"reserved", "DeleteAlias", rootA, kmsapi.AliasInput{AliasName: "alias/aws/s3"}, fault.NotAuthorized, ""},
		{"user without permission", "DeleteAlias", user, kmsapi.AliasInput{AliasName: "alias/taken"}, fault.AccessDenied,
			deniedMsg(user, "kms:DeleteAlias", "arn:aws:kms:us-east-1:111122223333:alias/taken", noIdentityPolicy("kms:DeleteAlias"))},
	} {
		t.Run(tc.op+"/"+tc.name, func(t *testing.T) {
			before := f.snapshot()
			var err error
			switch tc.op {
			case "CreateAlias":
				_, err = f.svc.CreateAlias(f.ctx, tc.caller, &tc.in)
			case "UpdateAlias":
				_, err = f.svc.UpdateAlias(f.ctx, tc.caller, &tc.in)
			case "DeleteAlias":
				_, err = f.svc.DeleteAlias(f.ctx, tc.caller, &kmsapi.DeleteAliasInput{AliasName: tc.in.AliasName})
			}
			wantErr(t, err, tc.code, tc.msg)
			if !sameRecords(before, f.snapshot()) {
				t.Fatalf("a refused %s changed the store", tc.op)
			}
		})
	}
	// Asymmetric keys of the same usage, and HMAC keys of different specs,
	// may take each other's aliases.
	f.must2(f.svc.UpdateAlias(f.ctx, rootA, &kmsapi.AliasInput{AliasName: "alias/signer", TargetKeyID: ecc}))
	f.must2(f.svc.UpdateAlias(f.ctx, rootA, &kmsapi.AliasInput{AliasName: "alias/mac", TargetKeyID: hmac512}))
	// An alias of a key pending deletion can be moved away from it.
	f.must2(f.svc.CreateAlias(f.ctx, rootA, &kmsapi.AliasInput{AliasName: "alias/leaving", TargetKeyID: id}))
	f.must2(f.svc.ScheduleKeyDeletion(f.ctx, rootA, &kmsapi.ScheduleKeyDeletionInput{KeyID: id}))
	f.must2(f.svc.UpdateAlias(f.ctx, rootA, &kmsapi.AliasInput{AliasName: "alias/leaving", TargetKeyID: f.createKey(kmsapi.CreateKeyInput{})}))
}

// Moving an alias needs kms:UpdateAlias on both the old and the new key.
func TestUpdateAliasAuthorizesBothKeys(t *testing.T) {
	f := newFixture(t)
	mover := iamUser(t, acctA, "mover", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:UpdateAlias","Resource":"arn:aws:kms:us-east-1:111122223333:alias/*"}]}`)
	open := func() string {
		return f.createKey(kmsapi.CreateKeyInput{Policy: strp(`{"Version":"2012-10-17","Statement":[
		  {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
		  {"Effect":"Allow","Principal":{"AWS":"` + mover.ARN + `"},"Action":"kms:UpdateAlias","Resource":"*"}]}`)})
	}
	closed := f.createKey(kmsapi.CreateKeyInput{})
	a, b := open(), open()
	f.must2(f.svc.CreateAlias(f.ctx, rootA, &kmsapi.AliasInput{AliasName: "alias/from-closed", TargetKeyID: closed}))
	f.must2(f.svc.CreateAlias(f.ctx, rootA, &kmsapi.AliasInput{AliasName: "alias/from-open", TargetKeyID: a}))
	_, err := f.svc.UpdateAlias(f.ctx, mover, &kmsapi.AliasInput{AliasName: "alias/from-closed", TargetKeyID: b})
	wantErr(t, err, fault.AccessDenied, deniedMsg(mover, "kms:UpdateAlias", keyARN(acctA, closed), noIdentityPolicy("kms:UpdateAlias")))
	_, err = f.svc.UpdateAlias(f.ctx, mover, &kmsapi.AliasInput{AliasName: "alias/from-open", TargetKeyID: closed})
	wantErr(t, err, fault.AccessDenied, deniedMsg(mover, "kms:UpdateAlias", keyARN(acctA, closed), noIdentityPolicy("kms:UpdateAlias")))
	f.must2(f.svc.UpdateAlias(f.ctx, mover, &kmsapi.AliasInput{AliasName: "alias/from-open", TargetKeyID: b}))
}

func TestAliasLimitsAndPages(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{})
	for i := range 50 {
		f.must2(f.svc.CreateAlias(f.ctx, rootA, &kmsapi.AliasInput{AliasName: fmt.Sprintf("alias/a%02d", i), TargetKeyID: id}))
	}
	_, err := f.svc.CreateAlias(f.ctx, rootA, &kmsapi.AliasInput{AliasName: "alias/one-too-many", TargetKeyID: id})
	wantErr(t, err, fault.LimitExceeded, "The key "+keyARN(acctA, id)+" already has the maximum of 50 aliases.")
	other := f.createKey(kmsapi.CreateKeyInput{})
	f.must2(f.svc.CreateAlias(f.ctx, rootA, &kmsapi.AliasInput{AliasName: "alias/b", TargetKeyID: other}))
	_, err = f.svc.UpdateAlias(f.ctx, rootA, &kmsapi.AliasInput{AliasName: "alias/b", TargetKeyID: id})
	wantErr(t, err, fault.LimitExceeded, "The key "+keyARN(acctA, id)+" already has the maximum of 50 aliases.")
	var names []string
	var marker *string
	pages := 0
	for {
		out, err := f.svc.ListAliases(f.ctx, rootA, &kmsapi.ListAliasesInput{Limit: int32p(20), Marker: marker})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, a := range out.Aliases {
			names = append(names, a.AliasName)
		}
		if !out.Truncated {
			break
		}
		marker = strp(out.NextMarker)
	}
	if len(names) != 51 || pages != 3 || names[0] != "alias/a00" || names[50] != "alias/b" {
		t.Fatalf("%d aliases in %d pages: %v", len(names), pages, names)
	}
	out, err := f.svc.ListAliases(f.ctx, rootA, &kmsapi.ListAliasesInput{})
	if err != nil || len(out.Aliases) != 50 || !out.Truncated {
		t.Fatalf("default page: %d aliases, truncated %v, %v", len(out.Aliases), out.Truncated, err)
	}
	_, err = f.svc.ListAliases(f.ctx, rootA, &kmsapi.ListAliasesInput{Marker: strp("!!")})
	wantErr(t, err, fault.InvalidMarker, "The marker is not valid. Pass the NextMarker of a previous response unchanged.")
	_, err = f.svc.ListAliases(f.ctx, rootA, &kmsapi.ListAliasesInput{KeyID: strp("alias/a00")})
	wantErr(t, err, fault.NotFound, "Invalid keyId 'alias/a00'")
	user := iamUser(t, acctA, "u")
	_, err = f.svc.ListAliases(f.ctx, user, &kmsapi.ListAliasesInput{})
	wantErr(t, err, fault.AccessDenied, deniedMsg(user, "kms:ListAliases", "*", noIdentityPolicy("kms:ListAliases")))
}

func TestTags(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{Tags: []kmsapi.Tag{{TagKey: "a", TagValue: "1"}, {TagKey: "b", TagValue: "2"}}})
	list := func(in kmsapi.ListResourceTagsInput) *kmsapi.ListResourceTagsOutput {
		t.Helper()
		in.KeyID = id
		out, err := f.svc.ListResourceTags(f.ctx, rootA, &in)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	f.must2(f.svc.TagResource(f.ctx, rootA, &kmsapi.TagResourceInput{KeyID: id, Tags: []kmsapi.Tag{{TagKey: "c", TagValue: ""}, {TagKey: "a", TagValue: "one"}}}))
	want := []kmsapi.Tag{{TagKey: "a", TagValue: "one"}, {TagKey: "b", TagValue: "2"}, {TagKey: "c", TagValue: ""}}
	if got := list(kmsapi.ListResourceTagsInput{}); !reflect.DeepEqual(got.Tags, want) || got.Truncated {
		t.Fatalf("tags %+v, want %+v in the order added", got, want)
	}
	f.must2(f.svc.UntagResource(f.ctx, rootA, &kmsapi.UntagResourceInput{KeyID: id, TagKeys: []string{"b", "absent"}}))
	want = []kmsapi.Tag{{TagKey: "a", TagValue: "one"}, {TagKey: "c", TagValue: ""}}
	if got := list(kmsapi.ListResourceTagsInput{}); !reflect.DeepEqual(got.Tags, want) {
		t.Fatalf("after UntagResource %+v, want %+v", got.Tags, want)
	}
	page := list(kmsapi.ListResourceTagsInput{Limit: int32p(1)})
	if len(page.Tags) != 1 || page.Tags[0].TagKey != "a" || !page.Truncated {
		t.Fatalf("first page %+v", page)
	}
	page = list(kmsapi.ListResourceTagsInput{Limit: int32p(1), Marker: strp(page.NextMarker)})
	if len(page.Tags) != 1 || page.Tags[0].TagKey != "c" || page.Truncated || page.NextMarker != "" {
		t.Fatalf("second page %+v", page)
	}
	many := make([]kmsapi.Tag, 49)
	for i := range many {
		many[i] = kmsapi.Tag{TagKey: fmt.Sprintf("k%d", i)}
	}
	for _, tc := range []struct {
		name string
		call func() error
		code fault.Code
		msg  string
	}{
		{"reserved key", func() error {
			_, err := f.svc.TagResource(f.ctx, rootA, &kmsapi.TagResourceInput{KeyID: id, Tags: []kmsapi.Tag{{TagKey: "aws:x"}}})
			return err
		}, fault.Tag, "Tags beginning with aws: are reserved"},
		{"over 50 with the existing ones", func() error {
			_, err := f.svc.TagResource(f.ctx, rootA, &kmsapi.TagResourceInput{KeyID: id, Tags: many})
			return err
		}, fault.Tag, "Too many tags"},
		{"duplicate keys", func() error {
			_, err := f.svc.TagResource(f.ctx, rootA, &kmsapi.TagResourceInput{KeyID: id, Tags: []kmsapi.Tag{{TagKey: "d"}, {TagKey: "d"}}})
			return err
		}, fault.Tag, "Duplicate tag keys"},
		{"no tags", func() error {
			_, err := f.svc.TagResource(f.ctx, rootA, &kmsapi.TagResourceInput{KeyID: id})
			return err
		}, fault.Validation, "1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null"},
		{"value too long", func() error {
			_, err := f.svc.TagResource(f.ctx, rootA, &kmsapi.TagResourceInput{KeyID: id, Tags: []kmsapi.Tag{{TagKey: "k", TagValue: strings.Repeat("v", 257)}}})
			return err
		}, fault.Validation, "1 validation error detected: Value '" + strings.Repeat("v", 257) + "' at 'tags.1.member.tagValue' failed to satisfy constraint: Member must have length less than or equal to 256"},
		{"untag reserved", func() error {
			_, err := f.svc.UntagResource(f.ctx, rootA, &kmsapi.UntagResourceInput{KeyID: id, TagKeys: []string{"a", "AWS:x"}})
			return err
		}, fault.Tag, "Tags beginning with aws: are reserved"},
		{"untag nothing", func() error {
			_, err := f.svc.UntagResource(f.ctx, rootA, &kmsapi.UntagResourceInput{KeyID: id})
			return err
		}, fault.Validation, "1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: Member must not be null"},
		{"bad marker", func() error {
			_, err := f.svc.ListResourceTags(f.ctx, rootA, &kmsapi.ListResourceTagsInput{KeyID: id, Marker: strp("bm9wZQ")})
			return err
		}, fault.InvalidMarker, "The marker is not valid. Pass the NextMarker of a previous response unchanged."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.snapshot()
			wantErr(t, tc.call(), tc.code, tc.msg)
			if !sameRecords(before, f.snapshot()) {
				t.Fatal("a refused call changed the store")
			}
		})
	}
	// Tag-based access: a user allowed to tag only with team=blue.
	tagger := iamUser(t, acctA, "tagger", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:TagResource","kms:UntagResource"],"Resource":"*",
	  "Condition":{"StringEquals":{"aws:RequestTag/team":"blue"}}},{"Effect":"Allow","Action":"kms:UntagResource","Resource":"*","Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["team"]}}}]}`)
	f.must2(f.svc.TagResource(f.ctx, tagger, &kmsapi.TagResourceInput{KeyID: id, Tags: []kmsapi.Tag{{TagKey: "team", TagValue: "blue"}}}))
	_, err := f.svc.TagResource(f.ctx, tagger, &kmsapi.TagResourceInput{KeyID: id, Tags: []kmsapi.Tag{{TagKey: "team", TagValue: "red"}}})
	wantErr(t, err, fault.AccessDenied, deniedMsg(tagger, "kms:TagResource", keyARN(acctA, id), noIdentityPolicy("kms:TagResource")))
	_, err = f.svc.UntagResource(f.ctx, tagger, &kmsapi.UntagResourceInput{KeyID: id, TagKeys: []string{"a"}})
	wantErr(t, err, fault.AccessDenied, deniedMsg(tagger, "kms:UntagResource", keyARN(acctA, id), noIdentityPolicy("kms:UntagResource")))
	f.must2(f.svc.UntagResource(f.ctx, tagger, &kmsapi.UntagResourceInput{KeyID: id, TagKeys: []string{"team"}}))
}

// beforeUpdateStore runs a function once, just before the next write
// transaction: after a call was authorized, before it commits.
type beforeUpdateStore struct {
	store.Store
	before func()
}

func (s *beforeUpdateStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	if f := s.before; f != nil {
		s.before = nil
		f()
	}
	return s.Store.Update(ctx, fn)
}

// Changing or deleting an alias is authorized against the key it points
// at in the store when the change commits: not against a target cached
// before another node moved it, nor one that moved while the call was
// authorized (the call is then authorized again).
func TestAliasChangeAuthorizedAgainstItsCurrentTarget(t *testing.T) {
	f := newFixture(t)
	open := f.createKey(kmsapi.CreateKeyInput{Policy: strp(`{"Version":"2012-10-17","Statement":[
	  {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
	  {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/mover"},"Action":["kms:UpdateAlias","kms:DeleteAlias","kms:Encrypt"],"Resource":"*"}]}`)})
	closed := f.createKey(kmsapi.CreateKeyInput{})
	mover := iamUser(t, acctA, "mover", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:UpdateAlias","kms:DeleteAlias"],"Resource":"arn:aws:kms:us-east-1:111122223333:alias/*"}]}`)
	f.must2(f.svc.CreateAlias(f.ctx, rootA, &kmsapi.AliasInput{AliasName: "alias/app", TargetKeyID: open}))
	moveTo := func(id string) {
		t.Helper()
		f.must2(f.svc.UpdateAlias(f.ctx, rootA, &kmsapi.AliasInput{AliasName: "alias/app", TargetKeyID: id}))
	}
	target := func() string {
		t.Helper()
		out, err := f.svc.DescribeKey(f.ctx, rootA, &kmsapi.DescribeKeyInput{KeyID: "alias/app"})
		if err != nil {
			t.Fatalf("alias/app: %v", err)
		}
		return out.KeyMetadata.KeyID
	}

	// Another node's cache still has the alias on the open key.
	node := f.newService(service.Config{})
	if _, err := node.Encrypt(f.ctx, mover, &kmsapi.EncryptInput{KeyID: "alias/app", Plaintext: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	moveTo(closed)
	_, err := node.DeleteAlias(f.ctx, mover, &kmsapi.DeleteAliasInput{AliasName: "alias/app"})
	wantErr(t, err, fault.AccessDenied, deniedMsg(mover, "kms:DeleteAlias", keyARN(acctA, closed), noIdentityPolicy("kms:DeleteAlias")))
	_, err = node.UpdateAlias(f.ctx, mover, &kmsapi.AliasInput{AliasName: "alias/app", TargetKeyID: open})
	wantErr(t, err, fault.AccessDenied, deniedMsg(mover, "kms:UpdateAlias", keyARN(acctA, closed), noIdentityPolicy("kms:UpdateAlias")))
	if got := target(); got != closed {
		t.Fatalf("alias/app points at %s after refused changes, want %s", got, closed)
	}

	// The alias moves between the caller's authorization and its commit.
	for _, call := range []struct {
		name string
		do   func(*service.Service) error
	}{
		{"DeleteAlias", func(s *service.Service) error {
			_, err := s.DeleteAlias(f.ctx, mover, &kmsapi.DeleteAliasInput{AliasName: "alias/app"})
			return err
		}},
		{"UpdateAlias", func(s *service.Service) error {
			_, err := s.UpdateAlias(f.ctx, mover, &kmsapi.AliasInput{AliasName: "alias/app", TargetKeyID: open})
			return err
		}},
	} {
		moveTo(open)
		svc, err := service.New(service.Config{Store: &beforeUpdateStore{Store: f.st, before: func() { moveTo(closed) }},
			RootKey: f.rk, Region: region, Now: func() time.Time { return f.now }})
		if err != nil {
			t.Fatal(err)
		}
		// Judged again, as if made after the move: on the key the alias
		// points at now.
		err = call.do(svc)
		wantErr(t, err, fault.AccessDenied, deniedMsg(mover, "kms:"+call.name, keyARN(acctA, closed), noIdentityPolicy("kms:"+call.name)))
		if got := target(); got != closed {
			t.Fatalf("%s while the alias moved: alias/app points at %s, want %s", call.name, got, closed)
		}
	}

	// An alias that moves under every try, between keys the caller may
	// use: the call gives up after a few, changing nothing.
	also := f.createKey(kmsapi.CreateKeyInput{Policy: strp(`{"Version":"2012-10-17","Statement":[
	  {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
	  {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/mover"},"Action":["kms:UpdateAlias","kms:DeleteAlias","kms:Encrypt"],"Resource":"*"}]}`)})
	moveTo(open)
	tries := 0
	busy := &busyAliasStore{Store: f.st, before: func() {
		tries++
		if target() == open {
			moveTo(also)
		} else {
			moveTo(open)
		}
	}}
	svc, err := service.New(service.Config{Store: busy, RootKey: f.rk, Region: region, Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.DeleteAlias(f.ctx, mover, &kmsapi.DeleteAliasInput{AliasName: "alias/app"})
	if fault.CodeOf(err) != fault.Internal || !strings.Contains(err.Error(), "The alias changed while the request was processed") {
		t.Fatalf("DeleteAlias of an alias moved under every try: %v, want the alias-changed error", err)
	}
	if tries != 8 {
		t.Fatalf("DeleteAlias tried %d times, want 8", tries)
	}
	target()
}

// busyAliasStore runs before ahead of every write transaction.
type busyAliasStore struct {
	store.Store
	before func()
}

func (s *busyAliasStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	s.before()
	return s.Store.Update(ctx, fn)
}

package service_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/openkms/kms/internal/service"
)

func (f *fixture) aliases(keyID *string) []service.AliasListEntry {
	f.t.Helper()
	out, err := f.svc.ListAliases(f.ctx, rootA, &service.ListAliasesInput{KeyID: keyID})
	if err != nil {
		f.t.Fatal(err)
	}
	return out.Aliases
}

func TestAliasLifecycle(t *testing.T) {
	f := newFixture(t)
	k1 := f.createKey(service.CreateKeyInput{})
	k2 := f.createKey(service.CreateKeyInput{})
	created := f.now
	f.must2(f.svc.CreateAlias(f.ctx, rootA, &service.AliasInput{AliasName: "alias/app", TargetKeyID: keyARN(acctA, k1)}))
	want := []service.AliasListEntry{{AliasName: "alias/app", AliasArn: "arn:aws:kms:us-east-1:111122223333:alias/app", TargetKeyID: k1,
		CreationDate: service.Time(created), LastUpdatedDate: service.Time(created)}}
	if got := f.aliases(nil); !reflect.DeepEqual(got, want) {
		t.Fatalf("ListAliases = %+v\nwant %+v", got, want)
	}
	f.advance(day)
	f.must2(f.svc.UpdateAlias(f.ctx, rootA, &service.AliasInput{AliasName: "alias/app", TargetKeyID: k2}))
	want[0].TargetKeyID, want[0].LastUpdatedDate = k2, service.Time(f.now)
	if got := f.aliases(nil); !reflect.DeepEqual(got, want) {
		t.Fatalf("after UpdateAlias: %+v\nwant %+v", got, want)
	}
	if got := f.aliases(strp(k1)); len(got) != 0 {
		t.Fatalf("k1 still has aliases %+v", got)
	}
	if got := f.aliases(strp(k2)); len(got) != 1 {
		t.Fatalf("k2's aliases %+v", got)
	}
	f.must2(f.svc.DeleteAlias(f.ctx, rootA, &service.DeleteAliasInput{AliasName: "alias/app"}))
	if got := f.aliases(nil); len(got) != 0 {
		t.Fatalf("after DeleteAlias: %+v", got)
	}
	_, err := f.svc.DeleteAlias(f.ctx, rootA, &service.DeleteAliasInput{AliasName: "alias/app"})
	wantErr(t, err, service.CodeNotFound, "Alias arn:aws:kms:us-east-1:111122223333:alias/app is not found.")
	_, err = f.svc.UpdateAlias(f.ctx, rootA, &service.AliasInput{AliasName: "alias/app", TargetKeyID: k1})
	wantErr(t, err, service.CodeNotFound, "Alias arn:aws:kms:us-east-1:111122223333:alias/app is not found.")
	// Each account has its own alias names.
	kb := f.createKeyAs(accountRoot(acctB), service.CreateKeyInput{})
	f.must2(f.svc.CreateAlias(f.ctx, rootA, &service.AliasInput{AliasName: "alias/same", TargetKeyID: k1}))
	f.must2(f.svc.CreateAlias(f.ctx, accountRoot(acctB), &service.AliasInput{AliasName: "alias/same", TargetKeyID: kb}))
	out, err := f.svc.Encrypt(f.ctx, accountRoot(acctB), &service.EncryptInput{KeyID: "alias/same", Plaintext: []byte("p")})
	if err != nil || out.KeyID != keyARN(acctB, kb) {
		t.Fatalf("B's alias/same: %+v, %v", out, err)
	}
	// A key's aliases go when it is deleted.
	f.must2(f.svc.ScheduleKeyDeletion(f.ctx, rootA, &service.ScheduleKeyDeletionInput{KeyID: k1, PendingWindowInDays: int32p(7)}))
	f.advance(7 * day)
	if got := f.aliases(nil); len(got) != 0 {
		t.Fatalf("an alias of a key past its deletion date is listed: %+v", got)
	}
	if n, err := f.svc.DeleteExpiredKeys(f.ctx); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredKeys = %d, %v", n, err)
	}
	f.must2(f.svc.CreateAlias(f.ctx, rootA, &service.AliasInput{AliasName: "alias/same", TargetKeyID: k2}))
}

func TestAliasRefusals(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(service.CreateKeyInput{})
	rsaKey := f.createKey(service.CreateKeyInput{KeySpec: "RSA_2048", KeyUsage: "SIGN_VERIFY"})
	hmac256 := f.createKey(service.CreateKeyInput{KeySpec: "HMAC_256", KeyUsage: "GENERATE_VERIFY_MAC"})
	hmac512 := f.createKey(service.CreateKeyInput{KeySpec: "HMAC_512", KeyUsage: "GENERATE_VERIFY_MAC"})
	ecc := f.createKey(service.CreateKeyInput{KeySpec: "ECC_NIST_P256", KeyUsage: "SIGN_VERIFY"})
	doomed := f.keyInState("PendingDeletion")
	f.must2(f.svc.CreateAlias(f.ctx, rootA, &service.AliasInput{AliasName: "alias/taken", TargetKeyID: id}))
	f.must2(f.svc.CreateAlias(f.ctx, rootA, &service.AliasInput{AliasName: "alias/signer", TargetKeyID: rsaKey}))
	f.must2(f.svc.CreateAlias(f.ctx, rootA, &service.AliasInput{AliasName: "alias/mac", TargetKeyID: hmac256}))
	user := iamUser(t, acctA, "u")
	keyOnly := iamUser(t, acctA, "keyonly", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:CreateAlias","Resource":"arn:aws:kms:us-east-1:111122223333:alias/*"}]}`)
	for _, tc := range []struct {
		name   string
		op     string
		caller service.Caller
		in     service.AliasInput
		code   service.Code
		msg    string
	}{
		{"no prefix", "CreateAlias", rootA, service.AliasInput{AliasName: "app", TargetKeyID: id}, service.CodeValidation,
			`Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html`},
		{"bad character", "CreateAlias", rootA, service.AliasInput{AliasName: "alias/a b", TargetKeyID: id}, service.CodeValidation,
			"1 validation error detected: Value 'alias/a b' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"},
		{"colon", "CreateAlias", rootA, service.AliasInput{AliasName: "alias/my:alias", TargetKeyID: id}, service.CodeValidation, "alias/my:alias contains invalid characters for an alias"},
		{"prefix only", "CreateAlias", rootA, service.AliasInput{AliasName: "alias/", TargetKeyID: id}, service.CodeValidation, "alias/ contains invalid characters for an alias"},
		{"reserved", "CreateAlias", rootA, service.AliasInput{AliasName: "alias/aws/s3", TargetKeyID: id}, service.CodeNotAuthorized, ""},
		{"no name", "CreateAlias", rootA, service.AliasInput{TargetKeyID: id}, service.CodeValidation,
			"1 validation error detected: Value null at 'aliasName' failed to satisfy constraint: Member must not be null"},
		{"no target", "CreateAlias", rootA, service.AliasInput{AliasName: "alias/x"}, service.CodeValidation,
			"1 validation error detected: Value null at 'targetKeyId' failed to satisfy constraint: Member must not be null"},
		{"alias ARN as target", "CreateAlias", rootA, service.AliasInput{AliasName: "alias/x", TargetKeyID: "arn:aws:kms:us-east-1:111122223333:alias/taken"}, service.CodeValidation,
			"Aliases must refer to keys. Not aliases"},
		{"taken", "CreateAlias", rootA, service.AliasInput{AliasName: "alias/taken", TargetKeyID: rsaKey}, service.CodeAlreadyExists,
			"An alias with the name arn:aws:kms:us-east-1:111122223333:alias/taken already exists"},
		{"target pending deletion", "CreateAlias", rootA, service.AliasInput{AliasName: "alias/x", TargetKeyID: doomed}, service.CodeInvalidState, keyARN(acctA, doomed) + " is pending deletion."},
		{"another account's key", "CreateAlias", accountRoot(acctB), service.AliasInput{AliasName: "alias/x", TargetKeyID: keyARN(acctA, id)}, service.CodeNotFound,
			"Key '" + keyARN(acctA, id) + "' does not exist"},
		{"user without permission", "CreateAlias", user, service.AliasInput{AliasName: "alias/x", TargetKeyID: id}, service.CodeAccessDenied,
			deniedMsg(user, "kms:CreateAlias", "arn:aws:kms:us-east-1:111122223333:alias/x", noIdentityPolicy("kms:CreateAlias"))},
		{"allowed on aliases, not on the key", "CreateAlias", keyOnly, service.AliasInput{AliasName: "alias/x", TargetKeyID: id}, service.CodeAccessDenied,
			deniedMsg(keyOnly, "kms:CreateAlias", keyARN(acctA, id), noIdentityPolicy("kms:CreateAlias"))},
		{"symmetric to asymmetric", "UpdateAlias", rootA, service.AliasInput{AliasName: "alias/taken", TargetKeyID: rsaKey}, service.CodeValidation,
			"Alias alias/taken cannot be changed from a CMK with key usage ENCRYPT_DECRYPT to a CMK with key usage SIGN_VERIFY. The key usage of the current CMK and the new CMK must be the same."},
		{"HMAC to symmetric", "UpdateAlias", rootA, service.AliasInput{AliasName: "alias/mac", TargetKeyID: id}, service.CodeValidation,
			"Alias alias/mac cannot be changed from a CMK with key usage GENERATE_VERIFY_MAC to a CMK with key usage ENCRYPT_DECRYPT. The key usage of the current CMK and the new CMK must be the same."},
		{"to a key pending deletion", "UpdateAlias", rootA, service.AliasInput{AliasName: "alias/taken", TargetKeyID: doomed}, service.CodeInvalidState, keyARN(acctA, doomed) + " is pending deletion."},
		{"reserved", "DeleteAlias", rootA, service.AliasInput{AliasName: "alias/aws/s3"}, service.CodeNotAuthorized, ""},
		{"user without permission", "DeleteAlias", user, service.AliasInput{AliasName: "alias/taken"}, service.CodeAccessDenied,
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
				_, err = f.svc.DeleteAlias(f.ctx, tc.caller, &service.DeleteAliasInput{AliasName: tc.in.AliasName})
			}
			wantErr(t, err, tc.code, tc.msg)
			if !sameRecords(before, f.snapshot()) {
				t.Fatalf("a refused %s changed the store", tc.op)
			}
		})
	}
	// Asymmetric keys of the same usage, and HMAC keys of different specs,
	// may take each other's aliases.
	f.must2(f.svc.UpdateAlias(f.ctx, rootA, &service.AliasInput{AliasName: "alias/signer", TargetKeyID: ecc}))
	f.must2(f.svc.UpdateAlias(f.ctx, rootA, &service.AliasInput{AliasName: "alias/mac", TargetKeyID: hmac512}))
	// An alias of a key pending deletion can be moved away from it.
	f.must2(f.svc.CreateAlias(f.ctx, rootA, &service.AliasInput{AliasName: "alias/leaving", TargetKeyID: id}))
	f.must2(f.svc.ScheduleKeyDeletion(f.ctx, rootA, &service.ScheduleKeyDeletionInput{KeyID: id}))
	f.must2(f.svc.UpdateAlias(f.ctx, rootA, &service.AliasInput{AliasName: "alias/leaving", TargetKeyID: f.createKey(service.CreateKeyInput{})}))
}

// Moving an alias needs kms:UpdateAlias on both the old and the new key.
func TestUpdateAliasAuthorizesBothKeys(t *testing.T) {
	f := newFixture(t)
	mover := iamUser(t, acctA, "mover", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:UpdateAlias","Resource":"arn:aws:kms:us-east-1:111122223333:alias/*"}]}`)
	open := func() string {
		return f.createKey(service.CreateKeyInput{Policy: strp(`{"Version":"2012-10-17","Statement":[
		  {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
		  {"Effect":"Allow","Principal":{"AWS":"` + mover.ARN + `"},"Action":"kms:UpdateAlias","Resource":"*"}]}`)})
	}
	closed := f.createKey(service.CreateKeyInput{})
	a, b := open(), open()
	f.must2(f.svc.CreateAlias(f.ctx, rootA, &service.AliasInput{AliasName: "alias/from-closed", TargetKeyID: closed}))
	f.must2(f.svc.CreateAlias(f.ctx, rootA, &service.AliasInput{AliasName: "alias/from-open", TargetKeyID: a}))
	_, err := f.svc.UpdateAlias(f.ctx, mover, &service.AliasInput{AliasName: "alias/from-closed", TargetKeyID: b})
	wantErr(t, err, service.CodeAccessDenied, deniedMsg(mover, "kms:UpdateAlias", keyARN(acctA, closed), noIdentityPolicy("kms:UpdateAlias")))
	_, err = f.svc.UpdateAlias(f.ctx, mover, &service.AliasInput{AliasName: "alias/from-open", TargetKeyID: closed})
	wantErr(t, err, service.CodeAccessDenied, deniedMsg(mover, "kms:UpdateAlias", keyARN(acctA, closed), noIdentityPolicy("kms:UpdateAlias")))
	f.must2(f.svc.UpdateAlias(f.ctx, mover, &service.AliasInput{AliasName: "alias/from-open", TargetKeyID: b}))
}

func TestAliasLimitsAndPages(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(service.CreateKeyInput{})
	for i := range 50 {
		f.must2(f.svc.CreateAlias(f.ctx, rootA, &service.AliasInput{AliasName: fmt.Sprintf("alias/a%02d", i), TargetKeyID: id}))
	}
	_, err := f.svc.CreateAlias(f.ctx, rootA, &service.AliasInput{AliasName: "alias/one-too-many", TargetKeyID: id})
	wantErr(t, err, service.CodeLimitExceeded, "The key "+keyARN(acctA, id)+" already has the maximum of 50 aliases.")
	other := f.createKey(service.CreateKeyInput{})
	f.must2(f.svc.CreateAlias(f.ctx, rootA, &service.AliasInput{AliasName: "alias/b", TargetKeyID: other}))
	_, err = f.svc.UpdateAlias(f.ctx, rootA, &service.AliasInput{AliasName: "alias/b", TargetKeyID: id})
	wantErr(t, err, service.CodeLimitExceeded, "The key "+keyARN(acctA, id)+" already has the maximum of 50 aliases.")
	var names []string
	var marker *string
	pages := 0
	for {
		out, err := f.svc.ListAliases(f.ctx, rootA, &service.ListAliasesInput{Limit: int32p(20), Marker: marker})
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
	out, err := f.svc.ListAliases(f.ctx, rootA, &service.ListAliasesInput{})
	if err != nil || len(out.Aliases) != 50 || !out.Truncated {
		t.Fatalf("default page: %d aliases, truncated %v, %v", len(out.Aliases), out.Truncated, err)
	}
	_, err = f.svc.ListAliases(f.ctx, rootA, &service.ListAliasesInput{Marker: strp("!!")})
	wantErr(t, err, service.CodeInvalidMarker, "The marker is not valid. Pass the NextMarker of a previous response unchanged.")
	_, err = f.svc.ListAliases(f.ctx, rootA, &service.ListAliasesInput{KeyID: strp("alias/a00")})
	wantErr(t, err, service.CodeNotFound, "Invalid keyId 'alias/a00'")
	user := iamUser(t, acctA, "u")
	_, err = f.svc.ListAliases(f.ctx, user, &service.ListAliasesInput{})
	wantErr(t, err, service.CodeAccessDenied, deniedMsg(user, "kms:ListAliases", "*", noIdentityPolicy("kms:ListAliases")))
}

func TestTags(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(service.CreateKeyInput{Tags: []service.Tag{{TagKey: "a", TagValue: "1"}, {TagKey: "b", TagValue: "2"}}})
	list := func(in service.ListResourceTagsInput) *service.ListResourceTagsOutput {
		t.Helper()
		in.KeyID = id
		out, err := f.svc.ListResourceTags(f.ctx, rootA, &in)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	f.must2(f.svc.TagResource(f.ctx, rootA, &service.TagResourceInput{KeyID: id, Tags: []service.Tag{{TagKey: "c", TagValue: ""}, {TagKey: "a", TagValue: "one"}}}))
	want := []service.Tag{{TagKey: "a", TagValue: "one"}, {TagKey: "b", TagValue: "2"}, {TagKey: "c", TagValue: ""}}
	if got := list(service.ListResourceTagsInput{}); !reflect.DeepEqual(got.Tags, want) || got.Truncated {
		t.Fatalf("tags %+v, want %+v in the order added", got, want)
	}
	f.must2(f.svc.UntagResource(f.ctx, rootA, &service.UntagResourceInput{KeyID: id, TagKeys: []string{"b", "absent"}}))
	want = []service.Tag{{TagKey: "a", TagValue: "one"}, {TagKey: "c", TagValue: ""}}
	if got := list(service.ListResourceTagsInput{}); !reflect.DeepEqual(got.Tags, want) {
		t.Fatalf("after UntagResource %+v, want %+v", got.Tags, want)
	}
	page := list(service.ListResourceTagsInput{Limit: int32p(1)})
	if len(page.Tags) != 1 || page.Tags[0].TagKey != "a" || !page.Truncated {
		t.Fatalf("first page %+v", page)
	}
	page = list(service.ListResourceTagsInput{Limit: int32p(1), Marker: strp(page.NextMarker)})
	if len(page.Tags) != 1 || page.Tags[0].TagKey != "c" || page.Truncated || page.NextMarker != "" {
		t.Fatalf("second page %+v", page)
	}
	many := make([]service.Tag, 49)
	for i := range many {
		many[i] = service.Tag{TagKey: fmt.Sprintf("k%d", i)}
	}
	for _, tc := range []struct {
		name string
		call func() error
		code service.Code
		msg  string
	}{
		{"reserved key", func() error {
			_, err := f.svc.TagResource(f.ctx, rootA, &service.TagResourceInput{KeyID: id, Tags: []service.Tag{{TagKey: "aws:x"}}})
			return err
		}, service.CodeTag, "Tags beginning with aws: are reserved"},
		{"over 50 with the existing ones", func() error {
			_, err := f.svc.TagResource(f.ctx, rootA, &service.TagResourceInput{KeyID: id, Tags: many})
			return err
		}, service.CodeTag, "Too many tags"},
		{"duplicate keys", func() error {
			_, err := f.svc.TagResource(f.ctx, rootA, &service.TagResourceInput{KeyID: id, Tags: []service.Tag{{TagKey: "d"}, {TagKey: "d"}}})
			return err
		}, service.CodeTag, "Duplicate tag keys"},
		{"no tags", func() error {
			_, err := f.svc.TagResource(f.ctx, rootA, &service.TagResourceInput{KeyID: id})
			return err
		}, service.CodeValidation, "1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null"},
		{"value too long", func() error {
			_, err := f.svc.TagResource(f.ctx, rootA, &service.TagResourceInput{KeyID: id, Tags: []service.Tag{{TagKey: "k", TagValue: strings.Repeat("v", 257)}}})
			return err
		}, service.CodeValidation, "1 validation error detected: Value '" + strings.Repeat("v", 257) + "' at 'tags.1.member.tagValue' failed to satisfy constraint: Member must have length less than or equal to 256"},
		{"untag reserved", func() error {
			_, err := f.svc.UntagResource(f.ctx, rootA, &service.UntagResourceInput{KeyID: id, TagKeys: []string{"a", "AWS:x"}})
			return err
		}, service.CodeTag, "Tags beginning with aws: are reserved"},
		{"untag nothing", func() error {
			_, err := f.svc.UntagResource(f.ctx, rootA, &service.UntagResourceInput{KeyID: id})
			return err
		}, service.CodeValidation, "1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: Member must not be null"},
		{"bad marker", func() error {
			_, err := f.svc.ListResourceTags(f.ctx, rootA, &service.ListResourceTagsInput{KeyID: id, Marker: strp("bm9wZQ")})
			return err
		}, service.CodeInvalidMarker, "The marker is not valid. Pass the NextMarker of a previous response unchanged."},
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
	f.must2(f.svc.TagResource(f.ctx, tagger, &service.TagResourceInput{KeyID: id, Tags: []service.Tag{{TagKey: "team", TagValue: "blue"}}}))
	_, err := f.svc.TagResource(f.ctx, tagger, &service.TagResourceInput{KeyID: id, Tags: []service.Tag{{TagKey: "team", TagValue: "red"}}})
	wantErr(t, err, service.CodeAccessDenied, deniedMsg(tagger, "kms:TagResource", keyARN(acctA, id), noIdentityPolicy("kms:TagResource")))
	_, err = f.svc.UntagResource(f.ctx, tagger, &service.UntagResourceInput{KeyID: id, TagKeys: []string{"a"}})
	wantErr(t, err, service.CodeAccessDenied, deniedMsg(tagger, "kms:UntagResource", keyARN(acctA, id), noIdentityPolicy("kms:UntagResource")))
	f.must2(f.svc.UntagResource(f.ctx, tagger, &service.UntagResourceInput{KeyID: id, TagKeys: []string{"team"}}))
}

package service_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/kmsapi"
)

// listing is one of the paginated operations, reduced to the names of the
// items it returns.
type listing struct {
	name string
	list func(marker *string, limit int32) (items []string, next string, err error)
}

func listings(f *fixture, keyID string) []listing {
	return []listing{
		{"ListKeys", func(m *string, n int32) ([]string, string, error) {
			out, err := f.svc.ListKeys(f.ctx, rootA, &kmsapi.ListKeysInput{Marker: m, Limit: &n})
			if err != nil {
				return nil, "", err
			}
			var items []string
			for _, k := range out.Keys {
				items = append(items, k.KeyArn)
			}
			return items, out.NextMarker, nil
		}},
		{"ListAliases", func(m *string, n int32) ([]string, string, error) {
			out, err := f.svc.ListAliases(f.ctx, rootA, &kmsapi.ListAliasesInput{Marker: m, Limit: &n})
			if err != nil {
				return nil, "", err
			}
			var items []string
			for _, a := range out.Aliases {
				items = append(items, a.AliasArn)
			}
			return items, out.NextMarker, nil
		}},
		{"ListGrants", func(m *string, n int32) ([]string, string, error) {
			out, err := f.svc.ListGrants(f.ctx, rootA, &kmsapi.ListGrantsInput{KeyID: keyID, Marker: m, Limit: &n})
			if err != nil {
				return nil, "", err
			}
			var items []string
			for _, g := range out.Grants {
				items = append(items, g.KeyID+" "+g.GrantID)
			}
			return items, out.NextMarker, nil
		}},
		{"ListResourceTags", func(m *string, n int32) ([]string, string, error) {
			out, err := f.svc.ListResourceTags(f.ctx, rootA, &kmsapi.ListResourceTagsInput{KeyID: keyID, Marker: m, Limit: &n})
			if err != nil {
				return nil, "", err
			}
			var items []string
			for _, t := range out.Tags {
				items = append(items, t.TagKey)
			}
			return items, out.NextMarker, nil
		}},
	}
}

// FuzzListMarker pages through each listing from arbitrary markers, as a
// client may send any Marker. The answer is a page or InvalidMarker
// (ValidationException for a marker of the wrong length or characters),
// never a panic; a page holds only items of the full listing of the
// caller's account, none of the other account's, in the listing's order;
// and its NextMarker resumes the listing.
func FuzzListMarker(f *testing.F) {
	fx := newFixture(f)
	rootB := accountRoot(acctB)
	var keyID string
	for i := range 3 {
		id := fx.createKey(kmsapi.CreateKeyInput{})
		fx.must2(fx.svc.CreateAlias(fx.ctx, rootA, &kmsapi.AliasInput{AliasName: fmt.Sprintf("alias/a%d", i), TargetKeyID: id}))
		idB := fx.createKeyAs(rootB, kmsapi.CreateKeyInput{})
		fx.must2(fx.svc.CreateAlias(fx.ctx, rootB, &kmsapi.AliasInput{AliasName: fmt.Sprintf("alias/b%d", i), TargetKeyID: idB}))
		keyID = id
	}
	for i := range 3 {
		fx.must2(fx.svc.CreateGrant(fx.ctx, rootA, &kmsapi.CreateGrantInput{KeyID: keyID, Operations: []string{"Decrypt"},
			GranteePrincipal: fmt.Sprintf("arn:aws:iam::%s:user/u%d", acctA, i)}))
		fx.must2(fx.svc.TagResource(fx.ctx, rootA, &kmsapi.TagResourceInput{KeyID: keyID,
			Tags: []kmsapi.Tag{{TagKey: fmt.Sprintf("t%d", i), TagValue: "v"}}}))
	}
	ls := listings(fx, keyID)
	full := make([][]string, len(ls))
	for i, l := range ls {
		items, next, err := l.list(nil, 1000)
		if err != nil || next != "" || len(items) < 3 {
			f.Fatalf("%s: %d items, next %q, %v", l.name, len(items), next, err)
		}
		full[i] = items
		_, next, err = l.list(nil, 1)
		if err != nil || next == "" {
			f.Fatalf("%s: a first page of one has no marker: %v", l.name, err)
		}
		f.Add(uint8(i), next, uint8(1))
		f.Add(uint8(i), next+"A", uint8(2))
		f.Add(uint8(i+1), next, uint8(1)) // another listing's marker
	}
	for _, m := range []string{"", "bTE6", "bTE6~", "m1:", base64.RawURLEncoding.EncodeToString([]byte("m1:\xff")),
		base64.RawURLEncoding.EncodeToString([]byte("m1:" + acctB + "/")), strings.Repeat("A", 1025)} {
		f.Add(uint8(0), m, uint8(3))
	}
	f.Fuzz(func(t *testing.T, op uint8, marker string, limit uint8) {
		fx.t = t
		i := int(op) % len(ls)
		l, n := ls[i], int32(limit%4)+1
		items, next, err := l.list(&marker, n)
		if err != nil {
			if code := fault.CodeOf(err); code != fault.InvalidMarker && code != fault.Validation {
				t.Fatalf("%s from marker %q: %v (%s), want InvalidMarker", l.name, marker, err, codeName(code))
			}
			return
		}
		if len(items) > int(n) {
			t.Fatalf("%s: %d items on a page of %d", l.name, len(items), n)
		}
		last := -1
		for _, it := range items {
			at := slices.Index(full[i], it)
			if at < 0 {
				t.Fatalf("%s from marker %q returned %q, which is not in the caller's listing %q", l.name, marker, it, full[i])
			}
			if at <= last {
				t.Fatalf("%s from marker %q returned %q out of order", l.name, marker, items)
			}
			last = at
		}
		if next != "" {
			if _, _, err := l.list(&next, n); err != nil {
				t.Fatalf("%s: its own NextMarker %q does not resume: %v", l.name, next, err)
			}
		}
	})
}

// FuzzGrantTokens sends arbitrary grant tokens with a cryptographic
// operation. A token either is well-formed, and the call goes on, or the
// call fails with InvalidGrantTokenException (ValidationException for a
// token of the wrong length or too many tokens): never a panic or another
// error. A token CreateGrant returned is well-formed.
func FuzzGrantTokens(f *testing.F) {
	fx := newFixture(f)
	keyID := fx.createKey(kmsapi.CreateKeyInput{})
	g, err := fx.svc.CreateGrant(fx.ctx, rootA, &kmsapi.CreateGrantInput{KeyID: keyID, Operations: []string{"Encrypt"},
		GranteePrincipal: "arn:aws:iam::" + acctA + ":user/app"})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := fx.svc.Encrypt(fx.ctx, rootA, &kmsapi.EncryptInput{KeyID: keyID, Plaintext: []byte("x"), GrantTokens: []string{g.GrantToken}}); err != nil {
		f.Fatalf("the token CreateGrant returned is refused: %v", err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(g.GrantToken)
	f.Add(g.GrantToken, "")
	f.Add(g.GrantToken, g.GrantToken)
	f.Add(g.GrantToken[:len(g.GrantToken)-1], "")
	f.Add(base64.StdEncoding.EncodeToString(raw), "")
	f.Add(base64.RawURLEncoding.EncodeToString(append([]byte{2}, raw[1:]...)), "")
	f.Add(strings.Repeat("A", 8193), "")
	f.Fuzz(func(t *testing.T, token, second string) {
		fx.t = t
		tokens := []string{token}
		if second != "" {
			tokens = append(tokens, second)
		}
		_, err := fx.svc.Encrypt(fx.ctx, rootA, &kmsapi.EncryptInput{KeyID: keyID, Plaintext: []byte("x"), GrantTokens: tokens})
		if err == nil {
			return
		}
		if code := fault.CodeOf(err); code != fault.InvalidGrantToken && code != fault.Validation {
			t.Fatalf("tokens %q: %v (%s), want InvalidGrantToken", tokens, err, codeName(code))
		}
	})
}

// FuzzImportKeyMaterial imports arbitrary import tokens and wrapped key
// material into EXTERNAL keys of each kind. Whatever a client sends, the
// call is refused with one of ImportKeyMaterial's own errors and changes
// nothing, or imports material of the key's spec: never a panic or an
// internal error.
func FuzzImportKeyMaterial(f *testing.F) {
	fx := newFixture(f)
	p256, err := keys.GenerateAsymmetric("ECC_NIST_P256")
	if err != nil {
		f.Fatal(err)
	}
	targets := []struct {
		in       kmsapi.CreateKeyInput
		material []byte
	}{
		{kmsapi.CreateKeyInput{Origin: "EXTERNAL"}, bytes.Repeat([]byte{1}, 32)},
		{kmsapi.CreateKeyInput{Origin: "EXTERNAL", KeySpec: "HMAC_256", KeyUsage: "GENERATE_VERIFY_MAC"}, bytes.Repeat([]byte{2}, 32)},
		{kmsapi.CreateKeyInput{Origin: "EXTERNAL", KeySpec: "ECC_NIST_P256", KeyUsage: "SIGN_VERIFY"}, p256},
	}
	// Tokens are stored records, which each fuzzing process makes for
	// itself: an input uses its key's token of this process (sameToken),
	// or its own bytes.
	ids := make([]string, len(targets))
	tokens := make([][]byte, len(targets))
	for i, tg := range targets {
		ids[i] = fx.createKey(tg.in)
		for _, alg := range []string{"RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_256"} {
			p := fx.importParams(ids[i], alg)
			tokens[i] = p.ImportToken
			f.Add(uint8(i), true, p.ImportToken, wrap(f, p, alg, tg.material))
			f.Add(uint8(i), true, p.ImportToken, wrap(f, p, alg, tg.material[:len(tg.material)-1]))
			f.Add(uint8(i+1), false, p.ImportToken, wrap(f, p, alg, tg.material)) // another key's token
		}
	}
	f.Add(uint8(0), false, []byte{1}, []byte{})
	f.Add(uint8(0), false, make([]byte, 33), make([]byte, 256))
	allowed := []fault.Code{fault.InvalidImportToken, fault.ExpiredImportToken, fault.InvalidCiphertext,
		fault.IncorrectKeyMaterial, fault.Validation, fault.UnsupportedOperation}
	f.Fuzz(func(t *testing.T, which uint8, sameToken bool, token, wrapped []byte) {
		fx.t = t
		i := int(which) % len(ids)
		id := ids[i]
		if sameToken {
			token = tokens[i] // the key's own RSA_AES_KEY_WRAP_SHA_256 token
		}
		before := fx.snapshot()
		_, err := fx.svc.ImportKeyMaterial(fx.ctx, rootA, &kmsapi.ImportKeyMaterialInput{KeyID: id, ImportToken: token,
			EncryptedKeyMaterial: wrapped, ExpirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE"})
		if err == nil {
			return
		}
		if code := fault.CodeOf(err); !slices.Contains(allowed, code) {
			t.Fatalf("ImportKeyMaterial refused with %v (%s)", err, codeName(code))
		}
		if !sameRecords(before, fx.snapshot()) {
			t.Fatalf("a refused import (%v) changed the store", err)
		}
	})
}

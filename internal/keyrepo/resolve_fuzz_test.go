package keyrepo_test

import (
	"strings"
	"testing"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/keys"
)

// FuzzResolve resolves arbitrary key identifiers, as every operation does
// with a client's KeyId, against a store that holds a key and an alias in
// each of two accounts. Whatever the identifier, Resolve never panics;
// it fails with NotFound (AWS's answer to a malformed or unknown key) and
// nothing else; it finds only a key the caller may name in that form,
// through an alias only by its exact stored name; and the key's own ARN
// resolves to the same key. Accepting more forms never loses a key.
func FuzzResolve(f *testing.F) {
	fx := newFixture(f, keyrepo.Config{})
	kA := fx.newKey(acctA, keys.SymmetricDefault)
	kB := fx.newKey(acctB, keys.SymmetricDefault)
	fx.putAlias(acctA, "alias/app", kA.ID)
	fx.putAlias(acctB, "alias/b", kB.ID)
	aliases := map[string]string{acctA + " alias/app": kA.ID, acctB + " alias/b": kB.ID}
	mrk := "mrk-" + strings.Repeat("0123456789abcdef", 2)
	for _, ident := range []string{
		kA.ID, strings.ToUpper(kA.ID), keyARN(acctA, kA.ID), keyARN(acctB, kB.ID), "alias/app", aliasARN(acctA, "alias/app"),
		aliasARN(acctB, "alias/b"), mrk, keyARN(acctA, mrk), "arn:aws:kms:us-west-2:" + acctA + ":key/" + kA.ID,
		"arn:aws:kms:" + region + ":" + acctA + ":alias/app/../b", "alias/", "arn:", "", strings.ReplaceAll(kA.ID, "-", ""),
	} {
		for _, forms := range []keyrepo.Forms{keyrepo.IDOrARN, keyrepo.AnyForm, keyrepo.AnyForm | keyrepo.FormOtherAccount} {
			f.Add(ident, uint8(forms))
		}
	}
	f.Fuzz(func(t *testing.T, ident string, formBits uint8) {
		forms := keyrepo.Forms(formBits) & (keyrepo.FormAlias | keyrepo.FormOtherAccount)
		k, alias, err := fx.repo.Resolve(fx.ctx, acctA, region, ident, forms)
		if err != nil {
			if !fault.Is(err, fault.NotFound) || k != nil || alias != "" {
				t.Fatalf("Resolve(%q, %d) = %v, %q, error %v (class %d); want NotFound alone", ident, forms, k, alias, err, fault.CodeOf(err))
			}
			return
		}
		if k.Rec.ID != kA.ID && k.Rec.ID != kB.ID {
			t.Fatalf("Resolve(%q) found key %s, which was never stored", ident, k.Rec.ID)
		}
		if k.Rec.Account != acctA && forms&keyrepo.FormOtherAccount == 0 {
			t.Fatalf("Resolve(%q, %d) found account %s's key where only the caller's may be named", ident, forms, k.Rec.Account)
		}
		if alias != "" {
			if forms&keyrepo.FormAlias == 0 || aliases[k.Rec.Account+" "+alias] != k.Rec.ID {
				t.Fatalf("Resolve(%q, %d) went through alias %q of %s to %s", ident, forms, alias, k.Rec.Account, k.Rec.ID)
			}
		} else if !strings.EqualFold(strings.TrimPrefix(ident, "arn:aws:kms:"+region+":"+k.Rec.Account+":key/"), k.Rec.ID) {
			t.Fatalf("Resolve(%q) found %s without naming it", ident, k.Rec.ID)
		}
		again, _, err := fx.repo.Resolve(fx.ctx, acctA, region, k.ARN, keyrepo.FormOtherAccount)
		if err != nil || again.Rec.ID != k.Rec.ID {
			t.Fatalf("the ARN %s of the key %q names does not resolve to it: %v", k.ARN, ident, err)
		}
		wide, _, err := fx.repo.Resolve(fx.ctx, acctA, region, ident, keyrepo.AnyForm|keyrepo.FormOtherAccount)
		if err != nil || wide.Rec.ID != k.Rec.ID {
			t.Fatalf("Resolve(%q) finds %s with forms %d, but not with every form: %v", ident, k.Rec.ID, forms, err)
		}
	})
}

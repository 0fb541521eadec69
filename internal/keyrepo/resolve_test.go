package keyrepo_test

import (
	"strings"
	"testing"
	"time"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/keys"
)

func TestResolve(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	kA := f.newKey(acctA, keys.SymmetricDefault)
	kB := f.newKey(acctB, keys.SymmetricDefault)
	later := start.Add(24 * time.Hour)
	kPending := f.newKey(acctA, keys.SymmetricDefault, func(r *keyrepo.KeyRecord) {
		r.State, r.DeletionDate = keyrepo.StatePendingDeletion, &later
	})
	now := start
	kDue := f.newKey(acctA, keys.SymmetricDefault, func(r *keyrepo.KeyRecord) {
		r.State, r.DeletionDate = keyrepo.StatePendingDeletion, &now
	})
	dangling := keys.NewID().String()
	unknown := keys.NewID().String()
	f.putAlias(acctA, "alias/app", kA.ID)
	f.putAlias(acctA, "alias/dangling", dangling)
	f.putAlias(acctB, "alias/b", kB.ID)
	mrk := "mrk-" + strings.Repeat("0123456789abcdef", 2)

	for _, tc := range []struct {
		name      string
		ident     string
		forms     keyrepo.Forms
		wantID    string
		wantAlias string
		wantErr   string // NotFound with this message
	}{
		{"key id", kA.ID, keyrepo.IDOrARN, kA.ID, "", ""},
		{"key id in upper case", strings.ToUpper(kA.ID), keyrepo.IDOrARN, kA.ID, "", ""},
		{"key ARN", keyARN(acctA, kA.ID), keyrepo.IDOrARN, kA.ID, "", ""},
		{"alias name", "alias/app", keyrepo.AnyForm, kA.ID, "alias/app", ""},
		{"alias ARN", aliasARN(acctA, "alias/app"), keyrepo.AnyForm, kA.ID, "alias/app", ""},
		{"key pending deletion before its date", kPending.ID, keyrepo.IDOrARN, kPending.ID, "", ""},
		{"another account's key ARN where allowed", keyARN(acctB, kB.ID), keyrepo.FormOtherAccount, kB.ID, "", ""},
		{"another account's alias ARN where allowed", aliasARN(acctB, "alias/b"), keyrepo.FormAlias | keyrepo.FormOtherAccount, kB.ID, "alias/b", ""},

		{"alias name where only ids are taken", "alias/app", keyrepo.IDOrARN, "", "", "Invalid keyId 'alias/app'"},
		{"alias ARN where only ids are taken", aliasARN(acctA, "alias/app"), keyrepo.IDOrARN, "", "", "Invalid keyId '" + aliasARN(acctA, "alias/app") + "'"},
		{"unknown alias", "alias/none", keyrepo.AnyForm, "", "", "Alias " + aliasARN(acctA, "alias/none") + " is not found."},
		{"unknown alias ARN", aliasARN(acctA, "alias/none"), keyrepo.AnyForm, "", "", "Alias " + aliasARN(acctA, "alias/none") + " is not found."},
		{"alias of a key that is gone", "alias/dangling", keyrepo.AnyForm, "", "", "Key '" + keyARN(acctA, dangling) + "' does not exist"},
		{"unknown key id", unknown, keyrepo.IDOrARN, "", "", "Key '" + keyARN(acctA, unknown) + "' does not exist"},
		{"unknown key id in upper case", strings.ToUpper(unknown), keyrepo.IDOrARN, "", "", "Key '" + keyARN(acctA, unknown) + "' does not exist"},
		{"unknown key ARN", keyARN(acctA, unknown), keyrepo.AnyForm, "", "", "Key '" + keyARN(acctA, unknown) + "' does not exist"},
		{"multi-Region key id", mrk, keyrepo.IDOrARN, "", "", "Key '" + keyARN(acctA, mrk) + "' does not exist"},
		{"multi-Region key ARN", keyARN(acctA, mrk), keyrepo.IDOrARN, "", "", "Key '" + keyARN(acctA, mrk) + "' does not exist"},
		{"malformed multi-Region key ARN", keyARN(acctA, "mrk-fake-key-id"), keyrepo.IDOrARN, "", "", "Invalid keyId '" + keyARN(acctA, "mrk-fake-key-id") + "'"},
		{"another account's multi-Region key ARN", keyARN(acctB, mrk), keyrepo.IDOrARN, "", "", "Key '" + keyARN(acctB, mrk) + "' does not exist"},
		{"malformed key id", "fake-key-id", keyrepo.AnyForm, "", "", "Invalid keyId 'fake-key-id'"},
		{"key id without dashes", strings.ReplaceAll(kA.ID, "-", ""), keyrepo.AnyForm, "", "", "Invalid keyId '" + strings.ReplaceAll(kA.ID, "-", "") + "'"},
		{"malformed multi-Region key id", "mrk-fake-key-id", keyrepo.AnyForm, "", "", "Invalid keyId 'mrk-fake-key-id'"},
		{"multi-Region key id in upper case", strings.ToUpper(mrk), keyrepo.AnyForm, "", "", "Invalid keyId '" + strings.ToUpper(mrk) + "'"},
		{"empty", "", keyrepo.AnyForm, "", "", "Invalid keyId ''"},
		{"ARN of another region", "arn:aws:kms:us-west-2:" + acctA + ":key/" + kA.ID, keyrepo.AnyForm, "", "", "Invalid arn us-west-2"},
		{"ARN of another partition", "arn:aws-cn:kms:" + region + ":" + acctA + ":key/" + kA.ID, keyrepo.AnyForm, "", "",
			"Invalid keyId 'arn:aws-cn:kms:" + region + ":" + acctA + ":key/" + kA.ID + "'"},
		{"ARN of another service", "arn:aws:iam::" + acctA + ":root", keyrepo.AnyForm, "", "", "Invalid keyId 'arn:aws:iam::" + acctA + ":root'"},
		{"ARN with a short account", "arn:aws:kms:" + region + ":1234:key/" + kA.ID, keyrepo.AnyForm, "", "",
			"Invalid keyId 'arn:aws:kms:" + region + ":1234:key/" + kA.ID + "'"},
		{"ARN with too few parts", "arn:aws:kms:" + region, keyrepo.AnyForm, "", "", "Invalid keyId 'arn:aws:kms:" + region + "'"},
		{"ARN with a malformed key id", keyARN(acctA, "nope"), keyrepo.AnyForm, "", "", "Invalid keyId '" + keyARN(acctA, "nope") + "'"},
		{"ARN of another resource type", aliasARN(acctA, "grant/x"), keyrepo.AnyForm, "", "", "Invalid keyId '" + aliasARN(acctA, "grant/x") + "'"},
		{"another account's key by id", kB.ID, keyrepo.AnyForm | keyrepo.FormOtherAccount, "", "", "Key '" + keyARN(acctA, kB.ID) + "' does not exist"},
		{"another account's key ARN where not allowed", keyARN(acctB, kB.ID), keyrepo.AnyForm, "", "", "Key '" + keyARN(acctB, kB.ID) + "' does not exist"},
		{"another account's alias ARN where not allowed", aliasARN(acctB, "alias/b"), keyrepo.AnyForm, "", "", "Alias " + aliasARN(acctB, "alias/b") + " is not found."},
		{"another account's alias by name", "alias/b", keyrepo.AnyForm | keyrepo.FormOtherAccount, "", "", "Alias " + aliasARN(acctA, "alias/b") + " is not found."},
		{"key ARN naming an account that does not own the key", keyARN(acctA, kB.ID), keyrepo.FormOtherAccount, "", "", "Key '" + keyARN(acctA, kB.ID) + "' does not exist"},
		{"key whose deletion date has come", kDue.ID, keyrepo.AnyForm, "", "", "Key '" + keyARN(acctA, kDue.ID) + "' does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, alias, err := f.repo.Resolve(f.ctx, acctA, region, tc.ident, tc.forms)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("Resolve(%q) = key %s, want NotFound %q", tc.ident, k.Rec.ID, tc.wantErr)
				}
				if !fault.Is(err, fault.NotFound) || err.Error() != tc.wantErr {
					t.Fatalf("Resolve(%q) error = %v (class %d), want NotFound %q", tc.ident, err, fault.CodeOf(err), tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve(%q): %v", tc.ident, err)
			}
			if k.Rec.ID != tc.wantID || alias != tc.wantAlias {
				t.Fatalf("Resolve(%q) = key %s, alias %q; want key %s, alias %q", tc.ident, k.Rec.ID, alias, tc.wantID, tc.wantAlias)
			}
			if want := keyARN(k.Rec.Account, k.Rec.ID); k.ARN != want {
				t.Fatalf("key ARN = %s, want %s", k.ARN, want)
			}
		})
	}
}

// A key is gone the instant its deletion date comes, before any sweeper
// removes its records.
func TestResolveDeletionDateComes(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	date := start.Add(time.Hour)
	k := f.newKey(acctA, keys.SymmetricDefault, func(r *keyrepo.KeyRecord) {
		r.State, r.DeletionDate = keyrepo.StatePendingDeletion, &date
	})
	if _, _, err := f.repo.Resolve(f.ctx, acctA, region, k.ID, keyrepo.IDOrARN); err != nil {
		t.Fatalf("before the deletion date: %v", err)
	}
	f.clock.Set(date)
	_, _, err := f.repo.Resolve(f.ctx, acctA, region, k.ID, keyrepo.IDOrARN)
	if want := "Key '" + keyARN(acctA, k.ID) + "' does not exist"; !fault.Is(err, fault.NotFound) || err == nil || err.Error() != want {
		t.Fatalf("at the deletion date (key cached): %v, want NotFound %q", err, want)
	}
}

func TestRepoNames(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	if got := f.repo.Region(); got != region {
		t.Errorf("Region() = %q, want %q", got, region)
	}
	if got, want := keyrepo.KeyARN(region, acctB, "k"), "arn:aws:kms:us-east-1:444455556666:key/k"; got != want {
		t.Errorf("KeyARN = %q, want %q", got, want)
	}
	if got, want := keyrepo.AliasARN(region, acctB, "alias/a"), "arn:aws:kms:us-east-1:444455556666:alias/a"; got != want {
		t.Errorf("AliasARN = %q, want %q", got, want)
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"ErrKeyDoesNotExist", keyrepo.ErrKeyDoesNotExist("arn:x"), "Key 'arn:x' does not exist"},
		{"ErrInvalidKeyID", keyrepo.ErrInvalidKeyID("x y"), "Invalid keyId 'x y'"},
	} {
		if !fault.Is(tc.err, fault.NotFound) || tc.err.Error() != tc.want {
			t.Errorf("%s = %v (class %d), want NotFound %q", tc.name, tc.err, fault.CodeOf(tc.err), tc.want)
		}
	}
}

func TestNewRequires(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	for _, tc := range []struct {
		name string
		cfg  keyrepo.Config
		ok   bool
	}{
		{"everything", keyrepo.Config{Store: f.st, RootKey: f.rk, Region: region}, true},
		{"no store", keyrepo.Config{RootKey: f.rk, Region: region}, false},
		{"no root key", keyrepo.Config{Store: f.st, Region: region}, false},
		{"no region", keyrepo.Config{Store: f.st, RootKey: f.rk}, false},
	} {
		r, err := keyrepo.New(tc.cfg)
		if tc.ok != (err == nil) || tc.ok != (r != nil) {
			t.Errorf("%s: New = %v, %v; want success %v", tc.name, r, err, tc.ok)
		}
	}
	// The defaults: the real clock and a working cache.
	r, err := keyrepo.New(keyrepo.Config{Store: f.st, RootKey: f.rk, Region: region})
	if err != nil {
		t.Fatal(err)
	}
	k := f.newKey(acctA, keys.SymmetricDefault)
	for range 2 {
		if _, err := r.Load(f.ctx, region, k.ID); err != nil {
			t.Fatal(err)
		}
	}
	if hits, misses := r.CacheStats(); hits != 1 || misses != 1 {
		t.Errorf("CacheStats = %d hits, %d misses; want 1, 1", hits, misses)
	}
	past := time.Now().Add(-time.Minute)
	if !r.MaterialExpired(&keyrepo.KeyRecord{ValidTo: &past}) {
		t.Error("the default clock is not the real time")
	}
}

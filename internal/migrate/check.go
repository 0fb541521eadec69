package migrate

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"iter"
	"log/slog"
	"strings"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/kmsapi"

	"github.com/openkms/kms/internal/authstore"
	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/policy"
	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/store"
)

// checkRegion is the default region of the two services CheckKeys runs;
// each key is used in its own region.
const checkRegion = "us-east-1"

// probesPerSample bounds the keys CheckKeys looks at, so that a store of
// mostly disabled keys is not read key by key.
const probesPerSample = 100

// Checked counts the keys CheckKeys used on both sides, by kind.
type Checked struct {
	Encrypt   int // symmetric: encrypted on one side, decrypted on the other, both ways
	MAC       int // HMAC: MAC made on the source verifies on the destination
	PublicKey int // asymmetric: the same public key on both sides
	// Skipped counts keys the source itself refused to use (a key policy
	// that does not allow the account root, imported material past its
	// date): they say nothing about the copy.
	Skipped int
	// WithoutRegion counts the keys of a store written before keys had
	// regions (acctkey/<account>/<id>): only a server moves them into its
	// region, at its first start, so no service can use them before.
	WithoutRegion int
}

// CheckKeys opens a service on src and one on dst with root and, for up to
// samples Enabled keys of each kind spread over the key list, checks that
// the destination does with the key what the source does. The keys are
// used as their account's root. A difference is an error wrapping
// ErrMismatch. It writes nothing to either store.
func CheckKeys(ctx context.Context, src, dst store.Store, root *keys.RootKey, samples int, log *slog.Logger) (Checked, error) {
	var c Checked
	if samples <= 0 {
		return c, nil
	}
	refs, withoutRegion, err := listKeys(ctx, src)
	if err != nil {
		return c, fmt.Errorf("list the source's keys: %w", err)
	}
	c.WithoutRegion = withoutRegion
	// Records authenticated under the root key (internal/authstore) are
	// read as a server reads them; a store from before, as it is.
	var state authstore.State
	if err := src.View(ctx, func(tx store.Tx) error {
		state, err = authstore.ReadState(tx, root)
		return err
	}); err != nil {
		return c, fmt.Errorf("the source: %w", err)
	}
	if state == authstore.Authenticated {
		k := authstore.NewKey(root)
		src, dst = authstore.Wrap(src, k), authstore.Wrap(dst, k)
	}
	from, err := service.New(service.Config{Store: src, RootKey: root, Region: checkRegion, Logger: log})
	if err != nil {
		return c, err
	}
	to, err := service.New(service.Config{Store: dst, RootKey: root, Region: checkRegion, Logger: log})
	if err != nil {
		return c, err
	}
	k := keyChecker{ctx: ctx, from: from, to: to}
	probes := 0
	for i := range spread(len(refs), samples) {
		if c.Encrypt >= samples && c.MAC >= samples && c.PublicKey >= samples || probes >= probesPerSample*samples {
			break
		}
		probes++
		k.caller = rootCaller(refs[i].account)
		k.caller.Region = refs[i].region
		d, err := from.DescribeKey(ctx, k.caller, &kmsapi.DescribeKeyInput{KeyID: refs[i].id})
		if err != nil {
			c.Skipped++
			continue
		}
		md := d.KeyMetadata
		if md.KeyState != string(keyrepo.StateEnabled) {
			continue
		}
		var counter *int
		var check func(*kmsapi.KeyMetadata) (bool, error)
		switch {
		case md.KeySpec == "SYMMETRIC_DEFAULT":
			counter, check = &c.Encrypt, k.encrypt
		case strings.HasPrefix(md.KeySpec, "HMAC_"):
			counter, check = &c.MAC, k.mac
		default:
			counter, check = &c.PublicKey, k.publicKey
		}
		if *counter >= samples {
			continue
		}
		used, err := check(md)
		if err != nil {
			return c, err
		}
		if used {
			*counter++
		} else {
			c.Skipped++
		}
	}
	return c, nil
}

// keyRef names a key: the account that owns it, its region and its id.
type keyRef struct{ account, region, id string }

// listKeys reads the index of every account's keys,
// acctkey/<account>/<region>/<id>, and counts apart those of a store
// written before keys had regions, acctkey/<account>/<id>: the first
// server that opens the store moves them into its region, and until then
// they cannot be used.
func listKeys(ctx context.Context, st store.Store) (refs []keyRef, withoutRegion int, err error) {
	prefix := []byte("acctkey/")
	var after []byte
	for {
		page, err := readPage(ctx, st, prefix, after, 1000)
		if err != nil || len(page) == 0 {
			return refs, withoutRegion, err
		}
		for _, r := range page {
			parts := strings.Split(string(r.key[len(prefix):]), "/")
			switch len(parts) {
			case 3:
				refs = append(refs, keyRef{parts[0], parts[1], parts[2]})
			case 2:
				withoutRegion++
			}
		}
		after = page[len(page)-1].key
	}
}

// rootCaller is the root of account, as the identity package makes it
// for a request signed with the root's access key.
func rootCaller(account string) service.Caller {
	arn := identity.RootARN(account)
	return service.Caller{AccountID: account, ARN: arn, Root: true,
		Principal: policy.Principal{ARN: arn, Account: account, UserID: account}}
}

// spread yields 0..n-1, each once, in an order that covers the whole range
// early: the first index of each of parts equal runs, then the second of
// each, and so on. Taking the first few keys that fit thus samples the
// whole list rather than its start.
func spread(n, parts int) iter.Seq[int] {
	return func(yield func(int) bool) {
		parts = min(parts, n)
		if parts <= 0 {
			return
		}
		width := (n + parts - 1) / parts
		for r := range width {
			for j := range parts {
				start, end := j*n/parts, (j+1)*n/parts
				if i := start + r; i < end && !yield(i) {
					return
				}
			}
		}
	}
}

// keyChecker uses one key on both sides. Each check returns false if the
// source refused to use the key, and an error wrapping ErrMismatch if the
// destination did not do what the source did.
type keyChecker struct {
	ctx      context.Context
	from, to *service.Service
	caller   service.Caller
}

var checkContext = map[string]string{"kms-migrate": "check"}

func (k *keyChecker) encrypt(md *kmsapi.KeyMetadata) (bool, error) {
	plaintext := make([]byte, 32)
	rand.Read(plaintext)
	for _, dir := range []struct {
		name     string
		enc, dec *service.Service
	}{{"source → destination", k.from, k.to}, {"destination → source", k.to, k.from}} {
		out, err := dir.enc.Encrypt(k.ctx, k.caller, &kmsapi.EncryptInput{KeyID: md.KeyID, Plaintext: plaintext, EncryptionContext: checkContext})
		if err != nil {
			if dir.enc == k.from {
				return false, nil
			}
			return false, mismatch(md, "Encrypt fails on the destination: %v", err)
		}
		got, err := dir.dec.Decrypt(k.ctx, k.caller, &kmsapi.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: checkContext})
		if err != nil {
			return false, mismatch(md, "a ciphertext does not decrypt (%s): %v", dir.name, err)
		}
		if !bytes.Equal(got.Plaintext, plaintext) || got.KeyID != md.Arn {
			return false, mismatch(md, "a ciphertext decrypts to something else (%s)", dir.name)
		}
	}
	return true, nil
}

func (k *keyChecker) mac(md *kmsapi.KeyMetadata) (bool, error) {
	if len(md.MacAlgorithms) == 0 {
		return false, nil
	}
	msg := make([]byte, 32)
	rand.Read(msg)
	alg := md.MacAlgorithms[0]
	out, err := k.from.GenerateMac(k.ctx, k.caller, &kmsapi.GenerateMacInput{KeyID: md.KeyID, Message: msg, MacAlgorithm: alg})
	if err != nil {
		return false, nil
	}
	v, err := k.to.VerifyMac(k.ctx, k.caller, &kmsapi.VerifyMacInput{KeyID: md.KeyID, Message: msg, MacAlgorithm: alg, Mac: out.Mac})
	if err != nil {
		return false, mismatch(md, "a MAC made on the source does not verify on the destination: %v", err)
	}
	if !v.MacValid {
		return false, mismatch(md, "a MAC made on the source does not verify on the destination")
	}
	return true, nil
}

func (k *keyChecker) publicKey(md *kmsapi.KeyMetadata) (bool, error) {
	in := &kmsapi.GetPublicKeyInput{KeyID: md.KeyID}
	want, err := k.from.GetPublicKey(k.ctx, k.caller, in)
	if err != nil {
		return false, nil
	}
	got, err := k.to.GetPublicKey(k.ctx, k.caller, in)
	if err != nil {
		return false, mismatch(md, "GetPublicKey fails on the destination: %v", err)
	}
	if !bytes.Equal(got.PublicKey, want.PublicKey) {
		return false, mismatch(md, "the public key differs on the destination")
	}
	return true, nil
}

func mismatch(md *kmsapi.KeyMetadata, format string, args ...any) error {
	return fmt.Errorf("%w: key %s: %s", ErrMismatch, md.Arn, fmt.Sprintf(format, args...))
}

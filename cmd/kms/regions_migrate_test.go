package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/openkms/kms/internal/authstore"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
)

// A data directory written before keys had regions: the built binary,
// started with --region, moves its keys into that region on the first
// start, and they keep working there, ciphertexts made before included.
func TestRegionsMigrateOldDataDir(t *testing.T) {
	dir := t.TempDir()
	s := startDev(t, dir) // makes the root key, credentials and store
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("stop: exit %d", code)
	}
	root, err := keys.ReadRootKeyFile(filepath.Join(dir, "root.key"))
	if err != nil {
		t.Fatal(err)
	}

	// Write a key as the older layout named its records, with its
	// material sealed for the old record name, and a ciphertext it made.
	kid := keys.NewID()
	id := kid.String()
	material := keys.GenerateMaterial()
	sym, err := keys.NewSymmetric(kid, 1, material)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := sym.Seal([]byte("made before regions"), map[string]string{"app": "old"})
	if err != nil {
		t.Fatal(err)
	}
	const acct = "111122223333"
	now := time.Now().UTC()
	js := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ver := "keyver/" + id + "/00000001"
	old := map[string][]byte{
		"key/" + id: js(map[string]any{"v": 1, "id": id, "account": acct, "created": now, "description": "from before",
			"keySpec": "SYMMETRIC_DEFAULT", "keyUsage": "ENCRYPT_DECRYPT", "origin": "AWS_KMS", "state": "Enabled",
			"policy":         `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`,
			"currentVersion": 1}),
		ver:                                js(map[string]any{"v": 1, "version": 1, "materialId": "m", "created": now, "sealed": root.Seal([]byte(ver), material)}),
		"acctkey/" + acct + "/" + id:       nil,
		"alias/" + acct + "/alias/before":  js(map[string]any{"v": 1, "name": "alias/before", "keyId": id, "created": now, "updated": now}),
		"keyalias/" + id + "/alias/before": nil,
	}
	st, err := boltstore.Open(filepath.Join(dir, "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(t.Context(), func(tx store.Tx) error {
		// Nor had stores then their material bound to their keys, nor
		// their records authenticated.
		if err := asBeforeAuthentication(tx, root); err != nil {
			return err
		}
		for _, mark := range []string{"meta/key-layout", "meta/material-binding", "meta/principal-binding"} {
			if err := tx.Delete([]byte(mark)); err != nil {
				return err
			}
		}
		for k, v := range old {
			if err := tx.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}

	s = startServer(t, dir, baseEnv(), "--dev", "--region", "eu-west-1")
	waitFor(t, 3*time.Second, "the log of the move", func() error { // the log is written in batches
		if !strings.Contains(s.stderr.String(), "key records moved into their region") {
			return fmt.Errorf("the server does not say it moved the records:\n%s", s.stderr.String())
		}
		if !strings.Contains(s.stderr.String(), `msg="key material bound to its keys' spec, usage and origin" versions=1`) {
			return fmt.Errorf("the server does not say it bound the key's material:\n%s", s.stderr.String())
		}
		if !strings.Contains(s.stderr.String(), `msg="the key store's records are now authenticated under the root key"`) {
			return fmt.Errorf("the server does not say it authenticated the records:\n%s", s.stderr.String())
		}
		return nil
	})
	ctx := testCtx(t)
	eu := s.clientIn(t, "eu-west-1")
	dec, err := eu.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: map[string]string{"app": "old"}})
	noErr(t, err, "Decrypt in eu-west-1 of a ciphertext made before regions")
	if string(dec.Plaintext) != "made before regions" || aws.ToString(dec.KeyId) != "arn:aws:kms:eu-west-1:"+acct+":key/"+id {
		t.Fatalf("Decrypt = %q with %s", dec.Plaintext, aws.ToString(dec.KeyId))
	}
	d, err := eu.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/before")})
	noErr(t, err, "DescribeKey by the old alias")
	if aws.ToString(d.KeyMetadata.Description) != "from before" {
		t.Fatalf("the old key: %+v", d.KeyMetadata)
	}
	_, err = s.clientIn(t, "us-east-1").DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
	if apiErrorCode(err) != "NotFoundException" {
		t.Fatalf("the moved key in us-east-1: %v", err)
	}
}

// asBeforeAuthentication makes the store of tx one from before its records
// were authenticated (internal/authstore): every record without its tag,
// and the root key check record as it was then.
func asBeforeAuthentication(tx store.Tx, root *keys.RootKey) error {
	k := authstore.NewKey(root)
	type record struct{ name, value []byte }
	var all []record
	err := tx.Scan(nil, nil, func(name, v []byte) (bool, error) {
		if authstore.Exempt(name) {
			return true, nil
		}
		v, err := k.Open(name, v)
		all = append(all, record{bytes.Clone(name), bytes.Clone(v)})
		return err == nil, err
	})
	if err != nil {
		return err
	}
	for _, r := range all {
		if err := tx.Put(r.name, r.value); err != nil {
			return err
		}
	}
	return tx.Put(keys.RootCheckRecord, root.Seal(keys.RootCheckRecord, []byte("openkms root key check")))
}

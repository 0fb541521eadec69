package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
)

// rawEdit returns an edit of a closed store that runs fn on its records as
// they are stored, tags and all: what whoever can write kms.db (or the
// PostgreSQL database) but has no root key can do.
func rawEdit(t *testing.T, fn func(tx store.Tx) error) func(path string) {
	return func(path string) {
		t.Helper()
		st, err := boltstore.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := st.Update(context.Background(), fn); err != nil {
			t.Fatal(err)
		}
	}
}

// replaceIn replaces old with new in the stored value of the record name.
func replaceIn(tx store.Tx, name []byte, old, new string) error {
	v, err := tx.Get(name)
	if err != nil {
		return err
	}
	if !bytes.Contains(v, []byte(old)) {
		return errors.New("the record does not hold " + old)
	}
	return tx.Put(name, bytes.ReplaceAll(v, []byte(old), []byte(new)))
}

// Whoever can write the store but has no root key cannot change who may
// use a key: a key policy edited in the store to let another account in,
// or an IAM user's access key edited to belong to the account's root, is
// refused with a 500 KMSInternalException, where before the edit was
// obeyed. The records nobody touched still serve.
func TestE2EStoreEditsOutsideTheServer(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	const other = "444455556666"
	otherRoot := e.clientAs(t, other)
	victim, untouched := e.newKey(t), e.newKey(t)
	blob := e.encrypt(t, untouched, []byte("still here"), nil).CiphertextBlob

	rootIAM := e.iamClient(e.creds.ID, e.creds.Secret, "")
	if _, err := rootIAM.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("mallory")}); err != nil {
		t.Fatal(err)
	}
	ak, err := rootIAM.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("mallory")})
	if err != nil {
		t.Fatal(err)
	}
	akid, secret := aws.ToString(ak.AccessKey.AccessKeyId), aws.ToString(ak.AccessKey.SecretAccessKey)
	mallory := e.clientWith(akid, secret, "")
	if _, err := mallory.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(untouched), Plaintext: []byte("x")}); httpStatus(err) != http.StatusBadRequest {
		t.Fatalf("mallory's Encrypt before any edit: %v, want AccessDeniedException", err)
	}
	if _, err := otherRoot.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(e.keyARN(victim)), Plaintext: []byte("x")}); httpStatus(err) != http.StatusBadRequest {
		t.Fatalf("the other account's Encrypt before any edit: %v, want AccessDeniedException", err)
	}

	e = e.reopenEdited(t, rawEdit(t, func(tx store.Tx) error {
		// The key policy's principal: this account's root becomes the other's.
		if err := replaceIn(tx, keyrepo.KeyKey(e2eRegion, victim), "arn:aws:iam::"+e2eAccount+":root", "arn:aws:iam::"+other+":root"); err != nil {
			return err
		}
		// mallory's access key becomes the root's.
		if err := replaceIn(tx, []byte("iam/accesskey/"+akid), `"userName":"mallory",`, ""); err != nil {
			return err
		}
		return replaceIn(tx, []byte("iam/accesskey/"+akid), "user/mallory", "root")
	}))
	internal := func(who string, err error) {
		t.Helper()
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "KMSInternalException" || httpStatus(err) != http.StatusInternalServerError {
			t.Errorf("%s after the edit: %v, want a 500 KMSInternalException", who, err)
		}
	}
	otherRoot = e.clientAs(t, other)
	_, err = otherRoot.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(e.keyARN(victim)), Plaintext: []byte("x")})
	internal("the other account's Encrypt with the edited key", err)
	_, err = e.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(victim)})
	internal("DescribeKey of the edited key", err)
	mallory = e.clientWith(akid, secret, "")
	_, err = mallory.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(untouched), Plaintext: []byte("x")})
	if err == nil {
		t.Error("mallory's Encrypt with her access key edited to the root's succeeded")
	}
	_, err = mallory.ListKeys(ctx, &kms.ListKeysInput{})
	if err == nil {
		t.Error("mallory's ListKeys with her access key edited to the root's succeeded")
	}
	if dec := e.decrypt(t, blob, nil); string(dec.Plaintext) != "still here" {
		t.Errorf("Decrypt with the untouched key = %q", dec.Plaintext)
	}
}

// A key record edited outside the server fails what needs that key, and
// only that: the maintenance round still deletes the other keys past
// their deletion date, where the one record that did not read stopped
// the whole round (and the keys' material stayed in the store until a
// call came for them).
func TestE2EStoreEditedKeyKeepsMaintenanceGoing(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	edited, doomed := e.newKey(t), e.newKey(t)
	for _, id := range []string{edited, doomed} {
		if _, err := e.client.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)}); err != nil {
			t.Fatal(err)
		}
	}
	e = e.reopenEdited(t, rawEdit(t, func(tx store.Tx) error {
		// Its deletion cancelled in the clear.
		return replaceIn(tx, keyrepo.KeyKey(e2eRegion, edited), `"state":"PendingDeletion"`, `"state":"Enabled"`)
	}))
	e.clock.Advance(7*24*time.Hour + time.Second)
	e.svc.Maintain(ctx) // its error names the edited record
	// Looked at in the store, before any call settles the key itself.
	err := e.store.View(ctx, func(tx store.Tx) error {
		_, err := tx.Get(keyrepo.KeyKey(e2eRegion, doomed))
		return err
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the key past its deletion date is still stored after the maintenance round: %v", err)
	}

	_, err = e.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(doomed)})
	expectAPIErrorCode(t, err, "NotFoundException")
	_, err = e.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(edited)})
	if httpStatus(err) != http.StatusInternalServerError {
		t.Errorf("DescribeKey of the edited key: %v, want a 500 KMSInternalException", err)
	}
}

// An index entry made up outside the server (a key scheduled for deletion
// that no call scheduled) is left out of the maintenance round like an
// edited key record, and does not stop it: the key past its deletion date
// is still deleted.
func TestE2EStoreMadeUpIndexEntryKeepsMaintenanceGoing(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	doomed := e.newKey(t)
	if _, err := e.client.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(doomed), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	e = e.reopenEdited(t, rawEdit(t, func(tx store.Tx) error {
		// Named to come first in the index, and stored without a tag.
		return tx.Put(keyrepo.PendingDeletionKey(e2eRegion, "00000000-0000-0000-0000-000000000000"), nil)
	}))
	e.clock.Advance(7*24*time.Hour + time.Second)
	e.svc.Maintain(ctx) // its error names the made-up entry
	err := e.store.View(ctx, func(tx store.Tx) error {
		_, err := tx.Get(keyrepo.KeyKey(e2eRegion, doomed))
		return err
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the key past its deletion date is still stored after the maintenance round: %v", err)
	}
}

// An import token record made up outside the server does not keep the
// maintenance round from deleting the import tokens past their use.
func TestE2EStoreMadeUpImportTokenKeepsTokensExpiring(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	if _, err := e.client.GetParametersForImport(ctx, &kms.GetParametersForImportInput{
		KeyId: aws.String(e.newExternalKey(t)), WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048,
	}); err != nil {
		t.Fatal(err)
	}
	madeUp := append(slices.Clone(keyrepo.ImportTokenPrefix), '!') // first in the index
	e = e.reopenEdited(t, rawEdit(t, func(tx store.Tx) error { return tx.Put(madeUp, []byte("{}")) }))
	e.clock.Advance(49 * time.Hour) // past the token's validity and the day after it
	e.svc.Maintain(ctx)             // its error names the made-up record
	var left []string
	unread := 0
	err := e.store.View(ctx, func(tx store.Tx) error {
		left, unread = nil, 0
		return store.ScanReadable(tx, keyrepo.ImportTokenPrefix, nil, func(k, _ []byte) (bool, error) {
			left = append(left, string(k))
			return true, nil
		}, func(error) { unread++ })
	})
	if err != nil || len(left) != 0 || unread != 1 {
		t.Errorf("after the maintenance round, import token records %q and %d that do not read (%v), want only the made-up one", left, unread, err)
	}
}

package main_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
)

// A deleted access key's sealed secret is gone from kms.db after the
// server's next maintenance round (the first runs as it starts: the
// erasure is marked in the store, and survives the restart), and the
// keys that stay work through it.
func TestErasedSecretLeavesKmsDB(t *testing.T) {
	ctx := testCtx(t)
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "kms.db")
	s := startDev(t, dir)
	id, secret := devCredentials(t, dir)
	ic := iamClient(s, id, secret)
	_, err := ic.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("leaving")})
	noErr(t, err, "CreateUser")
	ak, err := ic.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("leaving")})
	noErr(t, err, "CreateAccessKey")
	akID := aws.ToString(ak.AccessKey.AccessKeyId)
	c := s.client(t)
	key, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("kept")})
	noErr(t, err, "Encrypt")
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("the dev server exited %d on SIGTERM", code)
	}
	rec, err := boltstore.ReadValue(path, []byte("iam/accesskey/"+akID), time.Second)
	noErr(t, err, "read the access key's record")
	m := regexp.MustCompile(`"sealedSecret":"([A-Za-z0-9+/=]{20,})"`).FindSubmatch(rec)
	if m == nil {
		t.Fatalf("no sealed secret in the access key's record %q", rec)
	}
	sealed := m[1]

	s = startDev(t, dir)
	_, err = iamClient(s, id, secret).DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("leaving"), AccessKeyId: ak.AccessKey.AccessKeyId})
	noErr(t, err, "DeleteAccessKey")
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("the dev server exited %d on SIGTERM", code)
	}
	if marks := erasedMarks(t, path); len(marks) == 0 {
		t.Fatal("the erasure is not marked in kms.db")
	}

	s = startDev(t, dir)
	s.waitLog(regexp.MustCompile(`compacted the key store`), startTimeout)
	c = s.client(t)
	dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	noErr(t, err, "Decrypt after the compaction")
	if string(dec.Plaintext) != "kept" {
		t.Fatalf("Decrypt after the compaction: %q", dec.Plaintext)
	}
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("kept")})
	noErr(t, err, "Encrypt after the compaction")
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("the dev server exited %d on SIGTERM", code)
	}
	raw, err := os.ReadFile(path)
	noErr(t, err, "read kms.db")
	if bytes.Contains(raw, sealed) {
		t.Error("kms.db still holds the deleted access key's sealed secret")
	}
	if marks := erasedMarks(t, path); len(marks) != 0 {
		t.Errorf("the erasure's marks after the compaction: %q", marks)
	}
}

// erasedMarks returns the erasure marks (store.Erased) of the kms.db at
// path, which no server holds.
func erasedMarks(t *testing.T, path string) []store.Mark {
	t.Helper()
	st, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	marks, err := store.Erased(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	return marks
}

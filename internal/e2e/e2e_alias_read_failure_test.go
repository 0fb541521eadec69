package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"

	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/testsupport"
)

// aliasReadFailing is a store whose scans of a key's alias names fail
// while failing is set, as a read fails when PostgreSQL is restarted or
// refuses a connection.
type aliasReadFailing struct {
	store.Store
	failing atomic.Bool
}

func (s *aliasReadFailing) View(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.View(ctx, func(tx store.Tx) error { return fn(aliasScanFailing{tx, s}) })
}

type aliasScanFailing struct {
	store.Tx
	s *aliasReadFailing
}

func (tx aliasScanFailing) Scan(prefix, after []byte, fn func(k, v []byte) (bool, error)) error {
	if tx.s.failing.Load() && bytes.HasPrefix(prefix, []byte("keyalias/")) {
		return errors.New("the database is not reachable")
	}
	return tx.Tx.Scan(prefix, after, fn)
}

// A key policy that refuses a key's use by one of its aliases
// (kms:ResourceAliases) refuses it still when the aliases cannot be read:
// the call fails with KMSInternalException, and is not decided as if the
// key had no alias, which would skip the Deny.
func TestE2EResourceAliasesUnreadableRefuses(t *testing.T) {
	rk := make([]byte, 32)
	var st *aliasReadFailing
	e := openKMSEnvWith(t, filepath.Join(t.TempDir(), "kms.db"), rk, testsupport.NewClock(e2eStart), func(c *service.Config) {
		st = &aliasReadFailing{Store: c.Store}
		c.Store = st
	})
	ctx := context.Background()
	alice := e.newUser(t, "alice")
	id := e.newKey(t)
	_, err := e.client.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(id), Policy: aws.String(`{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + e2eAccount + `:root"},"Action":"kms:*","Resource":"*"},
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + e2eAccount + `:user/alice"},"Action":"kms:Encrypt","Resource":"*"},
		{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"kms:Encrypt","Resource":"*",
		 "Condition":{"ForAnyValue:StringEquals":{"kms:ResourceAliases":"alias/frozen"}}}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	encrypt := func() error {
		_, err := alice.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x")})
		return err
	}
	if err := encrypt(); err != nil {
		t.Fatalf("Encrypt before the alias: %v", err)
	}
	e.createAlias(t, "alias/frozen", id)
	expectAPIErrorCode(t, encrypt(), "AccessDeniedException")

	st.failing.Store(true)
	var ae smithy.APIError
	if err := encrypt(); !errors.As(err, &ae) || ae.ErrorCode() != "KMSInternalException" || httpStatus(err) != http.StatusInternalServerError {
		t.Fatalf("Encrypt with the aliases unreadable: %v, want a 500 KMSInternalException", err)
	}
	_, err = alice.kms.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(id), NumberOfBytes: aws.Int32(32)})
	if err == nil {
		t.Error("GenerateDataKey went through with the key's aliases unread")
	}
	st.failing.Store(false)
	expectAPIErrorCode(t, encrypt(), "AccessDeniedException")
}

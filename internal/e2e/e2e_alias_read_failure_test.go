package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

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
	// blocking, when set, holds each scan of alias names (after a send
	// on started) until its transaction's context is done, as a table
	// locked by another client holds a read, and then sends on ended; or
	// until release is closed.
	blocking                bool
	started, ended, release chan struct{}
}

func (s *aliasReadFailing) View(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.View(ctx, func(tx store.Tx) error { return fn(aliasScanFailing{tx, s, ctx}) })
}

type aliasScanFailing struct {
	store.Tx
	s   *aliasReadFailing
	ctx context.Context
}

func (tx aliasScanFailing) Scan(prefix, after []byte, fn func(k, v []byte) (bool, error)) error {
	if !bytes.HasPrefix(prefix, []byte("keyalias/")) {
		return tx.Tx.Scan(prefix, after, fn)
	}
	if tx.s.failing.Load() {
		return errors.New("the database is not reachable")
	}
	if tx.s.blocking {
		tx.s.started <- struct{}{}
		select {
		case <-tx.ctx.Done():
			tx.s.ended <- struct{}{}
			return tx.ctx.Err()
		case <-tx.s.release:
			return errors.New("released")
		}
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

// A read of a key's aliases for kms:ResourceAliases ends with its call: a
// call whose client went away (or whose --call-timeout ran out) while the
// read waited (for a table another client keeps locked) does not leave
// it waiting, holding one of the store's connections.
func TestE2EResourceAliasesReadEndsWithItsCall(t *testing.T) {
	rk := make([]byte, 32)
	var st *aliasReadFailing
	e := openKMSEnvWith(t, filepath.Join(t.TempDir(), "kms.db"), rk, testsupport.NewClock(e2eStart), func(c *service.Config) {
		st = &aliasReadFailing{Store: c.Store}
		c.Store = st
	})
	id := e.newKey(t)
	_, err := e.client.PutKeyPolicy(context.Background(), &kms.PutKeyPolicyInput{KeyId: aws.String(id), Policy: aws.String(`{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + e2eAccount + `:root"},"Action":"kms:*","Resource":"*"},
		{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"kms:Encrypt","Resource":"*",
		 "Condition":{"ForAnyValue:StringEquals":{"kms:ResourceAliases":"alias/frozen"}}}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	st.started, st.ended, st.release = make(chan struct{}, 1), make(chan struct{}, 1), make(chan struct{})
	st.blocking = true
	t.Cleanup(func() { close(st.release) }) // before the server closes, which waits for its calls
	ctx, cancel := context.WithCancel(context.Background())
	called := make(chan error, 1)
	go func() {
		_, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x")})
		called <- err
	}()
	<-st.started
	cancel()
	if err := <-called; err == nil {
		t.Fatal("Encrypt answered while its aliases could not be read")
	}
	select {
	case <-st.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the read of the aliases still waits 10 s after its call ended")
	}
}

// Package identity keeps the principals that may call the service and their
// access keys, and tells the protocol layer who a request is from.
//
// Limits: only each account's root exists so far, and requests are not yet
// authenticated: Permissive takes every request, signed or not, as the
// account root. Access keys are already stored the way SigV4 verification
// needs them, with the secret sealed under the root key.
package identity

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
)

// AccessKey is an access key id and its secret.
type AccessKey struct {
	ID     string
	Secret string
}

type accessKeyRecord struct {
	V       int       `json:"v"`
	ID      string    `json:"id"`
	Account string    `json:"account"`
	ARN     string    `json:"arn"`
	Created time.Time `json:"created"`
	Sealed  []byte    `json:"sealedSecret"`
}

// Records:
//
//	iam/accesskey/<access-key-id>      accessKeyRecord
//	iam/rootkey/<account>              the account root's first access key id
func accessKeyKey(id string) []byte    { return []byte("iam/accesskey/" + id) }
func rootKeyKey(account string) []byte { return []byte("iam/rootkey/" + account) }

// RootARN is the ARN of an account's root principal.
func RootARN(account string) string { return "arn:aws:iam::" + account + ":root" }

// BootstrapRoot returns the access key of account's root, creating the
// account's first one if it has none. It is idempotent: a restarted server
// gets the same key back.
func BootstrapRoot(ctx context.Context, st store.Store, root *keys.RootKey, account string) (AccessKey, error) {
	var out AccessKey
	err := st.Update(ctx, func(tx store.Tx) error {
		if id, err := tx.Get(rootKeyKey(account)); err == nil {
			b, err := tx.Get(accessKeyKey(string(id)))
			if err != nil {
				return fmt.Errorf("access key %s of the account root: %w", id, err)
			}
			var rec accessKeyRecord
			if err := json.Unmarshal(b, &rec); err != nil {
				return fmt.Errorf("access key record %s is corrupt: %w", id, err)
			}
			secret, err := root.Open(accessKeyKey(rec.ID), rec.Sealed)
			if err != nil {
				return errors.New("the stored access key secret does not open under this root key")
			}
			out = AccessKey{ID: rec.ID, Secret: string(secret)}
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		out = newAccessKey()
		rec := accessKeyRecord{V: 1, ID: out.ID, Account: account, ARN: RootARN(account), Created: time.Now().UTC(),
			Sealed: root.Seal(accessKeyKey(out.ID), []byte(out.Secret))}
		b, err := json.Marshal(&rec)
		if err != nil {
			return err
		}
		if err := tx.Put(accessKeyKey(out.ID), b); err != nil {
			return err
		}
		return tx.Put(rootKeyKey(account), []byte(out.ID))
	})
	return out, err
}

// newAccessKey makes an access key in AWS's shape: a 20-character id
// starting with AKIA and a 40-character secret.
func newAccessKey() AccessKey {
	id := make([]byte, 10)
	rand.Read(id)
	secret := make([]byte, 30)
	rand.Read(secret)
	return AccessKey{
		ID:     "AKIA" + base32.StdEncoding.EncodeToString(id),
		Secret: base64.StdEncoding.EncodeToString(secret),
	}
}

// Principal is who a request is from.
type Principal struct {
	Account string // 12-digit account id
	ARN     string
}

// Permissive takes every request as the root of one account.
type Permissive struct {
	Account string
}

// Authenticate returns the principal a request is made as.
func (p Permissive) Authenticate(*http.Request, []byte) (Principal, error) {
	return Principal{Account: p.Account, ARN: RootARN(p.Account)}, nil
}

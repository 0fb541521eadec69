package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/store"
)

// Whoever can write the store cannot turn a key the service made into one
// that takes imported material: a key record's origin changed to EXTERNAL
// (stored in the clear) leaves the key's material, bound to AWS_KMS,
// unloadable, and every call on the key fails instead of opening the
// import path. The same for a spec changed to another one.
func TestE2EKeyAttributesChangedInTheStore(t *testing.T) {
	t.Parallel()
	for _, edit := range []struct{ field, value string }{
		{"origin", "EXTERNAL"},
		{"keySpec", "HMAC_256"},
	} {
		t.Run(edit.field, func(t *testing.T) {
			t.Parallel()
			e := newKMSEnv(t)
			ctx := context.Background()
			id := e.newKey(t)
			e = e.reopenEdited(t, func(path string) {
				editStore(t, path, e.root, func(tx store.Tx) error {
					name := keyrepo.KeyKey(e2eRegion, id)
					v, err := tx.Get(name)
					if err != nil {
						return err
					}
					var m map[string]any
					if err := json.Unmarshal(v, &m); err != nil {
						return err
					}
					m[edit.field] = edit.value
					b, _ := json.Marshal(m)
					return tx.Put(name, b)
				})
			})
			internal := func(op string, err error) {
				t.Helper()
				var ae smithy.APIError
				if !errors.As(err, &ae) || ae.ErrorCode() != "KMSInternalException" || httpStatus(err) != http.StatusInternalServerError {
					t.Errorf("%s on a key whose record was changed in the store: %v, want a 500 KMSInternalException", op, err)
				}
			}
			_, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x")})
			internal("Encrypt", err)
			_, err = e.client.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: aws.String(id),
				WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
			internal("GetParametersForImport", err)
		})
	}
}

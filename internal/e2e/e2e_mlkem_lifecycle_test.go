package e2e_test

// ML-KEM keys across accounts, regions and the store's life: a key
// policy decides another account's use, a replica decapsulates what its
// primary's public key encapsulated, imported material is refused without
// a trace, and the private key is sealed at rest and survives a root key
// rotation and a backup restored elsewhere.

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/openkms/kms/internal/backup"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/rekey"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
)

const mlKEM = types.EncapsulationAlgorithmSpecMlKem

// mlkemRoundTrip encapsulates with enc's client and key and checks that
// dec's decapsulates the same secret.
func mlkemRoundTrip(t testing.TB, enc *kms.Client, encKey string, dec *kms.Client, decKey string) {
	t.Helper()
	ctx := context.Background()
	out, err := enc.Encapsulate(ctx, &kms.EncapsulateInput{KeyId: aws.String(encKey), EncapsulationAlgorithm: mlKEM})
	if err != nil {
		t.Fatalf("Encapsulate %s: %v", encKey, err)
	}
	got, err := dec.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(decKey), SharedSecretCiphertextBlob: out.SharedSecretCiphertextBlob, EncapsulationAlgorithm: mlKEM})
	if err != nil {
		t.Fatalf("Decapsulate %s: %v", decKey, err)
	}
	if !bytes.Equal(got.SharedSecret, out.SharedSecret) {
		t.Fatalf("Decapsulate %s recovered another secret than Encapsulate %s made", decKey, encKey)
	}
}

// Another account uses an ML-KEM key by its key ARN, or its alias ARN,
// when the key policy allows it, as AWS documents both operations; a
// bare key id names a key of the caller's own account.
func TestE2EMLKEMAnotherAccount(t *testing.T) {
	t.Parallel()
	e := asNewEnv(t)
	ctx := context.Background()
	const otherAccount = "444455556666"
	otherRoot := "arn:aws:iam::" + otherAccount + ":root"
	other := e.clientAs(t, otherAccount)
	id := e.asCreate(t, types.KeySpecMlKem768, asKEM)
	arn := e.keyARN(id)
	e.createAlias(t, "alias/kem-shared", id)
	enc, err := e.client.Encapsulate(ctx, &kms.EncapsulateInput{KeyId: aws.String(id), EncapsulationAlgorithm: mlKEM})
	if err != nil {
		t.Fatal(err)
	}

	for _, op := range []string{"Encapsulate", "Decapsulate"} {
		var err error
		if op == "Encapsulate" {
			_, err = other.Encapsulate(ctx, &kms.EncapsulateInput{KeyId: aws.String(arn), EncapsulationAlgorithm: mlKEM})
		} else {
			_, err = other.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(arn), SharedSecretCiphertextBlob: enc.SharedSecretCiphertextBlob, EncapsulationAlgorithm: mlKEM})
		}
		kpDenied(t, err, otherRoot, "kms:"+op, arn, kpNoResource("kms:"+op))
	}

	// The policy lets the other account encapsulate only.
	e.kpPutKeyPolicy(t, e.client, id, kpDoc(kpRootStmt(), kpAllow(otherRoot, "kms:Encapsulate")), false)
	mlkemRoundTrip(t, other, arn, e.client, id)
	_, err = other.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(arn), SharedSecretCiphertextBlob: enc.SharedSecretCiphertextBlob, EncapsulationAlgorithm: mlKEM})
	kpDenied(t, err, otherRoot, "kms:Decapsulate", arn, kpNoResource("kms:Decapsulate"))

	// Then both, by key ARN or alias ARN; a bare id or alias name is
	// looked for in the caller's account.
	e.kpPutKeyPolicy(t, e.client, id, kpDoc(kpRootStmt(), kpAllow(otherRoot, "kms:Encapsulate", "kms:Decapsulate")), false)
	mlkemRoundTrip(t, e.client, id, other, arn)
	mlkemRoundTrip(t, other, e.aliasARN("alias/kem-shared"), other, e.aliasARN("alias/kem-shared"))
	_, err = other.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(id), SharedSecretCiphertextBlob: enc.SharedSecretCiphertextBlob, EncapsulationAlgorithm: mlKEM})
	expectAPIError(t, err, "NotFoundException", "Key 'arn:aws:kms:"+e2eRegion+":"+otherAccount+":key/"+id+"' does not exist")
	_, err = other.Encapsulate(ctx, &kms.EncapsulateInput{KeyId: aws.String("alias/kem-shared"), EncapsulationAlgorithm: mlKEM})
	expectAPIErrorCode(t, err, "NotFoundException")
	// The policy says nothing of the other operations.
	_, err = other.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(arn)})
	kpDenied(t, err, otherRoot, "kms:GetPublicKey", arn, kpNoResource("kms:GetPublicKey"))

	// Another account's alias ARN answers as it does for
	// DeriveSharedSecret: the key it names, refused by that key's policy;
	// an alias that does not exist, not found, with the same message.
	agree := e.asCreate(t, types.KeySpecEccNistP256, asAgreement)
	e.createAlias(t, "alias/agree-shared", agree)
	_, err = other.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: aws.String(e.aliasARN("alias/agree-shared")),
		KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: []byte{1}})
	kpDenied(t, err, otherRoot, "kms:DeriveSharedSecret", e.keyARN(agree), kpNoResource("kms:DeriveSharedSecret"))
	kemOnly := e.asCreate(t, types.KeySpecMlKem512, asKEM)
	e.createAlias(t, "alias/kem-private", kemOnly)
	_, err = other.Encapsulate(ctx, &kms.EncapsulateInput{KeyId: aws.String(e.aliasARN("alias/kem-private")), EncapsulationAlgorithm: mlKEM})
	kpDenied(t, err, otherRoot, "kms:Encapsulate", e.keyARN(kemOnly), kpNoResource("kms:Encapsulate"))
	_, errDerive := other.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: aws.String(e.aliasARN("alias/none")),
		KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: []byte{1}})
	_, errDecap := other.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(e.aliasARN("alias/none")), SharedSecretCiphertextBlob: enc.SharedSecretCiphertextBlob, EncapsulationAlgorithm: mlKEM})
	want := expectAPIErrorCode(t, errDerive, "NotFoundException")
	if want != nil {
		expectAPIError(t, errDecap, "NotFoundException", want.ErrorMessage())
	}
}

// A multi-Region ML-KEM key and its replica hold the same key pair: the
// same public key, and each decapsulates what the other encapsulated.
func TestE2EMLKEMMultiRegion(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	asWatchLeaks(t, e)
	ctx := context.Background()
	c := e.regions()
	us, eu := c[e2eRegion], c[e2eRegion2]
	for _, mc := range mlkemCases {
		created, err := us.CreateKey(ctx, &kms.CreateKeyInput{MultiRegion: aws.Bool(true), KeySpec: mc.spec, KeyUsage: asKEM})
		if err != nil {
			t.Fatal(err)
		}
		id := aws.ToString(created.KeyMetadata.KeyId)
		rep, err := us.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String(e2eRegion2)})
		if err != nil {
			t.Fatalf("ReplicateKey of an %s key: %v", mc.spec, err)
		}
		rm := rep.ReplicaKeyMetadata
		if rm.KeySpec != mc.spec || rm.KeyUsage != asKEM || len(rm.EncapsulationAlgorithms) != 1 || rm.EncapsulationAlgorithms[0] != mlKEM {
			t.Errorf("%s replica: spec %s, usage %s, encapsulation algorithms %v", mc.spec, rm.KeySpec, rm.KeyUsage, rm.EncapsulationAlgorithms)
		}
		pubUS, err := us.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		pubEU, err := eu.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(id)})
		if err != nil || !bytes.Equal(pubUS.PublicKey, pubEU.PublicKey) {
			t.Fatalf("%s: the replica's public key differs from the primary's: %v", mc.spec, err)
		}
		mlkemRoundTrip(t, us, id, eu, id)
		mlkemRoundTrip(t, eu, arnIn(e2eRegion2, id), us, arnIn(e2eRegion, id))
		// A peer with the public key alone, and the replica.
		shared, ct := mlkemEncapsulate(t, mc.spec, mlkemPublic(t, mc.spec, pubUS.PublicKey))
		out, err := eu.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(id), SharedSecretCiphertextBlob: ct, EncapsulationAlgorithm: mlKEM})
		if err != nil || !bytes.Equal(out.SharedSecret, shared) || aws.ToString(out.KeyId) != arnIn(e2eRegion2, id) {
			t.Fatalf("%s: the replica's Decapsulate of a peer's ciphertext: %v", mc.spec, err)
		}
	}
}

// Importing material into an EXTERNAL ML-KEM key is refused from the
// start: GetParametersForImport makes no wrapping key pair and stores no
// import token that no import could use, and ImportKeyMaterial refuses
// whatever token and material it is given. The refusals leave the key as
// it was: pending import, without material, refusing every cryptographic
// operation.
func TestE2EMLKEMImportRefusedChangesNothing(t *testing.T) {
	t.Parallel()
	e := asNewEnv(t)
	ctx := context.Background()
	wrapper := e.newKey(t)
	// A valid token and wrapping key, of another EXTERNAL key.
	p := e.importParams(t, e.newExternalKey(t), types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048)
	for _, mc := range mlkemCases {
		ext := e.createKey(t, &kms.CreateKeyInput{KeySpec: mc.spec, KeyUsage: asKEM, Origin: types.OriginTypeExternal})
		id := aws.ToString(ext.KeyId)
		arn := e.keyARN(id)
		refusal := "Importing key material for " + string(mc.spec) + " keys is not supported by this server."
		materials, tokens := len(e.materials(t)), mlkemImportTokens(t, e)
		for _, spec := range []types.WrappingKeySpec{types.WrappingKeySpecRsa2048, types.WrappingKeySpecRsa4096} {
			_, err := e.client.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: aws.String(id),
				WrappingAlgorithm: types.AlgorithmSpecRsaAesKeyWrapSha256, WrappingKeySpec: spec})
			expectAPIError(t, err, "UnsupportedOperationException", refusal)
		}
		if n := mlkemImportTokens(t, e); n != tokens {
			t.Errorf("%s: the refused GetParametersForImport stored %d import tokens", mc.spec, n-tokens)
		}
		// Material of the right form: an ML-KEM data key pair's private key.
		pair, err := e.client.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: aws.String(wrapper), KeyPairSpec: types.DataKeyPairSpec(mc.spec)})
		if err != nil {
			t.Fatal(err)
		}
		for _, token := range [][]byte{p.ImportToken, []byte("not a token")} {
			_, err = e.client.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: aws.String(id), ImportToken: token,
				EncryptedKeyMaterial: wrapForImport(t, types.AlgorithmSpecRsaesOaepSha256, p.PublicKey, pair.PrivateKeyPlaintext),
				ExpirationModel:      types.ExpirationModelTypeKeyMaterialDoesNotExpire})
			expectAPIError(t, err, "UnsupportedOperationException", refusal)
		}
		e.expectPendingImport(t, id)
		if m := e.describe(t, id); m.CurrentKeyMaterialId != nil || m.ExpirationModel != "" {
			t.Errorf("%s: the refused import left material id %q, expiration model %q", mc.spec, aws.ToString(m.CurrentKeyMaterialId), m.ExpirationModel)
		}
		if after := len(e.materials(t)); after != materials {
			t.Errorf("%s: the refused import stored material: %d versions, %d before", mc.spec, after, materials)
		}
		msg := arn + " is pending import."
		_, err = e.client.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(id)})
		expectAPIError(t, err, "KMSInvalidStateException", msg)
		for _, dry := range []bool{false, true} {
			_, err = e.client.Encapsulate(ctx, &kms.EncapsulateInput{KeyId: aws.String(id), EncapsulationAlgorithm: mlKEM, DryRun: aws.Bool(dry)})
			expectAPIError(t, err, "KMSInvalidStateException", msg)
			_, err = e.client.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(id), SharedSecretCiphertextBlob: make([]byte, mc.ciphertext),
				EncapsulationAlgorithm: mlKEM, DryRun: aws.Bool(dry)})
			expectAPIError(t, err, "KMSInvalidStateException", msg)
		}
	}
	// The other key's token still imports into it.
	if _, err := e.client.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: p.KeyId, ImportToken: p.ImportToken,
		EncryptedKeyMaterial: wrapForImport(t, types.AlgorithmSpecRsaesOaepSha256, p.PublicKey, mustRandom(t, 32)),
		ExpirationModel:      types.ExpirationModelTypeKeyMaterialDoesNotExpire}); err != nil {
		t.Errorf("import into the symmetric EXTERNAL key: %v", err)
	}
}

// mlkemImportTokens counts the import tokens in e's store.
func mlkemImportTokens(t testing.TB, e *kmsEnv) int {
	t.Helper()
	n := 0
	err := e.store.View(context.Background(), func(tx store.Tx) error {
		return tx.Scan([]byte("importtoken/"), nil, func(k, v []byte) (bool, error) {
			n++
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The request's edges: a ciphertext that is not base64, empty or null;
// the algorithm in another case; malformed grant tokens; dry runs that
// fail as the call would; encryption context constraints on a grant.
func TestE2EMLKEMRequestEdges(t *testing.T) {
	t.Parallel()
	e := asNewEnv(t)
	ctx := context.Background()
	id := e.asCreate(t, types.KeySpecMlKem512, asKEM)
	arn := e.keyARN(id)
	enc, err := e.client.Encapsulate(ctx, &kms.EncapsulateInput{KeyId: aws.String(id), EncapsulationAlgorithm: mlKEM})
	if err != nil {
		t.Fatal(err)
	}
	ct := b64(enc.SharedSecretCiphertextBlob)
	dec := func(blob string) string {
		return `{"KeyId":"` + id + `","EncapsulationAlgorithm":"ML_KEM","SharedSecretCiphertextBlob":` + blob + `}`
	}
	expectRawError(t, e.rawCall(t, "Decapsulate", dec(`"!!not base64"`)), 400, "SerializationException", "A binary member is not valid base64.")
	expectRawError(t, e.rawCall(t, "Decapsulate", dec(`""`)), 400, "ValidationException",
		"1 validation error detected: Value at 'sharedSecretCiphertextBlob' failed to satisfy constraint: Member must have length greater than or equal to 1")
	expectRawError(t, e.rawCall(t, "Decapsulate", dec(`null`)), 400, "ValidationException",
		"1 validation error detected: Value null at 'sharedSecretCiphertextBlob' failed to satisfy constraint: Member must not be null")
	expectRawError(t, e.rawCall(t, "Decapsulate", dec(`"`+b64(make([]byte, 6144))+`"`)), 400, "InvalidCiphertextException", "-")
	for _, alg := range []string{"ml_kem", "Ml_Kem", "ML-KEM", "ML_KEM "} {
		want := "1 validation error detected: Value '" + alg + "' at 'encapsulationAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [ML_KEM]"
		expectRawError(t, e.rawCall(t, "Encapsulate", `{"KeyId":"`+id+`","EncapsulationAlgorithm":"`+alg+`"}`), 400, "ValidationException", want)
		expectRawError(t, e.rawCall(t, "Decapsulate", `{"KeyId":"`+id+`","EncapsulationAlgorithm":"`+alg+`","SharedSecretCiphertextBlob":"`+ct+`"}`), 400, "ValidationException", want)
	}
	for _, c := range []struct {
		tokens   []string
		code     string
		contains string
	}{
		{[]string{""}, "ValidationException", "Value '' at 'grantTokens.1.member' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{[]string{"not-a-grant-token"}, "InvalidGrantTokenException", "The grant token is not valid."},
		{make([]string, 11), "ValidationException", "at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 10"},
	} {
		_, err := e.client.Encapsulate(ctx, &kms.EncapsulateInput{KeyId: aws.String(id), EncapsulationAlgorithm: mlKEM, GrantTokens: c.tokens})
		if apiErr := expectAPIErrorCode(t, err, c.code); apiErr != nil && !bytes.Contains([]byte(apiErr.ErrorMessage()), []byte(c.contains)) {
			t.Errorf("Encapsulate with grant tokens %q: %q", c.tokens, apiErr.ErrorMessage())
		}
		_, err = e.client.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(id), SharedSecretCiphertextBlob: enc.SharedSecretCiphertextBlob,
			EncapsulationAlgorithm: mlKEM, GrantTokens: c.tokens, DryRun: aws.Bool(true)})
		if apiErr := expectAPIErrorCode(t, err, c.code); apiErr != nil && !bytes.Contains([]byte(apiErr.ErrorMessage()), []byte(c.contains)) {
			t.Errorf("Decapsulate with grant tokens %q: %q", c.tokens, apiErr.ErrorMessage())
		}
	}

	// A dry run fails where the call would: denied, then disabled (a
	// wrong length too), then pending deletion.
	holder := e.kpUser(t, "holder", "")
	_, err = holder.kms.Encapsulate(ctx, &kms.EncapsulateInput{KeyId: aws.String(arn), EncapsulationAlgorithm: mlKEM, DryRun: aws.Bool(true)})
	kpDenied(t, err, holder.arn, "kms:Encapsulate", arn, kpNoIdentity("kms:Encapsulate"))
	_, err = holder.kms.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(arn), SharedSecretCiphertextBlob: []byte{1}, EncapsulationAlgorithm: mlKEM, DryRun: aws.Bool(true)})
	kpDenied(t, err, holder.arn, "kms:Decapsulate", arn, kpNoIdentity("kms:Decapsulate"))
	for _, op := range []types.GrantOperation{types.GrantOperationEncapsulate, types.GrantOperationDecapsulate} {
		for _, cons := range []*types.GrantConstraints{
			{EncryptionContextSubset: map[string]string{"purpose": "kem"}},
			{EncryptionContextEquals: map[string]string{"purpose": "kem"}},
		} {
			_, err := e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(id), GranteePrincipal: aws.String(holder.arn), Operations: grOps(op), Constraints: cons})
			expectAPIError(t, err, "ValidationException", "Encryption context grant constraints are not valid for a KMS key with key spec ML_KEM_512: its operations take no encryption context.")
		}
	}
	if gs := grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(id)}); len(gs) != 0 {
		t.Errorf("refused CreateGrant calls left %d grants", len(gs))
	}
	e.disable(t, id)
	for _, blob := range [][]byte{enc.SharedSecretCiphertextBlob, {1}} {
		_, err = e.client.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(id), SharedSecretCiphertextBlob: blob, EncapsulationAlgorithm: mlKEM, DryRun: aws.Bool(true)})
		expectAPIError(t, err, "DisabledException", arn+" is disabled.")
	}
	_, err = e.client.Encapsulate(ctx, &kms.EncapsulateInput{KeyId: aws.String(id), EncapsulationAlgorithm: mlKEM, DryRun: aws.Bool(true)})
	expectAPIError(t, err, "DisabledException", arn+" is disabled.")
	e.scheduleDeletion(t, id, 7)
	_, err = e.client.Encapsulate(ctx, &kms.EncapsulateInput{KeyId: aws.String(id), EncapsulationAlgorithm: mlKEM, DryRun: aws.Bool(true)})
	expectAPIError(t, err, "KMSInvalidStateException", arn+" is pending deletion.")
	_, err = e.client.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(id), SharedSecretCiphertextBlob: enc.SharedSecretCiphertextBlob, EncapsulationAlgorithm: mlKEM, DryRun: aws.Bool(true)})
	expectAPIError(t, err, "KMSInvalidStateException", arn+" is pending deletion.")
}

// An ML-KEM key's private key is sealed at rest: no seed, and no PKCS#8
// form of one, is in the store's file. A root key rotation and a backup
// restored into another directory keep it: Decapsulate then recovers a
// secret encapsulated before.
func TestE2EMLKEMSealedRotatedAndRestored(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	type sent struct {
		id         string
		shared, ct []byte
	}
	var all []sent
	for _, mc := range mlkemCases {
		id := e.asCreate(t, mc.spec, asKEM)
		out, err := e.client.Encapsulate(ctx, &kms.EncapsulateInput{KeyId: aws.String(id), EncapsulationAlgorithm: mlKEM})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, sent{id, out.SharedSecret, out.SharedSecretCiphertextBlob})
	}
	var seeds [][]byte
	for _, m := range e.materials(t) {
		if seed := asMLKEMSeed(m); seed != nil {
			seeds = append(seeds, m, seed)
		}
	}
	if len(seeds) != 2*len(mlkemCases) {
		t.Fatalf("found %d ML-KEM materials in the store, want %d", len(seeds)/2, len(mlkemCases))
	}
	decapsulateAll := func(t *testing.T, c *kms.Client, when string) {
		t.Helper()
		for _, s := range all {
			out, err := c.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(s.id), SharedSecretCiphertextBlob: s.ct, EncapsulationAlgorithm: mlKEM})
			if err != nil || !bytes.Equal(out.SharedSecret, s.shared) {
				t.Fatalf("%s: Decapsulate of a ciphertext made before: %v", when, err)
			}
		}
	}

	// Stop the server; read the file as it is on disk.
	e.srv.Close()
	e.storeClosed = true
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range seeds {
		if bytes.Contains(raw, s) || bytes.Contains(raw, []byte(b64(s))) {
			t.Fatalf("the store's file holds ML-KEM private key material in the clear: %x...", s[:8])
		}
	}

	// A backup, taken with the old root key.
	oldRoot := e.root
	dataDir := filepath.Dir(e.path)
	bak := filepath.Join(t.TempDir(), "kms.kmsbak")
	rootFor := func(context.Context, store.Store) (*keys.RootKey, error) { return oldRoot, nil }
	if err := backup.Write(ctx, backup.Where{DataDir: dataDir}, bak, rootFor, io.Discard); err != nil {
		t.Fatalf("backup: %v", err)
	}

	// The root key rotated, the server restarted with the new one.
	newRK := mustRandom(t, 32)
	newRoot, err := keys.NewRootKey(newRK)
	if err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(e.path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = rekey.Rotate(ctx, st, oldRoot, newRoot, nil)
	st.Close()
	if err != nil {
		t.Fatalf("root key rotation: %v", err)
	}
	rotated := openKMSEnv(t, e.path, newRK, e.clock)
	asWatchLeaks(t, rotated)
	decapsulateAll(t, rotated.client, "after the root key rotation")

	// The backup restored into another directory, with the old root key.
	restoredDir := filepath.Join(t.TempDir(), "restored")
	if err := backup.Restore(ctx, bak, backup.Where{DataDir: restoredDir}, oldRoot, backup.RestoreOptions{}, io.Discard); err != nil {
		t.Fatalf("restore: %v", err)
	}
	restored := openKMSEnv(t, filepath.Join(restoredDir, "kms.db"), e.rootKey, e.clock)
	asWatchLeaks(t, restored)
	decapsulateAll(t, restored.client, "after the restore")
}

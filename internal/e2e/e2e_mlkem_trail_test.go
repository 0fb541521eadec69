package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// No record of the audit trail holds a shared secret, an encapsulated
// one, or an ML-KEM private key, in any encoding, whether the call
// succeeded, failed or was a dry run; and only a call that used the key
// is its last usage, naming the record of that call.
func TestE2EMLKEMTrailHoldsNoSecrets(t *testing.T) {
	t.Parallel()
	e, logPath := newAuditedEnv(t)
	ctx := context.Background()
	id := e.asCreate(t, types.KeySpecMlKem1024, asKEM)
	wrapper := e.newKey(t)
	var secrets [][]byte
	keep := func(bs ...[]byte) {
		for _, b := range bs {
			secrets = append(secrets, b)
		}
	}

	e.clock.Advance(time.Minute)
	enc, err := e.client.Encapsulate(ctx, &kms.EncapsulateInput{KeyId: aws.String(id), EncapsulationAlgorithm: mlKEM})
	if err != nil {
		t.Fatal(err)
	}
	keep(enc.SharedSecret, enc.SharedSecretCiphertextBlob)
	e.clock.Advance(time.Minute)
	dec, err := e.client.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(id), SharedSecretCiphertextBlob: enc.SharedSecretCiphertextBlob, EncapsulationAlgorithm: mlKEM})
	if err != nil {
		t.Fatal(err)
	}
	decAt := e.clock.Now().UTC().Truncate(time.Millisecond)
	decReqID := requestID(dec.ResultMetadata)
	keep(dec.SharedSecret)

	// Uses that are not uses: a dry run, a ciphertext of the wrong length,
	// a caller the key policy refuses.
	e.clock.Advance(time.Minute)
	_, err = e.client.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(id), SharedSecretCiphertextBlob: enc.SharedSecretCiphertextBlob, EncapsulationAlgorithm: mlKEM, DryRun: aws.Bool(true)})
	expectTyped[*types.DryRunOperationException](t, err)
	short := enc.SharedSecretCiphertextBlob[:len(enc.SharedSecretCiphertextBlob)-1]
	_, err = e.client.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(id), SharedSecretCiphertextBlob: short, EncapsulationAlgorithm: mlKEM})
	expectTyped[*types.InvalidCiphertextException](t, err)
	_, err = e.client.Encapsulate(ctx, &kms.EncapsulateInput{KeyId: aws.String(id), EncapsulationAlgorithm: mlKEM, DryRun: aws.Bool(true)})
	expectTyped[*types.DryRunOperationException](t, err)
	nobody := e.kpUser(t, "nobody", "")
	_, err = nobody.kms.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(e.keyARN(id)), SharedSecretCiphertextBlob: enc.SharedSecretCiphertextBlob, EncapsulationAlgorithm: mlKEM})
	expectAPIErrorCode(t, err, "AccessDeniedException")

	got := e.lastUsage(t, id)
	if got == nil || got.Operation != types.KeyLastUsageTrackingOperationDecapsulate || !aws.ToTime(got.Timestamp).Equal(decAt) ||
		aws.ToString(got.KmsRequestId) != decReqID {
		t.Fatalf("KeyLastUsage = %+v; want Decapsulate at %v, request %s", got, decAt, decReqID)
	}

	// A data key pair's private key.
	for _, spec := range []types.DataKeyPairSpec{types.DataKeyPairSpecMlKem512, types.DataKeyPairSpecMlKem768, types.DataKeyPairSpecMlKem1024} {
		pair, err := e.client.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: aws.String(wrapper), KeyPairSpec: spec})
		if err != nil {
			t.Fatal(err)
		}
		keep(pair.PrivateKeyPlaintext, asMLKEMSeed(pair.PrivateKeyPlaintext))
	}
	// The key's own private key, and its seed.
	for _, m := range e.materials(t) {
		if seed := asMLKEMSeed(m); seed != nil {
			keep(m, seed)
		}
	}
	if len(secrets) != 3+6+2 {
		t.Fatalf("%d secrets to look for, want 11", len(secrets))
	}

	recs, raw := auditRecords(t, logPath)
	var lines [][]byte
	for _, r := range raw {
		lines = append(lines, r)
	}
	for _, leak := range asFindLeaks(secrets, lines) {
		t.Error("audit trail: " + leak)
	}
	// A secret within a larger blob: base64 of 30 of its bytes at each
	// offset modulo 3 is in any base64 string that holds it.
	for _, s := range secrets {
		for off := range 3 {
			piece := b64(s[off : off+30])
			for _, line := range lines {
				if bytes.Contains(line, []byte(piece)) {
					t.Errorf("audit trail holds a %d-byte secret within a larger value: %.200s", len(s), line)
				}
			}
		}
	}
	found := false
	for _, r := range recs {
		if r.EventID == aws.ToString(got.CloudTrailEventId) {
			var params map[string]any
			json.Unmarshal(r.RequestParameters, &params)
			found = r.EventName == "Decapsulate" && r.RequestID == decReqID && params["keyId"] == id
		}
	}
	if !found {
		t.Errorf("no Decapsulate record with eventID %s and request id %s", aws.ToString(got.CloudTrailEventId), decReqID)
	}
}

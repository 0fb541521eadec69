package e2e_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// importAs imports material into keyID with the given import type and key
// material id, not expiring.
func (e *kmsEnv) importAs(t testing.TB, keyID string, material []byte, importType types.ImportType, materialID string) (*kms.ImportKeyMaterialOutput, error) {
	t.Helper()
	p := e.importParams(t, keyID, types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048)
	in := &kms.ImportKeyMaterialInput{
		KeyId: aws.String(keyID), ImportToken: p.ImportToken,
		EncryptedKeyMaterial: wrapForImport(t, types.AlgorithmSpecRsaesOaepSha256, p.PublicKey, material),
		ExpirationModel:      notExpiring, ImportType: importType,
	}
	if materialID != "" {
		in.KeyMaterialId = aws.String(materialID)
	}
	return e.client.ImportKeyMaterial(context.Background(), in)
}

// On-demand rotation of a key with imported material, through the SDK:
// import new material, see it pending rotation, rotate to it, decrypt the
// old ciphertexts, delete and re-import a material by its id.
func TestE2EImportedKeyMaterialsRotateOnDemand(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newExternalKey(t)
	arn := e.keyARN(id)
	first, second := mustRandom(t, 32), mustRandom(t, 32)
	firstID := aws.ToString(e.importMaterial(t, id, first, nil).KeyMaterialId)
	old := e.encrypt(t, id, []byte("under the first material"), nil)

	out, err := e.importAs(t, id, second, types.ImportTypeNewKeyMaterial, "")
	if err != nil {
		t.Fatalf("ImportKeyMaterial NEW_KEY_MATERIAL: %v", err)
	}
	secondID := aws.ToString(out.KeyMaterialId)
	if !hex64RE.MatchString(secondID) || secondID == firstID {
		t.Fatalf("new KeyMaterialId %q (first %q)", secondID, firstID)
	}
	e.expectImported(t, id, firstID, notExpiring, nil)
	// One new material pending at a time, refused with AWS's message.
	_, err = e.importAs(t, id, mustRandom(t, 32), types.ImportTypeNewKeyMaterial, "")
	if api := expectAPIErrorCode(t, err, "KMSInvalidStateException"); api != nil {
		re := regexp.MustCompile(`^New key material \(id: [0-9a-f]{64}\) cannot be imported into KMS key ` + regexp.QuoteMeta(arn) +
			`, because another key material \(id: ` + secondID + `\) is pending rotation\.$`)
		if !re.MatchString(api.ErrorMessage()) {
			t.Errorf("refusal of a second pending material: %q", api.ErrorMessage())
		}
	}
	all, err := e.client.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(id), IncludeKeyMaterial: types.IncludeKeyMaterialAllKeyMaterial})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Rotations) != 2 || all.Rotations[1].KeyMaterialState != types.KeyMaterialStatePendingRotation ||
		all.Rotations[1].ImportState != types.ImportStateImported || aws.ToString(all.Rotations[1].KeyMaterialId) != secondID {
		t.Fatalf("ListKeyRotations ALL_KEY_MATERIAL: %+v", all.Rotations)
	}

	if _, err := e.client.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)}); err != nil {
		t.Fatalf("RotateKeyOnDemand: %v", err)
	}
	e.expectImported(t, id, secondID, notExpiring, nil)
	enc := e.encrypt(t, id, []byte("under the second material"), nil)
	for blob, want := range map[*kms.EncryptOutput]string{old: firstID, enc: secondID} {
		d := e.decrypt(t, blob.CiphertextBlob, nil)
		if aws.ToString(d.KeyMaterialId) != want {
			t.Errorf("Decrypt KeyMaterialId %s, want %s", aws.ToString(d.KeyMaterialId), want)
		}
	}
	rot := e.rotations(t, id, "")
	if len(rot) != 1 || aws.ToString(rot[0].KeyMaterialId) != secondID || rot[0].RotationType != types.RotationTypeOnDemand ||
		rot[0].KeyMaterialState != types.KeyMaterialStateCurrent || rot[0].ImportState != types.ImportStateImported ||
		rot[0].ExpirationModel != notExpiring {
		t.Fatalf("ListKeyRotations: %+v", rot)
	}
	_, err = e.client.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)})
	expectAPIError(t, err, "KMSInvalidStateException", "No available key material pending rotation for the key: "+arn+".")

	// Delete the first material by its id: the key waits for it.
	del, err := e.client.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: aws.String(id), KeyMaterialId: aws.String(firstID)})
	if err != nil || aws.ToString(del.KeyMaterialId) != firstID {
		t.Fatalf("DeleteImportedKeyMaterial %s: %+v, %v", firstID, del, err)
	}
	if m := e.describe(t, id); m.KeyState != types.KeyStatePendingImport {
		t.Fatalf("without its first material the key is %s", m.KeyState)
	}
	_, err = e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: old.CiphertextBlob})
	expectAPIError(t, err, "KMSInvalidStateException", arn+" is pending import.")
	// Other material under the first's id is refused; the same comes back.
	_, err = e.importAs(t, id, mustRandom(t, 32), types.ImportTypeExistingKeyMaterial, firstID)
	expectAPIErrorCode(t, err, "IncorrectKeyMaterialException")
	if _, err := e.importAs(t, id, first, types.ImportTypeExistingKeyMaterial, firstID); err != nil {
		t.Fatalf("re-import of the first material: %v", err)
	}
	e.expectImported(t, id, secondID, notExpiring, nil)
	if d := e.decrypt(t, old.CiphertextBlob, nil); aws.ToString(d.KeyMaterialId) != firstID {
		t.Errorf("Decrypt after re-import: KeyMaterialId %s", aws.ToString(d.KeyMaterialId))
	}

	// Survives a restart.
	e = e.reopen(t)
	e.expectImported(t, id, secondID, notExpiring, nil)
	if d := e.decrypt(t, old.CiphertextBlob, nil); aws.ToString(d.KeyMaterialId) != firstID {
		t.Errorf("Decrypt after restart: KeyMaterialId %s", aws.ToString(d.KeyMaterialId))
	}
}

// Each material expires by its own ValidTo.
func TestE2EImportedKeyMaterialsExpireSeparately(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newExternalKey(t)
	firstID := aws.ToString(e.importMaterial(t, id, mustRandom(t, 32), nil).KeyMaterialId)
	soon := e.clock.Now().Add(2 * day).UTC().Truncate(time.Second)
	p := e.importParams(t, id, types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048)
	out, err := e.client.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{
		KeyId: aws.String(id), ImportToken: p.ImportToken,
		EncryptedKeyMaterial: wrapForImport(t, types.AlgorithmSpecRsaesOaepSha256, p.PublicKey, mustRandom(t, 32)),
		ExpirationModel:      expiring, ValidTo: aws.Time(soon), ImportType: types.ImportTypeNewKeyMaterial,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.expectImported(t, id, firstID, notExpiring, nil)
	e.clock.Advance(3 * day)
	e.maintain(t)
	// The pending material expired; the key is untouched by it.
	e.expectImported(t, id, firstID, notExpiring, nil)
	all, err := e.client.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(id), IncludeKeyMaterial: types.IncludeKeyMaterialAllKeyMaterial})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Rotations) != 2 || aws.ToString(all.Rotations[1].KeyMaterialId) != aws.ToString(out.KeyMaterialId) ||
		all.Rotations[1].ImportState != types.ImportStatePendingImport || all.Rotations[1].KeyMaterialState != types.KeyMaterialStatePendingRotation {
		t.Fatalf("ListKeyRotations: %+v", all.Rotations)
	}
	_, err = e.client.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)})
	expectAPIError(t, err, "KMSInvalidStateException", "No available key material pending rotation for the key: "+e.keyARN(id)+".")
}

// A KeyMaterialId is 64 lower-case hex digits, checked as AWS's model
// does. An empty one is refused, not taken for an absent one: on
// DeleteImportedKeyMaterial that would delete the key's current material,
// which a script whose id variable came out empty never asked for.
func TestE2EKeyMaterialIDIsValidated(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newExternalKey(t)
	material := mustRandom(t, 32)
	current := aws.ToString(e.importMaterial(t, id, material, nil).KeyMaterialId)
	tooShort := "2 validation errors detected: Value '' at 'keyMaterialId' failed to satisfy constraint: Member must have length greater than or equal to 64; " +
		"Value '' at 'keyMaterialId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-f0-9]+$"
	notHex := func(v string) string {
		return "1 validation error detected: Value '" + v + "' at 'keyMaterialId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-f0-9]+$"
	}
	upper := strings.ToUpper(current)
	for _, tc := range []struct{ id, msg string }{{"", tooShort}, {upper, notHex(upper)}, {strings.Repeat("z", 64), notHex(strings.Repeat("z", 64))}} {
		_, err := e.client.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: aws.String(id), KeyMaterialId: aws.String(tc.id)})
		expectAPIError(t, err, "ValidationException", tc.msg)
		in := &kms.ImportKeyMaterialInput{KeyId: aws.String(id), ImportToken: []byte("t"), EncryptedKeyMaterial: []byte("m"),
			ExpirationModel: notExpiring, KeyMaterialId: aws.String(tc.id)}
		_, err = e.client.ImportKeyMaterial(ctx, in)
		expectAPIError(t, err, "ValidationException", tc.msg)
	}
	// The key kept its material throughout.
	if m := e.describe(t, id); m.KeyState != types.KeyStateEnabled || aws.ToString(m.CurrentKeyMaterialId) != current {
		t.Fatalf("after refused calls the key is %s with material %s; want Enabled with %s", m.KeyState, aws.ToString(m.CurrentKeyMaterialId), current)
	}
	e.encrypt(t, id, []byte("still usable"), nil)
}

// A key missing one of its materials is PendingImport, and DescribeKey
// says so alike whichever material is missing and however it went: no
// CurrentKeyMaterialId, ExpirationModel or ValidTo (reference §4.12, and
// the key metadata table), as for a key whose only material is gone. The
// expiry of an older material looked so before the maintenance round
// deleted it, and the current material showed again after.
func TestE2EPendingImportLooksAlikeWhateverMaterialIsMissing(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	rotated := func(first []byte, validTo *time.Time) (id, firstID, secondID string) {
		t.Helper()
		id = e.newExternalKey(t)
		firstID = aws.ToString(e.importMaterial(t, id, first, validTo).KeyMaterialId)
		out, err := e.importAs(t, id, mustRandom(t, 32), types.ImportTypeNewKeyMaterial, "")
		if err != nil {
			t.Fatalf("ImportKeyMaterial NEW_KEY_MATERIAL: %v", err)
		}
		if _, err := e.client.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)}); err != nil {
			t.Fatalf("RotateKeyOnDemand: %v", err)
		}
		return id, firstID, aws.ToString(out.KeyMaterialId)
	}

	// The first material deleted by its id.
	first := mustRandom(t, 32)
	deleted, firstID, secondID := rotated(first, nil)
	if _, err := e.client.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: aws.String(deleted), KeyMaterialId: aws.String(firstID)}); err != nil {
		t.Fatalf("DeleteImportedKeyMaterial %s: %v", firstID, err)
	}
	e.expectPendingImport(t, deleted)

	// The first material expired: before the maintenance round deletes
	// it, and after.
	soon := e.clock.Now().Add(2 * day).UTC().Truncate(time.Second)
	expired, _, _ := rotated(mustRandom(t, 32), &soon)
	e.clock.Advance(3 * day)
	e.expectPendingImport(t, expired)
	e.maintain(t)
	e.expectPendingImport(t, expired)

	// With the first material back, the key shows its current one again.
	if _, err := e.importAs(t, deleted, first, types.ImportTypeExistingKeyMaterial, firstID); err != nil {
		t.Fatalf("re-import of the first material: %v", err)
	}
	e.expectImported(t, deleted, secondID, notExpiring, nil)
}

// A KeyMaterialId with ImportType NEW_KEY_MATERIAL is refused as AWS
// documents it ("You cannot specify a key material ID with ImportType set
// to NEW_KEY_MATERIAL"), whatever the id: before, an id that was not the
// material's got IncorrectKeyMaterialException, after the material was
// unwrapped, and only the material's own id got the ValidationException.
func TestE2ENewKeyMaterialTakesNoKeyMaterialID(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	id := e.newExternalKey(t)
	current := aws.ToString(e.importMaterial(t, id, mustRandom(t, 32), nil).KeyMaterialId)
	for _, given := range []string{current, strings.Repeat("0", 64)} {
		_, err := e.importAs(t, id, mustRandom(t, 32), types.ImportTypeNewKeyMaterial, given)
		expectAPIError(t, err, "ValidationException", "A key material ID cannot be specified when ImportType is NEW_KEY_MATERIAL.")
	}
	if r := e.rotations(t, id, types.IncludeKeyMaterialAllKeyMaterial); len(r) != 1 {
		t.Fatalf("after refused imports the key has %d materials, want 1: %+v", len(r), r)
	}
}

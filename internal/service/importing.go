package service

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/authz"
	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/kmsapi"

	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
)

const (
	importTokenLifetime   = 24 * time.Hour
	importTokenFormat     = 0x01
	importTokenIDSize     = 32
	expiresModel          = "KEY_MATERIAL_EXPIRES"
	doesNotExpireModel    = "KEY_MATERIAL_DOES_NOT_EXPIRE"
	importNewMaterial     = "NEW_KEY_MATERIAL"
	importExistingMateral = "EXISTING_KEY_MATERIAL"
	maxValidity           = 365 * day
)

var (
	wrappingAlgorithmEnum   = []string{"RSAES_PKCS1_V1_5", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256", "SM2PKE"}
	wrappingKeySpecEnum     = []string{"RSA_2048", "RSA_3072", "RSA_4096", "SM2"}
	expirationModelEnum     = []string{expiresModel, doesNotExpireModel}
	importTypeEnum          = []string{importNewMaterial, importExistingMateral}
	materialDescriptionRE   = regexp.MustCompile(`^[a-zA-Z0-9:/_\s.-]+$`)
	errInvalidImportToken   = newErr(fault.InvalidImportToken, "The import token is not valid for this KMS key. Use the import token from a GetParametersForImport response for this key.")
	errExpiredImportToken   = newErr(fault.ExpiredImportToken, "The import token has expired. Call GetParametersForImport for a new import token and public key.")
	errIncorrectKeyMaterial = newErr(fault.IncorrectKeyMaterial, "The key material being imported is not the same as the key material previously imported into this KMS key.")
)

// GetParametersForImport returns a fresh RSA wrapping public key and an
// import token for an EXTERNAL key, valid for 24 hours.
func (s *Service) GetParametersForImport(ctx context.Context, caller Caller, in *kmsapi.GetParametersForImportInput) (*kmsapi.GetParametersForImportOutput, error) {
	v := newViolations(ctx)
	v.keyID("keyId", in.KeyID)
	v.requiredEnum("wrappingAlgorithm", in.WrappingAlgorithm, wrappingAlgorithmEnum)
	v.requiredEnum("wrappingKeySpec", in.WrappingKeySpec, wrappingKeySpecEnum)
	if err := v.err(); err != nil {
		return nil, err
	}
	k, err := s.resolve(ctx, caller, in.KeyID, keyrepo.IDOrARN)
	if err != nil {
		return nil, err
	}
	cond := &authz.Conditions{Extra: map[string]string{"kms:wrappingalgorithm": in.WrappingAlgorithm, "kms:wrappingkeyspec": in.WrappingKeySpec}}
	if err := s.authz.Key(ctx, &caller, "kms:GetParametersForImport", k, cond); err != nil {
		return nil, err
	}
	if k.Rec.Origin != originExternal {
		return nil, errOrigin(k.ARN, k.Rec.Origin)
	}
	if k.Rec.State.PendingDeletion() {
		return nil, k.Rec.State.Err(k.ARN)
	}
	if err := importableSpec(k.Rec.KeySpec); err != nil {
		return nil, err
	}
	switch {
	case in.WrappingAlgorithm == "RSAES_PKCS1_V1_5":
		return nil, newErr(fault.UnsupportedOperation, "The RSAES_PKCS1_V1_5 wrapping algorithm is no longer supported. Use RSAES_OAEP_SHA_256 or RSA_AES_KEY_WRAP_SHA_256.")
	case in.WrappingAlgorithm == "SM2PKE" || in.WrappingKeySpec == "SM2":
		return nil, newErr(fault.UnsupportedOperation, "SM2 wrapping is only available in AWS China Regions.")
	}
	var der []byte
	ctx, done, err := rsaOutsideBound(ctx, in.WrappingKeySpec, func(ctx context.Context) (err error) {
		der, err = s.makeKeyPair(ctx, caller.AccountID, "GetParametersForImport", in.WrappingKeySpec)
		return err
	})
	defer done()
	if err != nil {
		return nil, err
	}
	defer clear(der)
	wrapping, err := keys.ParseAsymmetric(in.WrappingKeySpec, der)
	if err != nil {
		return nil, s.storeErr("GetParametersForImport", err)
	}
	pub := wrapping.PublicDER
	token := make([]byte, 1+importTokenIDSize)
	token[0] = importTokenFormat
	rand.Read(token[1:])
	tokenID := hex.EncodeToString(token[1:])
	validTo := s.clock().Add(importTokenLifetime)
	rec := keyrepo.ImportTokenRecord{
		V: keyrepo.RecordVersion, KeyID: k.Rec.ID, Region: k.Rec.Region, Account: k.Rec.Account, Algorithm: in.WrappingAlgorithm,
		KeySpec: in.WrappingKeySpec, ValidTo: validTo, SealedPriv: s.root.Seal(keyrepo.ImportTokenKey(tokenID), der),
	}
	if err := s.update(ctx, "GetParametersForImport", func(tx store.Tx) error {
		return putJSON(tx, keyrepo.ImportTokenKey(tokenID), &rec)
	}); err != nil {
		return nil, err
	}
	return &kmsapi.GetParametersForImportOutput{KeyID: k.ARN, ImportToken: token, PublicKey: pub, ParametersValidTo: kmsapi.Time(validTo)}, nil
}

// ImportKeyMaterial unwraps key material wrapped under the public key of a
// GetParametersForImport call and makes it the material of an EXTERNAL
// key. Importing again must bring the same material, to extend or restore
// it after deletion or expiry.
func (s *Service) ImportKeyMaterial(ctx context.Context, caller Caller, in *kmsapi.ImportKeyMaterialInput) (*kmsapi.ImportKeyMaterialOutput, error) {
	v := newViolations(ctx)
	v.keyID("keyId", in.KeyID)
	if in.ImportToken == nil {
		v.add("Value null at 'importToken' failed to satisfy constraint: Member must not be null")
	} else {
		v.blobLen("importToken", in.ImportToken, 1, 6144)
	}
	if in.EncryptedKeyMaterial == nil {
		v.add("Value null at 'encryptedKeyMaterial' failed to satisfy constraint: Member must not be null")
	} else {
		v.blobLen("encryptedKeyMaterial", in.EncryptedKeyMaterial, 1, 6144)
	}
	v.enum("expirationModel", in.ExpirationModel, expirationModelEnum)
	v.enum("importType", in.ImportType, importTypeEnum)
	if d := in.KeyMaterialDescription; d != nil {
		v.patterned("keyMaterialDescription", *d, 0, 256, materialDescriptionRE, materialDescriptionRE.String())
	}
	v.keyMaterialID(in.KeyMaterialID)
	if err := v.err(); err != nil {
		return nil, err
	}
	model := in.ExpirationModel
	if model == "" {
		model = expiresModel
	}
	now := s.clock()
	var validTo *time.Time
	switch {
	case in.KeyMaterialID != nil && in.ImportType == importNewMaterial:
		// Whether or not it is the id of the material sent: new
		// material has no id to name yet.
		return nil, newErr(fault.Validation, "A key material ID cannot be specified when ImportType is NEW_KEY_MATERIAL.")
	case model == expiresModel && in.ValidTo == nil:
		return nil, newErr(fault.Validation, "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES")
	case model == doesNotExpireModel && in.ValidTo != nil:
		return nil, newErr(fault.Validation, "A validTo date must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE")
	case in.ValidTo != nil:
		t := time.Time(*in.ValidTo).UTC()
		if !t.After(now) {
			return nil, newErr(fault.Validation, "The validTo date must be in the future.")
		}
		if t.After(now.Add(maxValidity)) {
			return nil, newErr(fault.Validation, "The validTo date must be no more than 365 days in the future.")
		}
		validTo = &t
	}
	k, err := s.resolve(ctx, caller, in.KeyID, keyrepo.IDOrARN)
	if err != nil {
		return nil, err
	}
	cond := &authz.Conditions{Extra: map[string]string{"kms:expirationmodel": model}}
	if validTo != nil {
		// Epoch seconds to the millisecond, as the request gave it: whole
		// seconds would let material valid up to a second past a
		// policy's limit through its DateGreaterThan.
		cond.Extra["kms:validto"] = strconv.FormatFloat(float64(validTo.UnixMilli())/1000, 'f', -1, 64)
	}
	if err := s.authz.Key(ctx, &caller, "kms:ImportKeyMaterial", k, cond); err != nil {
		return nil, err
	}
	if k.Rec.Origin != originExternal {
		return nil, errOrigin(k.ARN, k.Rec.Origin)
	}
	if k.Rec.State.PendingDeletion() {
		return nil, k.Rec.State.Err(k.ARN)
	}
	if err := importableSpec(k.Rec.KeySpec); err != nil {
		return nil, err
	}
	material, err := s.unwrapImport(ctx, k, in.ImportToken, in.EncryptedKeyMaterial)
	if err != nil {
		return nil, err
	}
	defer clear(material)
	if err := checkImportedMaterial(k.Rec.KeySpec, material); err != nil {
		return nil, err
	}
	kid, _ := keys.ParseID(k.Rec.ID)
	materialID := keys.ImportedMaterialID(kid, material)
	if in.KeyMaterialID != nil && *in.KeyMaterialID != materialID {
		return nil, errIncorrectKeyMaterial
	}
	_, err = s.mutateKey(ctx, caller, k.Rec.ID, "", nil, func(tx store.Tx, rec *keyrepo.KeyRecord, arn string) error {
		if err := s.reauthorize(ctx, tx, &caller, "kms:ImportKeyMaterial", k, rec, cond); err != nil {
			return err
		}
		if rec.State.PendingDeletion() {
			return rec.State.Err(arn)
		}
		if rec.MultiRegion && rec.CurrentVersion != 0 && in.ImportType == importNewMaterial {
			return errMultiRegionNewMaterial(arn)
		}
		vers, err := materials(tx, rec)
		if err != nil {
			return err
		}
		if !complete(rec, vers, now) {
			// A material that expired and was not yet swept away left
			// the key PendingImport already, whatever state it stored
			// (keyrepo.StateOf): the import makes it Enabled, as AWS
			// does and as it would after the sweep, not the Disabled it
			// was before.
			rec.State = keyrepo.StatePendingImport
		}
		vr, err := importTarget(rec, arn, vers, in.ImportType, materialID, now)
		if err != nil {
			return err
		}
		if vr.Version > rec.CurrentVersion && !vr.PendingRotation {
			rec.CurrentVersion = vr.Version // the key's first material
		}
		if vr.MaterialID == "" {
			vr.MaterialID = materialID
			vers = append(vers, vr)
		}
		if in.KeyMaterialDescription != nil {
			vr.Description = *in.KeyMaterialDescription
		}
		vr.Sealed = s.repo.SealMaterial(rec, rec.Region, vr.Version, material)
		vr.ExpirationModel, vr.ValidTo = model, validTo
		return settleMaterials(tx, rec, vers, now)
	})
	if err != nil {
		return nil, err
	}
	return &kmsapi.ImportKeyMaterialOutput{KeyID: k.ARN, KeyMaterialID: materialID}, nil
}

// importTarget is the version an import of the material with materialID
// goes to: an existing version for EXISTING_KEY_MATERIAL (the default once
// the key has material), which must already hold that material; a new one
// (MaterialID empty) for NEW_KEY_MATERIAL: the key's first material, or on
// a symmetric key with material, one pending rotation.
func importTarget(rec *keyrepo.KeyRecord, arn string, vers []*keyrepo.VersionRecord, importType, materialID string, now time.Time) (*keyrepo.VersionRecord, error) {
	if importType == "" {
		importType = importExistingMateral
		if rec.CurrentVersion == 0 {
			importType = importNewMaterial
		}
	}
	existing := materialByID(vers, materialID)
	switch {
	case importType == importExistingMateral && rec.CurrentVersion == 0:
		return nil, newErr(fault.Validation, "%s has no key material yet: import it with ImportType NEW_KEY_MATERIAL.", arn)
	case importType == importExistingMateral:
		if existing == nil {
			return nil, errIncorrectKeyMaterial
		}
		return existing, nil
	case rec.CurrentVersion == 0:
		return &keyrepo.VersionRecord{V: keyrepo.RecordVersion, Version: 1, Created: now}, nil
	case rec.KeySpec != keys.SymmetricDefault:
		return nil, newErr(fault.UnsupportedOperation, "%s has key spec %s: only symmetric encryption keys take new key material. Re-import the same key material with ImportType EXISTING_KEY_MATERIAL.", arn, rec.KeySpec)
	case existing != nil:
		return nil, newErr(fault.Validation, "This key material is already associated with %s as key material %s: import it with ImportType EXISTING_KEY_MATERIAL.", arn, existing.MaterialID)
	}
	if p := pendingMaterial(vers); p != nil {
		return nil, newErr(fault.InvalidState, "New key material (id: %s) cannot be imported into KMS key %s, because another key material (id: %s) is pending rotation.", materialID, arn, p.MaterialID)
	}
	return &keyrepo.VersionRecord{V: keyrepo.RecordVersion, Version: rec.CurrentVersion + 1, Created: now, PendingRotation: true}, nil
}

// importableSpec refuses the key specs whose material this server does
// not import (ML-DSA and ML-KEM), before any work is done for an import:
// GetParametersForImport would make a wrapping key pair and store a token
// that no import could use, and ImportKeyMaterial would unwrap material
// only to refuse it, whatever token it was given.
func importableSpec(spec string) error {
	if strings.HasPrefix(spec, "ML_DSA_") || keys.IsMLKEM(spec) {
		return newErr(fault.UnsupportedOperation, "Importing key material for %s keys is not supported by this server.", spec)
	}
	return nil
}

// checkImportedMaterial checks that unwrapped material is of the key's
// spec: 32 bytes for a symmetric key, the hash's size for an HMAC key, a
// DER PKCS#8 private key of the right type and size for an asymmetric key.
func checkImportedMaterial(spec string, material []byte) error {
	if err := importableSpec(spec); err != nil {
		return err
	}
	var err error
	switch {
	case spec == keys.SymmetricDefault:
		if len(material) != keys.MaterialSize {
			return newErr(fault.IncorrectKeyMaterial, "The key material of a SYMMETRIC_DEFAULT key must be 32 bytes (256 bits); the unwrapped material is %d bytes.", len(material))
		}
		return nil
	case keys.IsHMAC(spec):
		_, err = keys.NewHMAC(spec, material)
	default:
		_, err = keys.ParseImported(spec, material)
	}
	if err != nil {
		return newErr(fault.IncorrectKeyMaterial, "The imported key material is not valid for key spec %s.", spec)
	}
	return nil
}

// unwrapImport checks an import token against the key and unwraps the
// material with the token's private key.
func (s *Service) unwrapImport(ctx context.Context, k *keyrepo.Key, token, wrapped []byte) ([]byte, error) {
	if len(token) != 1+importTokenIDSize || token[0] != importTokenFormat {
		return nil, errInvalidImportToken
	}
	tokenID := hex.EncodeToString(token[1:])
	var rec keyrepo.ImportTokenRecord
	err := s.view(ctx, "ImportKeyMaterial", func(tx store.Tx) error {
		if err := getJSON(tx, keyrepo.ImportTokenKey(tokenID), &rec); errors.Is(err, store.ErrNotFound) {
			return errInvalidImportToken
		} else {
			return err
		}
	})
	if err != nil {
		return nil, err
	}
	if rec.KeyID != k.Rec.ID || rec.Region != k.Rec.Region || rec.Account != k.Rec.Account {
		return nil, errInvalidImportToken
	}
	if !s.now().Before(rec.ValidTo) {
		return nil, errExpiredImportToken
	}
	der, err := s.root.Open(keyrepo.ImportTokenKey(tokenID), rec.SealedPriv)
	if err != nil {
		return nil, s.storeErr("ImportKeyMaterial", errors.New("import token private key does not open under the root key"))
	}
	defer clear(der)
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	priv, ok := parsed.(*rsa.PrivateKey)
	if err != nil || !ok {
		return nil, s.storeErr("ImportKeyMaterial", errors.New("import token private key is corrupt"))
	}
	material, err := keys.UnwrapImported(rec.Algorithm, priv, wrapped)
	if err != nil {
		return nil, errInvalidCiphertext
	}
	return material, nil
}

// DeleteImportedKeyMaterial deletes imported material of an EXTERNAL key
// at once: the key's current material, or the one KeyMaterialId names.
// Without a material of its own the key goes to PendingImport and nothing
// it encrypted decrypts until the same material is imported again.
// Material pending rotation is not the key's yet: deleting it leaves the
// key as it is, and forgets the material altogether.
func (s *Service) DeleteImportedKeyMaterial(ctx context.Context, caller Caller, in *kmsapi.DeleteImportedKeyMaterialInput) (*kmsapi.DeleteImportedKeyMaterialOutput, error) {
	v := newViolations(ctx)
	v.keyID("keyId", in.KeyID)
	v.keyMaterialID(in.KeyMaterialID)
	if err := v.err(); err != nil {
		return nil, err
	}
	wanted := "" // the current material
	if in.KeyMaterialID != nil {
		wanted = *in.KeyMaterialID
	}
	var materialID string
	rec, err := s.mutateKey(ctx, caller, in.KeyID, "DeleteImportedKeyMaterial", nil, func(tx store.Tx, rec *keyrepo.KeyRecord, arn string) error {
		if rec.Origin != originExternal {
			return errOrigin(arn, rec.Origin)
		}
		var err error
		materialID, err = s.deleteMaterial(tx, rec, arn, wanted)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &kmsapi.DeleteImportedKeyMaterialOutput{KeyID: keyrepo.KeyARN(rec.Region, rec.Account, rec.ID), KeyMaterialID: materialID}, nil
}

// deleteMaterial deletes the material with id (the current one if id is
// empty) of an EXTERNAL key and settles the key; the caller writes rec.
func (s *Service) deleteMaterial(tx store.Tx, rec *keyrepo.KeyRecord, arn, id string) (string, error) {
	if rec.CurrentVersion == 0 {
		if id != "" {
			return "", newErr(fault.NotFound, "Key material %s is not found in %s.", id, arn)
		}
		return "", nil
	}
	vers, err := materials(tx, rec)
	if err != nil {
		return "", err
	}
	var vr *keyrepo.VersionRecord
	if id == "" {
		for _, x := range vers {
			if x.Version == rec.CurrentVersion {
				vr = x
			}
		}
	} else {
		vr = materialByID(vers, id)
	}
	if vr == nil {
		return "", newErr(fault.NotFound, "Key material %s is not found in %s.", id, arn)
	}
	if vr.PendingRotation {
		vers = slices.DeleteFunc(vers, func(x *keyrepo.VersionRecord) bool { return x == vr })
		if err := tx.Delete(keyrepo.VersionKey(rec.Region, rec.ID, vr.Version)); err != nil {
			return "", err
		}
	} else {
		forget(vr)
	}
	// The material stays in the store's files until a compaction.
	if err := store.NoteErased(tx); err != nil {
		return "", err
	}
	return vr.MaterialID, settleMaterials(tx, rec, vers, s.clock())
}

// hasMaterial reports whether every material permanently associated with
// an EXTERNAL key is imported.
func (s *Service) hasMaterial(tx store.Tx, rec *keyrepo.KeyRecord) (bool, error) {
	vers, err := materials(tx, rec)
	if err != nil {
		return false, err
	}
	return complete(rec, vers, s.now()), nil
}

// ExpireImportedMaterial deletes imported material whose ValidTo has passed
// (each material of a key by its own ValidTo) and import tokens a day past
// their end, and returns how many keys lost material. Each material's
// deletion is recorded as CloudTrail records it: a DeleteExpiredKeyMaterial
// service event naming the key and the material (serviceevents.go). While the trail cannot record, nothing
// expires: material past its ValidTo is unusable all the same
// (keyrepo.Repo.StateOf), and is deleted once its record can be written.
func (s *Service) ExpireImportedMaterial(ctx context.Context) (int, error) {
	if err := s.trailErr(); err != nil {
		return 0, fmt.Errorf("imported key material not expired: %w", err)
	}
	now := s.now()
	due, err := s.scanIndex(ctx, keyrepo.ImportExpiryPrefix, func(rec *keyrepo.KeyRecord) bool { return expiryDue(rec, now) })
	if err != nil {
		return 0, err
	}
	expired := 0
	var errs []error
	for _, ref := range due {
		region, id := ref.region, ref.id
		if err := s.trailErr(); err != nil {
			return expired, errors.Join(append(errs, fmt.Errorf("imported key material not expired: %w", err))...)
		}
		done, account, gone := false, "", []string(nil)
		work := new(audit.Work)
		err := s.update(audit.NewWorkContext(ctx, work), "ExpireImportedMaterial", func(tx store.Tx) error {
			done, account, gone, work.Events = false, "", gone[:0], work.Events[:0]
			var rec keyrepo.KeyRecord
			if err := getJSON(tx, keyrepo.KeyKey(region, id), &rec); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return tx.Delete(keyrepo.ImportExpiryKey(region, id))
				}
				return err
			}
			if !expiryDue(&rec, now) {
				return nil
			}
			vers, err := materials(tx, &rec)
			if err != nil {
				return err
			}
			for _, vr := range vers {
				if vr.Sealed != nil && vr.ValidTo != nil && !now.Before(*vr.ValidTo) {
					forget(vr)
					gone = append(gone, vr.MaterialID)
				}
			}
			if err := settleMaterials(tx, &rec, vers, now); err != nil {
				return err
			}
			if len(gone) > 0 {
				// The material stays in the store's files until a compaction.
				if err := store.NoteErased(tx); err != nil {
					return err
				}
			}
			done, account = true, rec.Account
			for _, m := range gone {
				details := expiredMaterialDetails{KeyID: id, KeyMaterialID: m}
				if err := addServiceEvent(work, now, "DeleteExpiredKeyMaterial", region, account, id, &details); err != nil {
					return err
				}
			}
			return putJSON(tx, keyrepo.KeyKey(region, id), &rec)
		})
		s.repo.Invalidate(region, id, "")
		if err != nil {
			// One key whose material cannot expire must not keep the
			// others' past their ValidTo.
			if ctx.Err() != nil {
				return expired, err
			}
			s.log.Error("expiring imported key material", "keyId", id, "region", region, "err", err)
			errs = append(errs, fmt.Errorf("key %s in %s: %w", id, region, err))
			continue
		}
		if done {
			expired++
			s.log.Info("imported key material expired and was deleted", "keyId", id)
			if err := s.recordServiceEvents(ctx, work); err != nil {
				errs = append(errs, err)
			}
		}
	}
	var stale [][]byte
	err = s.view(ctx, "ExpireImportTokens", func(tx store.Tx) error {
		stale = stale[:0]
		// A token record changed outside the server is logged and left:
		// it must not keep the others in the store.
		return store.ScanReadable(tx, keyrepo.ImportTokenPrefix, nil, func(k, v []byte) (bool, error) {
			var rec keyrepo.ImportTokenRecord
			if err := keyrepo.UnmarshalRecord(v, &rec); err != nil || now.After(rec.ValidTo.Add(importTokenLifetime)) {
				stale = append(stale, append([]byte(nil), k...))
			}
			return true, nil
		}, func(err error) {
			s.log.Error("an import token record left in the store: it was changed outside the server", "err", err)
		})
	})
	if err != nil || len(stale) == 0 {
		return expired, errors.Join(append(errs, err)...)
	}
	err = s.update(ctx, "ExpireImportTokens", func(tx store.Tx) error {
		for _, k := range stale {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	return expired, errors.Join(append(errs, err)...)
}

// Maintain runs the background work that time drives: deleting keys past
// their deletion date, automatic rotation, and expiry of imported material,
// each recorded as a service event (serviceevents.go). The server calls it
// every minute.
func (s *Service) Maintain(ctx context.Context) error {
	_, err1 := s.DeleteExpiredKeys(ctx)
	_, err2 := s.RotateDueKeys(ctx)
	_, err3 := s.ExpireImportedMaterial(ctx)
	return errors.Join(err1, err2, err3)
}

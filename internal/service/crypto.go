package service

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/openkms/kms/internal/authz"
	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/kmsapi"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
)

// usable checks that a key may perform a cryptographic operation now
// (reference §4.4).
func (s *Service) usable(k *keyrepo.Key, op, usage string) error {
	if err := s.repo.StateOf(&k.Rec).Err(k.ARN); err != nil {
		return err
	}
	if k.Rec.KeyUsage != usage {
		return errKeyUsage(k.ARN, k.Rec.KeyUsage, op)
	}
	if k.Current == nil {
		return newErr(fault.InvalidState, "%s has no key material.", k.ARN)
	}
	return nil
}

// symmetricAlgorithm is the kms:EncryptionAlgorithm of symmetric operations.
var symmetricAlgorithm = map[string]string{"kms:encryptionalgorithm": keys.SymmetricDefault}

// checkAlgorithm checks an encryption algorithm against the key: the
// symmetric default (also when none is given) for symmetric keys, one of
// the RSAES-OAEP algorithms for RSA keys.
func checkAlgorithm(k *keyrepo.Key, alg string) error {
	if k.Rec.KeySpec == keys.SymmetricDefault {
		if alg != "" && alg != keys.SymmetricDefault {
			return newErr(fault.InvalidKeyUsage, "Algorithm %s is incompatible with key spec %s.", alg, k.Rec.KeySpec)
		}
		return nil
	}
	if alg == "" {
		alg = keys.SymmetricDefault
	}
	if !slices.Contains(keys.EncryptionAlgorithms(k.Rec.KeySpec), alg) {
		return newErr(fault.InvalidKeyUsage, "Algorithm %s is incompatible with key spec %s.", alg, k.Rec.KeySpec)
	}
	return nil
}

// checkSeal checks what sealFor would refuse: an RSA key takes no
// encryption context, and at most its algorithm's plaintext size. Encrypt
// and ReEncrypt call it before they answer a dry run.
func checkSeal(k *keyrepo.Key, alg string, plaintext []byte, ec map[string]string) error {
	if k.Rec.KeySpec == keys.SymmetricDefault {
		return nil
	}
	if len(ec) > 0 {
		return newErr(fault.Validation, "EncryptionContext is not supported with asymmetric KMS keys.")
	}
	if max := k.Current.Asym.MaxPlaintext(alg); len(plaintext) > max {
		return newErr(fault.Validation, "Algorithm %s and key spec %s cannot encrypt data larger than %d bytes.", alg, k.Rec.KeySpec, max)
	}
	return nil
}

// sealFor encrypts plaintext under key k: our blob format for a symmetric
// key, RSAES-OAEP output for an RSA key (see checkSeal).
func (s *Service) sealFor(k *keyrepo.Key, alg string, plaintext []byte, ec map[string]string, op string) ([]byte, error) {
	if k.Rec.KeySpec == keys.SymmetricDefault {
		blob, err := k.Current.Sym.Seal(plaintext, ec)
		if err != nil {
			return nil, s.storeErr(op, err)
		}
		return blob, nil
	}
	if err := checkSeal(k, alg, plaintext, ec); err != nil {
		return nil, err
	}
	ct, err := k.Current.Asym.Encrypt(alg, plaintext)
	if err != nil {
		return nil, s.storeErr(op, err)
	}
	return ct, nil
}

func algOrDefault(alg string) string {
	if alg == "" {
		return keys.SymmetricDefault
	}
	return alg
}

func refuseRecipient(r *kmsapi.RecipientInfo) error {
	if r != nil {
		return newErr(fault.UnsupportedOperation, "Recipient (Nitro Enclaves attestation) is not supported by this server.")
	}
	return nil
}

// Encrypt seals up to 4096 bytes under the current version of a symmetric key.
func (s *Service) Encrypt(ctx context.Context, caller Caller, in *kmsapi.EncryptInput) (*kmsapi.EncryptOutput, error) {
	v := newViolations(ctx)
	v.keyID("keyId", in.KeyID)
	if in.Plaintext == nil {
		v.add("Value null at 'plaintext' failed to satisfy constraint: Member must not be null")
	} else {
		v.blobLen("plaintext", in.Plaintext, 1, 4096)
	}
	v.encryptionContext("encryptionContext", in.EncryptionContext)
	v.grantTokens(in.GrantTokens)
	v.enum("encryptionAlgorithm", in.EncryptionAlgorithm, encryptionAlgorithmEnum)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	ctx = withGrantTokens(ctx, in.GrantTokens)
	alg := algOrDefault(in.EncryptionAlgorithm)
	cond := &authz.Conditions{EC: in.EncryptionContext, Extra: algorithmCondition(alg)}
	k, err := s.useKey(ctx, &caller, in.KeyID, keyrepo.AnyForm|keyrepo.FormOtherAccount, "kms:Encrypt", cond)
	if err != nil {
		return nil, err
	}
	if err := s.usable(k, "Encrypt", keys.UsageEncrypt); err != nil {
		return nil, err
	}
	if err := checkAlgorithm(k, in.EncryptionAlgorithm); err != nil {
		return nil, err
	}
	if err := checkSeal(k, alg, in.Plaintext, in.EncryptionContext); err != nil {
		return nil, err
	}
	if in.DryRun {
		return nil, errDryRun
	}
	blob, err := s.sealFor(k, alg, in.Plaintext, in.EncryptionContext, "Encrypt")
	if err != nil {
		return nil, err
	}
	s.noteUse(ctx, &k.Rec, "Encrypt")
	return &kmsapi.EncryptOutput{CiphertextBlob: blob, KeyID: k.ARN, EncryptionAlgorithm: alg}, nil
}

// open authenticates a blob: it finds the key and version the blob names,
// checks them against the KeyId the caller gave (if any) and decrypts.
// A KeyId that names no key is AccessDeniedException with AWS's message
// (errCiphertextKey): Decrypt does not tell a missing key from one the
// caller may not use. So is a blob whose header names a key that does not
// exist here, or another account's key the caller may not use: the answer
// names neither the key's ARN nor its account, which anyone could
// otherwise learn of any key id by sending a made-up header. A caller of
// the key's own account is told why it was denied.
func (s *Service) open(ctx context.Context, caller Caller, blob []byte, keyID string, ec map[string]string, alg, op, action string, to *keyrepo.Key) ([]byte, *keyrepo.Key, *keyrepo.Version, error) {
	var named *keyrepo.Key
	alias := ""
	if keyID != "" {
		k, a, err := s.resolveAlias(ctx, caller, keyID, keyrepo.AnyForm|keyrepo.FormOtherAccount)
		if err != nil {
			if keyMissing(err) {
				return nil, nil, nil, errCiphertextKey
			}
			return nil, nil, nil, err
		}
		named, alias = k, a
	}
	var cond *authz.Conditions
	if named != nil {
		// A named key is authorized before it or the blob is looked at: a
		// caller who may not use it learns nothing of its type, nor
		// whether the blob is under it.
		cond = openConditions(named, to, ec, alias, alg)
		if err := s.authz.Key(ctx, &caller, action, named, cond); err != nil {
			return nil, nil, nil, err
		}
		if keys.IsAsymmetric(named.Rec.KeySpec) {
			return s.openAsymmetric(ctx, caller, named, alias, blob, ec, alg, op, action, to)
		}
	}
	h, err := keys.ParseHeader(blob)
	if err != nil {
		return nil, nil, nil, errInvalidCiphertext
	}
	id := h.KeyID.String()
	if named != nil && named.Rec.ID != id {
		return nil, nil, nil, errIncorrectKey
	}
	k := named
	if k == nil {
		k, err = s.repo.Load(ctx, s.regionOf(caller), id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, nil, errCiphertextKey
		}
		if err != nil {
			return nil, nil, nil, s.storeErr(op, err)
		}
		if s.repo.Expired(&k.Rec) {
			return nil, nil, nil, errCiphertextKey
		}
		cond = openConditions(k, to, ec, alias, alg)
		if err := s.authz.Key(ctx, &caller, action, k, cond); err != nil {
			if err = headerKeyDenied(err, &caller, k); err != errCiphertextKey {
				audit.FromContext(ctx).AddKey(k.ARN)
			}
			// Else the record, which the caller's account reads, names
			// the key no more than the answer does.
			return nil, nil, nil, err
		}
		audit.FromContext(ctx).AddKey(k.ARN)
	}
	if err := s.usable(k, op, keys.UsageEncrypt); err != nil {
		return nil, nil, nil, err
	}
	if err := checkAlgorithm(k, alg); err != nil {
		return nil, nil, nil, err
	}
	if k.Rec.KeySpec != keys.SymmetricDefault {
		// The header names an RSA key: its ciphertexts have no header,
		// so this blob is not one of them.
		return nil, nil, nil, errInvalidCiphertext
	}
	ver := k.Versions[h.Version]
	if ver == nil && h.Version > k.Rec.CurrentVersion && s.reloads.allow(k.Rec.Region+"/"+k.Rec.ID, s.clock()) {
		// A version newer than the cached key: another process rotated
		// it. Read the key again once, and judge it as it is now.
		s.repo.Invalidate(k.Rec.Region, k.Rec.ID, "")
		if fresh, err := s.repo.Load(ctx, k.Rec.Region, k.Rec.ID); err == nil && fresh.Rec.Account == k.Rec.Account && fresh.Versions[h.Version] != nil {
			if err := s.authz.Key(ctx, &caller, action, fresh, cond); err != nil {
				if named == nil {
					err = headerKeyDenied(err, &caller, fresh)
				}
				return nil, nil, nil, err
			}
			if err := s.usable(fresh, op, keys.UsageEncrypt); err != nil {
				return nil, nil, nil, err
			}
			k, ver = fresh, fresh.Versions[h.Version]
		}
	}
	if ver == nil || ver.Sym == nil {
		return nil, nil, nil, errInvalidCiphertext
	}
	pt, err := ver.Sym.Open(blob, ec)
	if err != nil {
		return nil, nil, nil, errInvalidCiphertext
	}
	return pt, k, ver, nil
}

// headerKeyDenied is the answer to a caller the key a blob's header named
// is denied to: for a caller of another account, AWS's words for a key
// that does not exist (errCiphertextKey), not the denial naming the key's
// ARN and so its account. Other errors pass.
func headerKeyDenied(err error, caller *Caller, k *keyrepo.Key) error {
	if fault.Is(err, fault.AccessDenied) && caller.AccountID != k.Rec.Account {
		return errCiphertextKey
	}
	return err
}

// dryRunOpen is open for a dry run that ignores the ciphertext
// (DryRunModifiers IGNORE_CIPHERTEXT), which tests a caller's permissions
// without a blob: the key named is resolved, authorized and checked as
// open does (a key that does not exist, state, usage, algorithm), and no
// blob is read.
func (s *Service) dryRunOpen(ctx context.Context, caller Caller, keyID string, ec map[string]string, alg, op, action string, to *keyrepo.Key) (*keyrepo.Key, error) {
	k, alias, err := s.resolveAlias(ctx, caller, keyID, keyrepo.AnyForm|keyrepo.FormOtherAccount)
	if keyMissing(err) {
		return nil, errCiphertextKey
	}
	if err != nil {
		return nil, err
	}
	if err := s.mayOpen(ctx, caller, k, alias, ec, alg, op, action, to); err != nil {
		return nil, err
	}
	return k, nil
}

// mayOpen authorizes caller to open a blob under the key named, and
// checks the key can: its state and usage, the algorithm, and that an
// asymmetric key is given no encryption context.
func (s *Service) mayOpen(ctx context.Context, caller Caller, k *keyrepo.Key, alias string, ec map[string]string, alg, op, action string, to *keyrepo.Key) error {
	if err := s.authz.Key(ctx, &caller, action, k, openConditions(k, to, ec, alias, alg)); err != nil {
		return err
	}
	if err := s.usable(k, op, keys.UsageEncrypt); err != nil {
		return err
	}
	if err := checkAlgorithm(k, alg); err != nil {
		return err
	}
	if len(ec) > 0 && keys.IsAsymmetric(k.Rec.KeySpec) {
		return newErr(fault.Validation, "EncryptionContext is not supported with asymmetric KMS keys.")
	}
	return nil
}

// openAsymmetric decrypts an RSAES-OAEP ciphertext with the RSA key the
// caller named; such ciphertexts carry no key id, so KeyId and the
// algorithm are required.
func (s *Service) openAsymmetric(ctx context.Context, caller Caller, k *keyrepo.Key, alias string, ct []byte, ec map[string]string, alg, op, action string, to *keyrepo.Key) ([]byte, *keyrepo.Key, *keyrepo.Version, error) {
	if err := s.mayOpen(ctx, caller, k, alias, ec, alg, op, action, to); err != nil {
		return nil, nil, nil, err
	}
	pt, err := k.Current.Asym.Decrypt(alg, ct)
	if err != nil {
		return nil, nil, nil, errInvalidCiphertext
	}
	return pt, k, k.Current, nil
}

// openConditions are the condition keys of opening a blob under k: the
// encryption context, the alias the caller named k by, the algorithm,
// and, for ReEncrypt's kms:ReEncryptFrom (to is the destination; nil for
// Decrypt), kms:ReEncryptOnSameKey, which AWS gives both of ReEncrypt's
// decisions.
func openConditions(k, to *keyrepo.Key, ec map[string]string, alias, alg string) *authz.Conditions {
	c := &authz.Conditions{EC: ec, Alias: alias, Extra: algorithmCondition(algOrDefault(alg))}
	if to != nil {
		c.Extra = map[string]string{"kms:encryptionalgorithm": algOrDefault(alg), "kms:reencryptonsamekey": strconv.FormatBool(k.Rec.ID == to.Rec.ID)}
	}
	return c
}

// algorithmCondition is the kms:EncryptionAlgorithm of a request.
func algorithmCondition(alg string) map[string]string {
	if alg == keys.SymmetricDefault {
		return symmetricAlgorithm
	}
	return map[string]string{"kms:encryptionalgorithm": alg}
}

// Decrypt opens a blob made by Encrypt, GenerateDataKey or ReEncrypt.
func (s *Service) Decrypt(ctx context.Context, caller Caller, in *kmsapi.DecryptInput) (*kmsapi.DecryptOutput, error) {
	v := newViolations(ctx)
	ignoreCT := v.dryRunModifiers(in.DryRun, in.DryRunModifiers)
	v.ciphertext(in.CiphertextBlob, ignoreCT)
	if v.given("keyId", in.KeyID) {
		v.strLen("keyId", in.KeyID, 1, 2048)
	} else if ignoreCT {
		v.add("Value null at 'keyId' failed to satisfy constraint: Member must not be null")
	}
	v.encryptionContext("encryptionContext", in.EncryptionContext)
	v.grantTokens(in.GrantTokens)
	v.enum("encryptionAlgorithm", in.EncryptionAlgorithm, encryptionAlgorithmEnum)
	v.recipient(in.Recipient)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := refuseRecipient(in.Recipient); err != nil {
		return nil, err
	}
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	ctx = withGrantTokens(ctx, in.GrantTokens)
	var pt []byte
	var k *keyrepo.Key
	var ver *keyrepo.Version
	var err error
	if ignoreCT {
		k, err = s.dryRunOpen(ctx, caller, in.KeyID, in.EncryptionContext, in.EncryptionAlgorithm, "Decrypt", "kms:Decrypt", nil)
	} else {
		pt, k, ver, err = s.open(ctx, caller, in.CiphertextBlob, in.KeyID, in.EncryptionContext, in.EncryptionAlgorithm, "Decrypt", "kms:Decrypt", nil)
	}
	if err != nil {
		return nil, err
	}
	if in.DryRun {
		clear(pt)
		return nil, errDryRun
	}
	out := &kmsapi.DecryptOutput{KeyID: k.ARN, Plaintext: pt, EncryptionAlgorithm: algOrDefault(in.EncryptionAlgorithm)}
	if k.Rec.KeySpec == keys.SymmetricDefault {
		out.KeyMaterialID = ver.MaterialID
	}
	s.noteUse(ctx, &k.Rec, "Decrypt")
	return out, nil
}

// ReEncrypt opens a blob and seals its plaintext under another key (or the
// newest version of the same key, or another encryption context) without
// the plaintext leaving the service.
func (s *Service) ReEncrypt(ctx context.Context, caller Caller, in *kmsapi.ReEncryptInput) (*kmsapi.ReEncryptOutput, error) {
	v := newViolations(ctx)
	ignoreCT := v.dryRunModifiers(in.DryRun, in.DryRunModifiers)
	v.ciphertext(in.CiphertextBlob, ignoreCT)
	if v.given("sourceKeyId", in.SourceKeyID) {
		v.strLen("sourceKeyId", in.SourceKeyID, 1, 2048)
	} else if ignoreCT {
		v.add("Value null at 'sourceKeyId' failed to satisfy constraint: Member must not be null")
	}
	v.keyID("destinationKeyId", in.DestinationKeyID)
	v.encryptionContext("sourceEncryptionContext", in.SourceEncryptionContext)
	v.encryptionContext("destinationEncryptionContext", in.DestinationEncryptionContext)
	v.enum("sourceEncryptionAlgorithm", in.SourceEncryptionAlgorithm, encryptionAlgorithmEnum)
	v.enum("destinationEncryptionAlgorithm", in.DestinationEncryptionAlgorithm, encryptionAlgorithmEnum)
	v.grantTokens(in.GrantTokens)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	ctx = withGrantTokens(ctx, in.GrantTokens)
	dst, dstAlias, err := s.resolveAlias(ctx, caller, in.DestinationKeyID, keyrepo.AnyForm|keyrepo.FormOtherAccount)
	if err != nil {
		return nil, err
	}
	var pt []byte
	var src *keyrepo.Key
	var ver *keyrepo.Version
	if ignoreCT {
		src, err = s.dryRunOpen(ctx, caller, in.SourceKeyID, in.SourceEncryptionContext, in.SourceEncryptionAlgorithm, "ReEncrypt", "kms:ReEncryptFrom", dst)
	} else {
		pt, src, ver, err = s.open(ctx, caller, in.CiphertextBlob, in.SourceKeyID, in.SourceEncryptionContext, in.SourceEncryptionAlgorithm, "ReEncrypt", "kms:ReEncryptFrom", dst)
	}
	if err != nil {
		return nil, err
	}
	sameKey := "false"
	if src.Rec.ID == dst.Rec.ID {
		sameKey = "true"
	}
	toCond := &authz.Conditions{EC: in.DestinationEncryptionContext, Alias: dstAlias, Extra: map[string]string{
		"kms:encryptionalgorithm": algOrDefault(in.DestinationEncryptionAlgorithm), "kms:reencryptonsamekey": sameKey}}
	defer clear(pt)
	// The destination's state and usage are looked at only once the caller
	// may use it: an unauthorized caller learns nothing about it.
	if err := s.authz.Key(ctx, &caller, "kms:ReEncryptTo", dst, toCond); err != nil {
		return nil, err
	}
	if err := s.usable(dst, "ReEncrypt", keys.UsageEncrypt); err != nil {
		return nil, err
	}
	if err := checkAlgorithm(dst, in.DestinationEncryptionAlgorithm); err != nil {
		return nil, err
	}
	// A dry run that ignores the ciphertext has no plaintext to measure:
	// only the encryption context is checked.
	dstAlg := algOrDefault(in.DestinationEncryptionAlgorithm)
	if err := checkSeal(dst, dstAlg, pt, in.DestinationEncryptionContext); err != nil {
		return nil, err
	}
	if in.DryRun {
		return nil, errDryRun
	}
	blob, err := s.sealFor(dst, dstAlg, pt, in.DestinationEncryptionContext, "ReEncrypt")
	if err != nil {
		return nil, err
	}
	out := &kmsapi.ReEncryptOutput{
		CiphertextBlob: blob, SourceKeyID: src.ARN, KeyID: dst.ARN,
		SourceEncryptionAlgorithm: algOrDefault(in.SourceEncryptionAlgorithm), DestinationEncryptionAlgorithm: dstAlg,
	}
	if src.Rec.KeySpec == keys.SymmetricDefault {
		out.SourceKeyMaterialID = ver.MaterialID
	}
	if dst.Rec.KeySpec == keys.SymmetricDefault {
		out.DestinationKeyMaterialID = dst.Current.MaterialID
	}
	s.noteUse(ctx, &src.Rec, "ReEncrypt")
	s.noteUse(ctx, &dst.Rec, "ReEncrypt")
	return out, nil
}

// wrappingKey finds, authorizes and checks the symmetric key that a data
// key or data key pair is to be encrypted under.
func (s *Service) wrappingKey(ctx context.Context, caller Caller, keyID, op string, cond *authz.Conditions) (*keyrepo.Key, error) {
	k, err := s.useKey(ctx, &caller, keyID, keyrepo.AnyForm|keyrepo.FormOtherAccount, "kms:"+op, cond)
	if err != nil {
		return nil, err
	}
	if err := s.usable(k, op, keys.UsageEncrypt); err != nil {
		return nil, err
	}
	if k.Rec.KeySpec != keys.SymmetricDefault {
		return nil, newErr(fault.InvalidKeyUsage, "%s key spec is %s which is not valid for %s.", k.ARN, k.Rec.KeySpec, op)
	}
	return k, nil
}

// GenerateDataKey returns a fresh data key in plaintext and sealed under a
// symmetric key.
func (s *Service) GenerateDataKey(ctx context.Context, caller Caller, in *kmsapi.GenerateDataKeyInput) (*kmsapi.GenerateDataKeyOutput, error) {
	return s.generateDataKey(ctx, caller, in, true, "GenerateDataKey")
}

// GenerateDataKeyWithoutPlaintext is GenerateDataKey without the plaintext
// copy of the data key in the response.
func (s *Service) GenerateDataKeyWithoutPlaintext(ctx context.Context, caller Caller, in *kmsapi.GenerateDataKeyInput) (*kmsapi.GenerateDataKeyOutput, error) {
	return s.generateDataKey(ctx, caller, in, false, "GenerateDataKeyWithoutPlaintext")
}

func (s *Service) generateDataKey(ctx context.Context, caller Caller, in *kmsapi.GenerateDataKeyInput, withPlaintext bool, op string) (*kmsapi.GenerateDataKeyOutput, error) {
	v := newViolations(ctx)
	v.keyID("keyId", in.KeyID)
	v.intRange("numberOfBytes", in.NumberOfBytes, 1, 1024)
	// AWS answers a bad data key spec with the CreateKey KeySpec list
	// (reference §1.3); clients compare messages, so this keeps the quirk.
	if in.KeySpec != "AES_256" && in.KeySpec != "AES_128" {
		v.enum("keySpec", in.KeySpec, keySpecEnum)
	}
	v.encryptionContext("encryptionContext", in.EncryptionContext)
	v.grantTokens(in.GrantTokens)
	if withPlaintext { // GenerateDataKeyWithoutPlaintext has no Recipient
		v.recipient(in.Recipient)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if withPlaintext {
		if err := refuseRecipient(in.Recipient); err != nil {
			return nil, err
		}
	}
	if (in.KeySpec == "") == (in.NumberOfBytes == nil) {
		return nil, newErr(fault.Validation, "Please specify either number of bytes or key spec.")
	}
	n := 32
	switch {
	case in.NumberOfBytes != nil:
		n = int(*in.NumberOfBytes)
	case in.KeySpec == "AES_128":
		n = 16
	}
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	ctx = withGrantTokens(ctx, in.GrantTokens)
	k, err := s.wrappingKey(ctx, caller, in.KeyID, op, &authz.Conditions{EC: in.EncryptionContext, Extra: symmetricAlgorithm})
	if err != nil {
		return nil, err
	}
	if in.DryRun {
		return nil, errDryRun
	}
	dataKey := make([]byte, n)
	if _, err := s.random(dataKey); err != nil {
		return nil, s.storeErr(op, err)
	}
	blob, err := k.Current.Sym.Seal(dataKey, in.EncryptionContext)
	if err != nil {
		return nil, s.storeErr(op, err)
	}
	out := &kmsapi.GenerateDataKeyOutput{CiphertextBlob: blob, KeyID: k.ARN, KeyMaterialID: k.Current.MaterialID}
	if withPlaintext {
		out.Plaintext = dataKey
	}
	s.noteUse(ctx, &k.Rec, op)
	return out, nil
}

// GenerateRandom returns 1 to 1024 random bytes.
func (s *Service) GenerateRandom(ctx context.Context, caller Caller, in *kmsapi.GenerateRandomInput) (*kmsapi.GenerateRandomOutput, error) {
	v := newViolations(ctx)
	v.intRange("numberOfBytes", in.NumberOfBytes, 1, 1024)
	v.optStrLen("customKeyStoreId", in.CustomKeyStoreID, 1, 64)
	v.recipient(in.Recipient)
	if err := v.err(); err != nil {
		return nil, err
	}
	if in.NumberOfBytes == nil {
		return nil, newErr(fault.Validation, "NumberOfBytes is required.")
	}
	if in.CustomKeyStoreID != nil {
		return nil, errCustomKeyStoreNotFound(*in.CustomKeyStoreID)
	}
	if err := refuseRecipient(in.Recipient); err != nil {
		return nil, err
	}
	if err := s.authz.Account(&caller, "kms:GenerateRandom", "*", nil); err != nil {
		return nil, err
	}
	b := make([]byte, *in.NumberOfBytes)
	if _, err := s.random(b); err != nil {
		return nil, s.storeErr("GenerateRandom", err)
	}
	return &kmsapi.GenerateRandomOutput{Plaintext: b}, nil
}

// reloadLimit bounds how often a blob naming a version newer than the
// cached key makes the key be read again: once a second per key. Such a
// blob is what another node's rotation makes before this node hears of it,
// but anyone allowed to decrypt with a key can also make one up, and each
// reload reads the store, opens every version and drops the cache's
// fills under way.
type reloadLimit struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// reloadLimitKeys bounds the keys reloadLimit remembers; past it, keys
// reloaded within the last second keep their place and others wait.
const reloadLimitKeys = 4096

func (l *reloadLimit) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.last[key]; ok && now.Sub(t) < time.Second && !now.Before(t) {
		return false
	}
	if l.last == nil {
		l.last = make(map[string]time.Time)
	}
	if len(l.last) >= reloadLimitKeys {
		for k, t := range l.last {
			if now.Sub(t) >= time.Second || now.Before(t) {
				delete(l.last, k)
			}
		}
		if len(l.last) >= reloadLimitKeys {
			return false
		}
	}
	l.last[key] = now
	return true
}

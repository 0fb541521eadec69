package service

import (
	"context"
	"errors"
	"strings"

	"github.com/openkms/kms/internal/authz"
	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/kmsapi"

	"github.com/openkms/kms/internal/keys"
)

// Asymmetric and HMAC operations: Sign, Verify, GetPublicKey,
// DeriveSharedSecret, GenerateMac, VerifyMac and the data key pairs. The
// private half of every key stays in the keys package.

var (
	signingAlgorithmEnum = []string{"RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512",
		"RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512",
		"ECDSA_SHA_256", "ECDSA_SHA_384", "ECDSA_SHA_512", "SM2DSA", "ML_DSA_SHAKE_256", "ED25519_SHA_512", "ED25519_PH_SHA_512"}
	messageTypeEnum  = []string{"RAW", "DIGEST", "EXTERNAL_MU"}
	macAlgorithmEnum = []string{"HMAC_SHA_384", "HMAC_SHA_256", "HMAC_SHA_224", "HMAC_SHA_512"}
	keyPairSpecEnum  = []string{"RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521",
		"ECC_SECG_P256K1", "SM2", "ECC_NIST_EDWARDS25519", "ML_KEM_512", "ML_KEM_768", "ML_KEM_1024"}
	errInvalidSignature = &fault.Error{Code: fault.InvalidSignature}
	errInvalidMac       = &fault.Error{Code: fault.InvalidMac}
)

// signError turns a keys error of Sign or Verify into AWS's.
func signError(k *keyrepo.Key, alg, msgType string, err error) error {
	switch {
	case errors.Is(err, keys.ErrInvalidSignature):
		return errInvalidSignature
	case errors.Is(err, keys.ErrAlgorithm):
		return newErr(fault.InvalidKeyUsage, "Algorithm %s is incompatible with key spec %s.", alg, k.Rec.KeySpec)
	case errors.Is(err, keys.ErrDigestLength):
		return newErr(fault.Validation, "Digest is invalid length for algorithm %s.", alg)
	case errors.Is(err, keys.ErrMessageType):
		return newErr(fault.Validation, "MessageType %s is not valid for algorithm %s.", msgType, alg)
	case errors.Is(err, keys.ErrUnsupported):
		return newErr(fault.UnsupportedOperation, "MessageType %s is not supported by this server for Verify.", msgType)
	}
	return err
}

// signingKey finds, authorizes and checks the key of a Sign or Verify,
// and checks the algorithm and message against it: everything but the
// signing or verifying, so that a dry run fails where the call would.
func (s *Service) signingKey(ctx context.Context, caller Caller, keyID, action, alg, msgType string, msg []byte) (*keyrepo.Key, error) {
	cond := &authz.Conditions{Extra: map[string]string{"kms:signingalgorithm": alg, "kms:messagetype": msgType}}
	k, err := s.useKey(ctx, &caller, keyID, keyrepo.AnyForm|keyrepo.FormOtherAccount, "kms:"+action, cond)
	if err != nil {
		return nil, err
	}
	if err := s.usable(k, action, keys.UsageSign); err != nil {
		return nil, err
	}
	check := k.Current.Asym.CheckMessage
	if action == "Verify" {
		check = k.Current.Asym.CheckVerifyMessage
	}
	if err := check(alg, msgType, msg); err != nil {
		return nil, signError(k, alg, msgType, err)
	}
	return k, nil
}

func validateSigning(v *violations, keyID string, msg []byte, msgType, alg string, tokens []string) {
	v.keyID("keyId", keyID)
	if msg == nil {
		v.add("Value null at 'message' failed to satisfy constraint: Member must not be null")
	} else {
		v.blobLen("message", msg, 1, 4096)
	}
	v.enum("messageType", msgType, messageTypeEnum)
	v.requiredEnum("signingAlgorithm", alg, signingAlgorithmEnum)
	v.grantTokens(tokens)
}

func msgTypeOrRaw(t string) string {
	if t == "" {
		return keys.MessageRaw
	}
	return t
}

// Sign signs a message or its digest with an asymmetric SIGN_VERIFY key.
func (s *Service) Sign(ctx context.Context, caller Caller, in *kmsapi.SignInput) (*kmsapi.SignOutput, error) {
	v := newViolations(ctx)
	validateSigning(&v, in.KeyID, in.Message, in.MessageType, in.SigningAlgorithm, in.GrantTokens)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	ctx = withGrantTokens(ctx, in.GrantTokens)
	mt := msgTypeOrRaw(in.MessageType)
	k, err := s.signingKey(ctx, caller, in.KeyID, "Sign", in.SigningAlgorithm, mt, in.Message)
	if err != nil {
		return nil, err
	}
	if in.DryRun {
		return nil, errDryRun
	}
	sig, err := k.Current.Asym.Sign(in.SigningAlgorithm, mt, in.Message)
	if err != nil {
		return nil, signError(k, in.SigningAlgorithm, mt, err)
	}
	s.noteUse(ctx, &k.Rec, "Sign")
	return &kmsapi.SignOutput{KeyID: k.ARN, Signature: sig, SigningAlgorithm: in.SigningAlgorithm}, nil
}

// Verify checks a signature; one that does not verify is
// KMSInvalidSignatureException, never SignatureValid false.
func (s *Service) Verify(ctx context.Context, caller Caller, in *kmsapi.VerifyInput) (*kmsapi.VerifyOutput, error) {
	v := newViolations(ctx)
	validateSigning(&v, in.KeyID, in.Message, in.MessageType, in.SigningAlgorithm, in.GrantTokens)
	if in.Signature == nil {
		v.add("Value null at 'signature' failed to satisfy constraint: Member must not be null")
	} else {
		v.blobLen("signature", in.Signature, 1, 6144)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	ctx = withGrantTokens(ctx, in.GrantTokens)
	mt := msgTypeOrRaw(in.MessageType)
	k, err := s.signingKey(ctx, caller, in.KeyID, "Verify", in.SigningAlgorithm, mt, in.Message)
	if err != nil {
		return nil, err
	}
	if in.DryRun {
		return nil, errDryRun
	}
	if err := k.Current.Asym.Verify(in.SigningAlgorithm, mt, in.Message, in.Signature); err != nil {
		return nil, signError(k, in.SigningAlgorithm, mt, err)
	}
	s.noteUse(ctx, &k.Rec, "Verify")
	return &kmsapi.VerifyOutput{KeyID: k.ARN, SignatureValid: true, SigningAlgorithm: in.SigningAlgorithm}, nil
}

// GetPublicKey returns the public half of an asymmetric key.
func (s *Service) GetPublicKey(ctx context.Context, caller Caller, in *kmsapi.GetPublicKeyInput) (*kmsapi.GetPublicKeyOutput, error) {
	v := newViolations(ctx)
	v.keyID("keyId", in.KeyID)
	v.grantTokens(in.GrantTokens)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	ctx = withGrantTokens(ctx, in.GrantTokens)
	k, err := s.useKey(ctx, &caller, in.KeyID, keyrepo.AnyForm|keyrepo.FormOtherAccount, "kms:GetPublicKey", nil)
	if err != nil {
		return nil, err
	}
	if !keys.IsAsymmetric(k.Rec.KeySpec) {
		return nil, newErr(fault.UnsupportedOperation, "%s has key spec %s, which has no public key.", k.ARN, k.Rec.KeySpec)
	}
	if err := s.usable(k, "GetPublicKey", k.Rec.KeyUsage); err != nil {
		return nil, err
	}
	out := &kmsapi.GetPublicKeyOutput{KeyID: k.ARN, PublicKey: k.Current.Asym.PublicDER, CustomerMasterKeySpec: k.Rec.KeySpec,
		KeySpec: k.Rec.KeySpec, KeyUsage: k.Rec.KeyUsage}
	algs := keys.Algorithms(k.Rec.KeySpec, k.Rec.KeyUsage)
	out.EncryptionAlgorithms, out.SigningAlgorithms = algs.Encryption, algs.Signing
	out.KeyAgreementAlgorithms, out.EncapsulationAlgorithms = algs.KeyAgreement, algs.Encapsulation
	return out, nil
}

// DeriveSharedSecret computes an ECDH shared secret between a
// KEY_AGREEMENT key and a peer's public key.
func (s *Service) DeriveSharedSecret(ctx context.Context, caller Caller, in *kmsapi.DeriveSharedSecretInput) (*kmsapi.DeriveSharedSecretOutput, error) {
	v := newViolations(ctx)
	v.keyID("keyId", in.KeyID)
	v.requiredEnum("keyAgreementAlgorithm", in.KeyAgreementAlgorithm, []string{"ECDH"})
	if in.PublicKey == nil {
		v.add("Value null at 'publicKey' failed to satisfy constraint: Member must not be null")
	} else {
		v.blobLen("publicKey", in.PublicKey, 1, 8192)
	}
	v.grantTokens(in.GrantTokens)
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
	cond := &authz.Conditions{Extra: map[string]string{"kms:keyagreementalgorithm": in.KeyAgreementAlgorithm}}
	k, err := s.useKey(ctx, &caller, in.KeyID, keyrepo.AnyForm|keyrepo.FormOtherAccount, "kms:DeriveSharedSecret", cond)
	if err != nil {
		return nil, err
	}
	if err := s.usable(k, "DeriveSharedSecret", keys.UsageKeyAgreement); err != nil {
		return nil, err
	}
	// A public key that is not one, or not on the key's curve, is refused
	// before a dry run is answered: AWS's answer is an empty message.
	if err := k.Current.Asym.CheckPeerKey(in.PublicKey); err != nil {
		return nil, &fault.Error{Code: fault.Validation}
	}
	if in.DryRun {
		return nil, errDryRun
	}
	secret, err := k.Current.Asym.DeriveSharedSecret(in.PublicKey)
	if err != nil {
		return nil, &fault.Error{Code: fault.Validation}
	}
	s.noteUse(ctx, &k.Rec, "DeriveSharedSecret")
	return &kmsapi.DeriveSharedSecretOutput{KeyID: k.ARN, SharedSecret: secret, KeyAgreementAlgorithm: "ECDH", KeyOrigin: k.Rec.Origin}, nil
}

// GenerateMac computes an HMAC with a GENERATE_VERIFY_MAC key.
func (s *Service) GenerateMac(ctx context.Context, caller Caller, in *kmsapi.GenerateMacInput) (*kmsapi.GenerateMacOutput, error) {
	k, err := s.macKey(ctx, caller, "GenerateMac", in.KeyID, in.Message, in.MacAlgorithm, in.GrantTokens, nil)
	if err != nil {
		return nil, err
	}
	if in.DryRun {
		return nil, errDryRun
	}
	mac, err := k.Current.MAC.Mac(in.MacAlgorithm, in.Message)
	if err != nil {
		return nil, macError(k, in.MacAlgorithm, err)
	}
	s.noteUse(ctx, &k.Rec, "GenerateMac")
	return &kmsapi.GenerateMacOutput{Mac: mac, MacAlgorithm: in.MacAlgorithm, KeyID: k.ARN}, nil
}

// VerifyMac checks an HMAC; a mismatch is KMSInvalidMacException.
func (s *Service) VerifyMac(ctx context.Context, caller Caller, in *kmsapi.VerifyMacInput) (*kmsapi.VerifyMacOutput, error) {
	k, err := s.macKey(ctx, caller, "VerifyMac", in.KeyID, in.Message, in.MacAlgorithm, in.GrantTokens, in.Mac)
	if err != nil {
		return nil, err
	}
	if in.DryRun {
		return nil, errDryRun
	}
	if err := k.Current.MAC.VerifyMac(in.MacAlgorithm, in.Message, in.Mac); err != nil {
		return nil, macError(k, in.MacAlgorithm, err)
	}
	s.noteUse(ctx, &k.Rec, "VerifyMac")
	return &kmsapi.VerifyMacOutput{KeyID: k.ARN, MacValid: true, MacAlgorithm: in.MacAlgorithm}, nil
}

func (s *Service) macKey(ctx context.Context, caller Caller, op, keyID string, msg []byte, alg string, tokens []string, mac []byte) (*keyrepo.Key, error) {
	v := newViolations(ctx)
	if msg == nil {
		v.add("Value null at 'message' failed to satisfy constraint: Member must not be null")
	} else {
		v.blobLen("message", msg, 1, 4096)
	}
	v.keyID("keyId", keyID)
	v.requiredEnum("macAlgorithm", alg, macAlgorithmEnum)
	if op == "VerifyMac" {
		if mac == nil {
			v.add("Value null at 'mac' failed to satisfy constraint: Member must not be null")
		} else {
			v.blobLen("mac", mac, 1, 6144)
		}
	}
	v.grantTokens(tokens)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := checkGrantTokens(tokens); err != nil {
		return nil, err
	}
	ctx = withGrantTokens(ctx, tokens)
	cond := &authz.Conditions{Extra: map[string]string{"kms:macalgorithm": alg}}
	k, err := s.useKey(ctx, &caller, keyID, keyrepo.AnyForm|keyrepo.FormOtherAccount, "kms:"+op, cond)
	if err != nil {
		return nil, err
	}
	if err := s.usable(k, op, keys.UsageMAC); err != nil {
		return nil, err
	}
	// Checked here, not only by the MAC itself, so that a dry run fails
	// where the call would.
	if err := k.Current.MAC.CheckAlgorithm(alg); err != nil {
		return nil, macError(k, alg, err)
	}
	return k, nil
}

func macError(k *keyrepo.Key, alg string, err error) error {
	switch {
	case errors.Is(err, keys.ErrAlgorithm):
		return newErr(fault.InvalidKeyUsage, "Algorithm %s is incompatible with key spec %s.", alg, k.Rec.KeySpec)
	case errors.Is(err, keys.ErrInvalidSignature):
		return errInvalidMac
	}
	return err
}

// GenerateDataKeyPair returns a fresh key pair: the public key, the private
// key as PKCS#8 DER in plaintext and encrypted under a symmetric KMS key.
func (s *Service) GenerateDataKeyPair(ctx context.Context, caller Caller, in *kmsapi.GenerateDataKeyPairInput) (*kmsapi.GenerateDataKeyPairOutput, error) {
	return s.generateDataKeyPair(ctx, caller, in, true, "GenerateDataKeyPair")
}

// GenerateDataKeyPairWithoutPlaintext is GenerateDataKeyPair without the
// plaintext private key.
func (s *Service) GenerateDataKeyPairWithoutPlaintext(ctx context.Context, caller Caller, in *kmsapi.GenerateDataKeyPairInput) (*kmsapi.GenerateDataKeyPairOutput, error) {
	return s.generateDataKeyPair(ctx, caller, in, false, "GenerateDataKeyPairWithoutPlaintext")
}

func (s *Service) generateDataKeyPair(ctx context.Context, caller Caller, in *kmsapi.GenerateDataKeyPairInput, withPlaintext bool, op string) (*kmsapi.GenerateDataKeyPairOutput, error) {
	v := newViolations(ctx)
	v.keyID("keyId", in.KeyID)
	v.requiredEnum("keyPairSpec", in.KeyPairSpec, keyPairSpecEnum)
	v.encryptionContext("encryptionContext", in.EncryptionContext)
	v.grantTokens(in.GrantTokens)
	if withPlaintext { // GenerateDataKeyPairWithoutPlaintext has no Recipient
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
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	ctx = withGrantTokens(ctx, in.GrantTokens)
	if in.KeyPairSpec == "SM2" {
		return nil, newErr(fault.UnsupportedOperation, "KeyPairSpec SM2 is only available in AWS China Regions.")
	}
	k, err := s.wrappingKey(ctx, caller, in.KeyID, op, &authz.Conditions{EC: in.EncryptionContext, Extra: map[string]string{
		"kms:encryptionalgorithm": keys.SymmetricDefault, "kms:datakeypairspec": in.KeyPairSpec}})
	if err != nil {
		return nil, err
	}
	if in.DryRun {
		return nil, errDryRun
	}
	var priv []byte
	ctx, done, err := rsaOutsideBound(ctx, in.KeyPairSpec, func(ctx context.Context) (err error) {
		priv, err = s.makeKeyPair(ctx, caller.AccountID, op, in.KeyPairSpec)
		return err
	})
	defer done()
	if err != nil {
		return nil, err
	}
	pair, err := keys.ParseAsymmetric(in.KeyPairSpec, priv)
	if err != nil {
		return nil, s.storeErr(op, err)
	}
	blob, err := k.Current.Sym.Seal(priv, in.EncryptionContext)
	if err != nil {
		return nil, s.storeErr(op, err)
	}
	out := &kmsapi.GenerateDataKeyPairOutput{PrivateKeyCiphertextBlob: blob, PublicKey: pair.PublicDER, KeyID: k.ARN,
		KeyPairSpec: in.KeyPairSpec, KeyMaterialID: k.Current.MaterialID}
	if withPlaintext {
		out.PrivateKeyPlaintext = priv
	} else {
		clear(priv)
	}
	s.noteUse(ctx, &k.Rec, op)
	return out, nil
}

// makeKeyPair makes a private key of spec, DER PKCS#8, for a call of
// account: a data key pair's, or the wrapping key of
// GetParametersForImport. An RSA key pair costs a CPU for up to a second
// (RSA_4096), some ten thousand times an Encrypt: AWS gives both calls
// quotas of their own (GetParametersForImport one in four seconds;
// GenerateDataKeyPair one a second for RSA_2048, one in ten seconds for
// RSA_4096). Here at most Config.RSAKeyPairs are made at once, and the
// calls past them wait their turn (rsaTurn), so that callers asking for
// many cannot take every CPU from every other call. A call whose client
// has gone stops waiting, with the context's error.
func (s *Service) makeKeyPair(ctx context.Context, account, op, spec string) ([]byte, error) {
	release, err := s.rsaTurn(ctx, account, spec)
	if err != nil {
		return nil, err
	}
	defer release()
	priv, err := s.genKeyPair(spec)
	if err != nil {
		return nil, s.storeErr(op, err)
	}
	return priv, nil
}

// rsaTurn waits, if spec is an RSA spec, for a place among the RSA key
// pairs made at once (Config.RSAKeyPairs), or until ctx is done; the
// caller calls release once its key is made. Making one takes up to a
// second of a CPU: without the bound, a few dozen concurrent calls of one
// principal would hold every CPU. The places go round-robin between the
// accounts whose calls wait (fairsemaphore.go), so that an account keeping
// many calls waiting delays another's by one turn, not by its whole queue.
func (s *Service) rsaTurn(ctx context.Context, account, spec string) (release func(), err error) {
	if !strings.HasPrefix(spec, "RSA_") {
		return func() {}, nil
	}
	return s.rsaPairs.acquire(ctx, account)
}

// RSAKeyPairsWaiting is how many calls wait for their turn to make an RSA
// key pair (rsaTurn).
func (s *Service) RSAKeyPairsWaiting() int { return s.rsaPairs.waitingCalls() }

package service

import (
	"context"
	"errors"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/kmsapi"
)

// Encapsulate and Decapsulate: a shared secret established with an
// ML-KEM key (FIPS 203). Encapsulate needs only the public key, which
// anyone with GetPublicKey can use outside the service; Decapsulate is
// what only the service can do.

var encapsulationAlgorithmEnum = []string{keys.EncapsulationAlgorithm}

// kemKey finds, authorizes and checks the ML-KEM key of an Encapsulate or
// Decapsulate: everything but the operation itself, so that a dry run
// fails where the call would. The request's algorithm is no condition of
// the authorization: AWS documents no condition key for it (it has one
// value).
func (s *Service) kemKey(ctx context.Context, caller Caller, op, keyID string) (*keyrepo.Key, error) {
	k, err := s.useKey(ctx, &caller, keyID, keyrepo.AnyForm|keyrepo.FormOtherAccount, "kms:"+op, nil)
	if err != nil {
		return nil, err
	}
	if err := s.usable(k, op, keys.UsageKEM); err != nil {
		return nil, err
	}
	return k, nil
}

// Encapsulate makes a fresh 32-byte shared secret and its encapsulated
// form under an ML-KEM key's public key.
func (s *Service) Encapsulate(ctx context.Context, caller Caller, in *kmsapi.EncapsulateInput) (*kmsapi.EncapsulateOutput, error) {
	v := newViolations(ctx)
	v.keyID("keyId", in.KeyID)
	v.requiredEnum("encapsulationAlgorithm", in.EncapsulationAlgorithm, encapsulationAlgorithmEnum)
	v.grantTokens(in.GrantTokens)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	ctx = withGrantTokens(ctx, in.GrantTokens)
	k, err := s.kemKey(ctx, caller, "Encapsulate", in.KeyID)
	if err != nil {
		return nil, err
	}
	if in.DryRun {
		return nil, errDryRun
	}
	shared, ct, err := k.Current.Asym.Encapsulate()
	if err != nil {
		return nil, s.storeErr("Encapsulate", err)
	}
	s.noteUse(ctx, &k.Rec, "Encapsulate")
	return &kmsapi.EncapsulateOutput{KeyID: k.ARN, SharedSecret: shared, SharedSecretCiphertextBlob: ct,
		EncapsulationAlgorithm: in.EncapsulationAlgorithm}, nil
}

// Decapsulate recovers the shared secret of an encapsulated form with an
// ML-KEM key's private key. Only a ciphertext of the wrong length for the
// key is refused; any other gives 32 bytes, which are not the sender's
// secret if the ciphertext was made for another key or altered (FIPS
// 203's implicit rejection): the parties must confirm that they hold the
// same secret before they use it.
func (s *Service) Decapsulate(ctx context.Context, caller Caller, in *kmsapi.DecapsulateInput) (*kmsapi.DecapsulateOutput, error) {
	v := newViolations(ctx)
	v.keyID("keyId", in.KeyID)
	if in.SharedSecretCiphertextBlob == nil {
		v.add("Value null at 'sharedSecretCiphertextBlob' failed to satisfy constraint: Member must not be null")
	} else {
		v.blobLen("sharedSecretCiphertextBlob", in.SharedSecretCiphertextBlob, 1, 6144)
	}
	v.requiredEnum("encapsulationAlgorithm", in.EncapsulationAlgorithm, encapsulationAlgorithmEnum)
	v.grantTokens(in.GrantTokens)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	ctx = withGrantTokens(ctx, in.GrantTokens)
	k, err := s.kemKey(ctx, caller, "Decapsulate", in.KeyID)
	if err != nil {
		return nil, err
	}
	if len(in.SharedSecretCiphertextBlob) != keys.MLKEMCiphertextSize(k.Rec.KeySpec) {
		return nil, errInvalidCiphertext
	}
	if in.DryRun {
		return nil, errDryRun
	}
	shared, err := k.Current.Asym.Decapsulate(in.SharedSecretCiphertextBlob)
	switch {
	case errors.Is(err, keys.ErrCiphertextLength):
		return nil, errInvalidCiphertext
	case err != nil:
		return nil, s.storeErr("Decapsulate", err)
	}
	s.noteUse(ctx, &k.Rec, "Decapsulate")
	return &kmsapi.DecapsulateOutput{KeyID: k.ARN, SharedSecret: shared, EncapsulationAlgorithm: in.EncapsulationAlgorithm}, nil
}

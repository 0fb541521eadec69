package service

import (
	"strings"

	"github.com/openkms/kms/internal/keys"
)

// Key usages.
const (
	usageEncrypt      = "ENCRYPT_DECRYPT"
	usageSign         = "SIGN_VERIFY"
	usageMAC          = "GENERATE_VERIFY_MAC"
	usageKeyAgreement = "KEY_AGREEMENT"
)

// specUsages lists the key usages each key spec allows (reference §3.2).
var specUsages = map[string][]string{
	"SYMMETRIC_DEFAULT":     {usageEncrypt},
	"RSA_2048":              {usageEncrypt, usageSign},
	"RSA_3072":              {usageEncrypt, usageSign},
	"RSA_4096":              {usageEncrypt, usageSign},
	"ECC_NIST_P256":         {usageSign, usageKeyAgreement},
	"ECC_NIST_P384":         {usageSign, usageKeyAgreement},
	"ECC_NIST_P521":         {usageSign, usageKeyAgreement},
	"ECC_SECG_P256K1":       {usageSign},
	"ECC_NIST_EDWARDS25519": {usageSign},
	"ML_DSA_44":             {usageSign},
	"ML_DSA_65":             {usageSign},
	"ML_DSA_87":             {usageSign},
	"HMAC_224":              {usageMAC},
	"HMAC_256":              {usageMAC},
	"HMAC_384":              {usageMAC},
	"HMAC_512":              {usageMAC},
}

func isHMAC(spec string) bool { return strings.HasPrefix(spec, "HMAC_") }

func isAsymmetric(spec string) bool { return spec != symmetricDefault && !isHMAC(spec) }

// generateMaterial makes fresh material for a key spec.
func generateMaterial(spec string) ([]byte, error) {
	switch {
	case spec == symmetricDefault:
		return keys.GenerateMaterial(), nil
	case isHMAC(spec):
		return keys.GenerateHMAC(spec), nil
	}
	return keys.GenerateAsymmetric(spec)
}

// algorithms fills a key's algorithm lists in KeyMetadata or GetPublicKey
// by its spec and usage: only the list of its usage is present.
func algorithms(spec, usage string) (enc, sig, mac, agree []string) {
	switch usage {
	case usageEncrypt:
		if spec == symmetricDefault {
			return []string{symmetricDefault}, nil, nil, nil
		}
		return keys.EncryptionAlgorithms(spec), nil, nil, nil
	case usageSign:
		return nil, keys.SigningAlgorithms(spec), nil, nil
	case usageMAC:
		return nil, nil, []string{keys.MacAlgorithm(spec)}, nil
	case usageKeyAgreement:
		return nil, nil, nil, []string{"ECDH"}
	}
	return nil, nil, nil, nil
}

// grantOperations lists the grant operations a key of this spec and usage
// supports.
func grantOperations(spec, usage string) []string {
	common := []string{"CreateGrant", "RetireGrant", "DescribeKey"}
	switch {
	case spec == symmetricDefault:
		return symmetricGrantOperations
	case usage == usageEncrypt:
		return append(common, "Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GetPublicKey")
	case usage == usageSign:
		return append(common, "Sign", "Verify", "GetPublicKey")
	case usage == usageMAC:
		return append(common, "GenerateMac", "VerifyMac")
	case usage == usageKeyAgreement:
		return append(common, "DeriveSharedSecret", "GetPublicKey")
	}
	return common
}

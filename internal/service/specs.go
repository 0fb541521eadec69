package service

import "github.com/openkms/kms/internal/keys"

// grantOperations lists the grant operations a key of this spec and usage
// supports.
func grantOperations(spec, usage string) []string {
	common := []string{"CreateGrant", "RetireGrant", "DescribeKey"}
	switch {
	case spec == keys.SymmetricDefault:
		return symmetricGrantOperations
	case usage == keys.UsageEncrypt:
		return append(common, "Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GetPublicKey")
	case usage == keys.UsageSign:
		return append(common, "Sign", "Verify", "GetPublicKey")
	case usage == keys.UsageMAC:
		return append(common, "GenerateMac", "VerifyMac")
	case usage == keys.UsageKeyAgreement:
		return append(common, "DeriveSharedSecret", "GetPublicKey")
	case usage == keys.UsageKEM:
		return append(common, "Encapsulate", "Decapsulate", "GetPublicKey")
	}
	return common
}

package keys

import "strings"

// Key specs and usages (reference §3.2). This file is the one table of what
// each key spec allows; every other package reads it.

// SymmetricDefault is the key spec (and the encryption algorithm) of a
// symmetric encryption key.
const SymmetricDefault = "SYMMETRIC_DEFAULT"

// Key usages.
const (
	UsageEncrypt      = "ENCRYPT_DECRYPT"
	UsageSign         = "SIGN_VERIFY"
	UsageMAC          = "GENERATE_VERIFY_MAC"
	UsageKeyAgreement = "KEY_AGREEMENT"
	UsageKEM          = "ENCAPSULATE_DECAPSULATE"
)

// specUsages lists the key usages each key spec allows.
var specUsages = map[string][]string{
	"SYMMETRIC_DEFAULT":     {UsageEncrypt},
	"RSA_2048":              {UsageEncrypt, UsageSign},
	"RSA_3072":              {UsageEncrypt, UsageSign},
	"RSA_4096":              {UsageEncrypt, UsageSign},
	"ECC_NIST_P256":         {UsageSign, UsageKeyAgreement},
	"ECC_NIST_P384":         {UsageSign, UsageKeyAgreement},
	"ECC_NIST_P521":         {UsageSign, UsageKeyAgreement},
	"ECC_SECG_P256K1":       {UsageSign},
	"ECC_NIST_EDWARDS25519": {UsageSign},
	"ML_DSA_44":             {UsageSign},
	"ML_DSA_65":             {UsageSign},
	"ML_DSA_87":             {UsageSign},
	"ML_KEM_512":            {UsageKEM},
	"ML_KEM_768":            {UsageKEM},
	"ML_KEM_1024":           {UsageKEM},
	"HMAC_224":              {UsageMAC},
	"HMAC_256":              {UsageMAC},
	"HMAC_384":              {UsageMAC},
	"HMAC_512":              {UsageMAC},
}

// Usages lists the key usages spec allows; none for a spec this server
// does not offer.
func Usages(spec string) []string { return specUsages[spec] }

// IsHMAC reports whether spec is an HMAC key spec.
func IsHMAC(spec string) bool { return strings.HasPrefix(spec, "HMAC_") }

// IsAsymmetric reports whether spec is an asymmetric key spec.
func IsAsymmetric(spec string) bool { return spec != SymmetricDefault && !IsHMAC(spec) }

// Generate makes fresh material for a key spec.
func Generate(spec string) ([]byte, error) {
	switch {
	case spec == SymmetricDefault:
		return GenerateMaterial(), nil
	case IsHMAC(spec):
		return GenerateHMAC(spec), nil
	}
	return GenerateAsymmetric(spec)
}

// KeyAlgorithms are the algorithms of a key, by kind.
type KeyAlgorithms struct {
	Encryption, Signing, MAC, KeyAgreement, Encapsulation []string
}

// Algorithms lists a key's algorithms by its spec and usage, as
// KeyMetadata and GetPublicKey show them: only the list of its usage is
// present.
func Algorithms(spec, usage string) KeyAlgorithms {
	switch usage {
	case UsageEncrypt:
		if spec == SymmetricDefault {
			return KeyAlgorithms{Encryption: []string{SymmetricDefault}}
		}
		return KeyAlgorithms{Encryption: EncryptionAlgorithms(spec)}
	case UsageSign:
		return KeyAlgorithms{Signing: SigningAlgorithms(spec)}
	case UsageMAC:
		return KeyAlgorithms{MAC: []string{MacAlgorithm(spec)}}
	case UsageKeyAgreement:
		return KeyAlgorithms{KeyAgreement: []string{"ECDH"}}
	case UsageKEM:
		return KeyAlgorithms{Encapsulation: []string{EncapsulationAlgorithm}}
	}
	return KeyAlgorithms{}
}

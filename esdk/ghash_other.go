//go:build !(amd64 || arm64) || purego

package esdk

// hardwareGHASH reports false: crypto/cipher's AES-GCM here is either
// its generic Go, whose GHASH looks up tables indexed by secret bits, or
// an assembly this package does not vouch for.
func hardwareGHASH() bool { return false }

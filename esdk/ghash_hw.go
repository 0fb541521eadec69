//go:build (amd64 || arm64) && !purego

package esdk

import "golang.org/x/sys/cpu"

// hardwareGHASH reports whether crypto/cipher's AES-GCM uses its
// assembly, with a constant-time GHASH, on this machine: the condition
// of crypto/internal/fips140/aes/gcm (supportsAESGCM).
func hardwareGHASH() bool {
	return cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ && cpu.X86.HasSSE41 && cpu.X86.HasSSSE3 ||
		cpu.ARM64.HasAES && cpu.ARM64.HasPMULL
}

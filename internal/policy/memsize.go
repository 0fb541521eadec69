package policy

// The memory a parsed policy takes, estimated from above, for the caches
// that hold policies and bound their bytes. Measured on amd64: a document
// parses to 3 to 20 bytes a byte of its text, the most for documents of
// many small statements or condition values (tiny statements, 10 bytes a
// byte; lists of one-character patterns, 20).
const (
	memBytesPerTextByte = 24
	memOverhead         = 256
)

// MemSize estimates, from above, the bytes p takes in memory, with as
// many again as its document's text, which those who hold a policy
// usually keep beside it; 0 for a nil p. It is an estimate for bounding
// caches, not a measurement.
func (p *Policy) MemSize() int {
	if p == nil {
		return 0
	}
	return memOverhead + p.textBytes*(1+memBytesPerTextByte)
}

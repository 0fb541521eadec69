package policy

import "unsafe"

// The memory a parsed policy takes, estimated from above, for the caches
// that hold policies and bound their bytes. Measured on amd64: a document
// parses to 3 to 20 bytes a byte of its text, the most for documents of
// many small statements or condition values (tiny statements, 10 bytes a
// byte; lists of one-character patterns, 20), beside what its wildcard
// patterns keep (patternBytes), which may reach some 55 bytes a byte (an
// element for each character of "?a?a...", six parts for each ":::::").
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
	return memOverhead + p.textBytes*(1+memBytesPerTextByte) + p.patternBytes
}

// patternBytes is what the compiled patterns of sts keep beyond the
// per-byte estimate, which covers a pattern for each value: the elements
// of each wildcard pattern, and the parts of each ARN pattern.
func patternBytes(sts []Statement) int {
	const elemSize, patternSize = int(unsafe.Sizeof(elem{})), int(unsafe.Sizeof(pattern{}))
	n := 0
	elems := func(ps []pattern) {
		for i := range ps {
			n += cap(ps[i].elems) * elemSize
		}
	}
	for i := range sts {
		c := &sts[i].c
		elems(c.actions)
		elems(c.resources)
		for j := range c.conds {
			elems(c.conds[j].strs)
			for _, a := range c.conds[j].arns {
				n += cap(a.parts) * patternSize
				elems(a.parts)
			}
		}
	}
	return n
}

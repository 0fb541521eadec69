package audit

import (
	"encoding/hex"
	"slices"
)

// Named is a set of line numbers of a log, counted from 1: the lines
// whose claimed hashes a LogCheck keeps, those that signed digests and
// high-water marks name. Once the log is checked it answers the hash each
// of them claims (Hash).
//
// It takes about 41 bytes per number (a map of hash strings took about
// 110): a server that signs its trail every 5 s names 6.3 million records
// a year, all of which kms audit verify checks.
type Named struct {
	seqs   []uint64 // sorted and unique once a check has begun
	ready  bool     // seqs is sorted, and claims sized
	claims []claim  // claims[i] is what line seqs[i] claims
	// odd holds the claims that are not 64 lowercase hex digits (a line
	// that is not a record claims ""): only a damaged log has them.
	odd map[uint64]string
}

// claim is the hash a named line claims: set once the check reached the
// line and the line claims a hash of 64 lowercase hex digits.
type claim struct {
	hash [32]byte
	set  bool
}

// Add adds line seq to the set. Call it before the set is given to
// NewLogCheck.
func (n *Named) Add(seq uint64) { n.seqs = append(n.seqs, seq) }

// prepare sorts the set and makes room for its claims.
func (n *Named) prepare() {
	if n.ready {
		return
	}
	slices.Sort(n.seqs)
	n.seqs = slices.Clip(slices.Compact(n.seqs))
	n.claims = make([]claim, len(n.seqs))
	n.ready = true
}

// index returns the position of seq in the set, or -1.
func (n *Named) index(seq uint64) int {
	if i, ok := slices.BinarySearch(n.seqs, seq); ok {
		return i
	}
	return -1
}

// note records the hash the line at index i claims.
func (n *Named) note(i int, hash string) {
	if len(hash) == 64 && isLowerHex(hash) {
		hex.Decode(n.claims[i].hash[:], []byte(hash))
		n.claims[i].set = true
		return
	}
	if n.odd == nil {
		n.odd = map[uint64]string{}
	}
	n.odd[n.seqs[i]] = hash
}

// Hash returns the hash line seq claims: "" if the line is not in the
// set, not in the log, or not a record.
func (n *Named) Hash(seq uint64) string {
	if n == nil {
		return ""
	}
	if h, ok := n.odd[seq]; ok {
		return h
	}
	if i := n.index(seq); i >= 0 && i < len(n.claims) && n.claims[i].set {
		return hex.EncodeToString(n.claims[i].hash[:])
	}
	return ""
}

// claimsHash reports whether line seq claims hash, as Hash(seq) == hash does,
// without making a string.
func (n *Named) claimsHash(seq uint64, hash string) bool {
	if n == nil {
		return hash == ""
	}
	if h, ok := n.odd[seq]; ok {
		return h == hash
	}
	i := n.index(seq)
	if i < 0 || i >= len(n.claims) || !n.claims[i].set {
		return hash == ""
	}
	var b [64]byte
	hex.Encode(b[:], n.claims[i].hash[:])
	return string(b[:]) == hash
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

package audit

import (
	"encoding/hex"
	"slices"
)

// Named is a set of sequence numbers of a log's records: those whose
// claimed hashes a LogCheck keeps, the records that signed digests and
// high-water marks name. Once the log is checked it answers the hash the
// record of each number claims (Hash), wherever in the log it stood.
//
// It takes about 41 bytes per number (a map of hash strings took about
// 110): a server that signs its trail every 5 s names 6.3 million records
// a year, all of which kms audit verify checks.
type Named struct {
	seqs   []uint64 // sorted and unique once a check has begun
	ready  bool     // seqs is sorted, and claims sized
	claims []claim  // claims[i] is what the record numbered seqs[i] claims
	// odd holds the first claims that are not 64 lowercase hex digits, and
	// more the other claims of numbers that several records carry: only a
	// damaged log has them.
	odd  map[uint64]string
	more map[uint64]*otherClaims
}

// otherClaims are the hashes that the records of a number claim besides
// the first record's: distinct, of 64 lowercase hex digits (a signed
// digest names no other kind), at most maxOtherClaims of them. Kept
// without a bound, a log edited to hold a named number on every line,
// each with a hash of its own, would hold the log in memory, and take
// time growing with the square of its lines to check.
type otherClaims struct {
	hashes  [][32]byte
	crowded bool // more were left out
}

// maxOtherClaims bounds the other claims kept of one number: the server
// writes one record of each, and a copy or two is what a mistake makes.
const maxOtherClaims = 8

// claim is the hash the record of a number claims: set once the check
// read a record of that number claiming a hash of 64 lowercase hex digits.
type claim struct {
	hash [32]byte
	set  bool
}

// Add adds the number seq to the set. Call it before the set is given to
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

// note records the hash a record numbered seqs[i] claims: the first
// record read of that number, and each other claim after it, as far as
// otherClaims keeps them.
func (n *Named) note(i int, hash string) {
	seq := n.seqs[i]
	if !n.claimed(i) {
		if len(hash) == 64 && isLowerHex(hash) {
			hex.Decode(n.claims[i].hash[:], []byte(hash))
			n.claims[i].set = true
			return
		}
		if n.odd == nil {
			n.odd = map[uint64]string{}
		}
		n.odd[seq] = hash
		return
	}
	var h [32]byte
	if len(hash) != 64 || !isLowerHex(hash) {
		return
	}
	hex.Decode(h[:], []byte(hash))
	if n.claims[i].set && n.claims[i].hash == h {
		return
	}
	o := n.more[seq]
	switch {
	case o != nil && slices.Contains(o.hashes, h):
	case o != nil && len(o.hashes) >= maxOtherClaims:
		o.crowded = true
	default:
		if n.more == nil {
			n.more = map[uint64]*otherClaims{}
		}
		if o == nil {
			o = &otherClaims{}
			n.more[seq] = o
		}
		o.hashes = append(o.hashes, h)
	}
}

// claimed reports whether a record numbered seqs[i] was read.
func (n *Named) claimed(i int) bool {
	if n.claims[i].set {
		return true
	}
	_, ok := n.odd[n.seqs[i]]
	return ok
}

// first is the claim of the first record numbered seqs[i] read.
func (n *Named) first(i int) string {
	if h, ok := n.odd[n.seqs[i]]; ok {
		return h
	}
	return hex.EncodeToString(n.claims[i].hash[:])
}

// Hash returns the hash the first record numbered seq claims: "" if seq
// is not in the set or no record carries it.
func (n *Named) Hash(seq uint64) string {
	if n == nil {
		return ""
	}
	if i := n.index(seq); i >= 0 && i < len(n.claims) && n.claimed(i) {
		return n.first(i)
	}
	return ""
}

// holds reports whether a record numbered seq was read, seq being in the
// set.
func (n *Named) holds(seq uint64) bool {
	if n == nil {
		return false
	}
	i := n.index(seq)
	return i >= 0 && i < len(n.claims) && n.claimed(i)
}

// claimsHash reports whether a record numbered seq claims hash, without
// making a string for the usual claim. Where several records carry the
// number (a damaged log, reported by its chain), any of them may, as far
// as their claims were kept (crowded).
func (n *Named) claimsHash(seq uint64, hash string) bool {
	if n == nil {
		return false
	}
	i := n.index(seq)
	if i < 0 || i >= len(n.claims) || !n.claimed(i) {
		return false
	}
	if h, ok := n.odd[seq]; ok && h == hash {
		return true
	}
	if len(hash) != 64 || !isLowerHex(hash) {
		return false
	}
	var h [32]byte
	hex.Decode(h[:], []byte(hash))
	if n.claims[i].set && n.claims[i].hash == h {
		return true
	}
	o := n.more[seq]
	return o != nil && slices.Contains(o.hashes, h)
}

// crowded reports whether more records carry the number seq, with hashes
// of their own, than their claims were kept of: claimsHash may then miss
// the one that matches.
func (n *Named) crowded(seq uint64) bool {
	if n == nil {
		return false
	}
	o := n.more[seq]
	return o != nil && o.crowded
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

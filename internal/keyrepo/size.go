package keyrepo

import "strings"

// The memory a cached key takes, estimated from above so that the cache
// can bound its bytes (Config.CacheBytes) and not only its keys: within
// AWS's limits one key may hold a 32 KiB policy, 8 KiB of description, 50
// tags and 50,000 grants, and 10,000 such keys would take far more memory
// than the server has.
//
// The parsed policy is weighed by policy.MemSize. The other figures were
// measured on amd64 and rounded up: an ML-DSA private key takes some 120
// KiB once expanded, an ML-KEM-1024 one some 15 KiB (ML-KEM-512 5 KiB),
// an RSA-4096 one some 7.5 KiB, any other under 1 KiB.
const (
	keyOverhead           = 2 << 10 // the Key, its record's fixed fields, its ARN and maps
	grantOverhead         = 512     // a GrantRecord, its place in Grants and in the index by grantee
	pairOverhead          = 64      // an entry of a map or list of strings
	versionBytesMLDSA     = 128 << 10
	versionBytesMLKEM     = 16 << 10
	versionBytesRSA       = 8 << 10
	versionBytesOtherSpec = 1 << 10
)

// memSize estimates, from above, the bytes k takes in memory.
func (k *Key) memSize() int64 {
	r := &k.Rec
	n := keyOverhead + len(r.Description) + len(k.ARN) + max(k.Policy.MemSize(), len(r.Policy))
	for a, id := range r.PolicyPrincipalIDs {
		n += pairOverhead + len(a) + len(id)
	}
	for _, t := range r.Tags {
		n += pairOverhead + len(t.TagKey) + len(t.TagValue)
	}
	for _, rr := range r.ReplicaRegions {
		n += pairOverhead + len(rr)
	}
	n += len(k.Versions) * versionBytes(r.KeySpec)
	for _, g := range k.Grants {
		n += g.memSize()
	}
	return int64(n)
}

// versionBytes estimates, from above, the bytes one version of a key of
// spec takes unsealed.
func versionBytes(spec string) int {
	switch {
	case strings.HasPrefix(spec, "ML_DSA"):
		return versionBytesMLDSA
	case strings.HasPrefix(spec, "ML_KEM"):
		return versionBytesMLKEM
	case strings.HasPrefix(spec, "RSA"):
		return versionBytesRSA
	}
	return versionBytesOtherSpec
}

// memSize estimates, from above, the bytes g takes in a cached key.
func (g *GrantRecord) memSize() int {
	n := grantOverhead + len(g.ID) + len(g.KeyID) + len(g.Region) + len(g.Account) + len(g.KeyAccount) + len(g.Name) +
		len(g.Grantee) + len(g.Retiring) + len(g.GranteeID) + len(g.RetiringID)
	for _, op := range g.Operations {
		n += pairOverhead + len(op)
	}
	if c := g.Constraints; c != nil {
		for _, m := range []map[string]string{c.EncryptionContextSubset, c.EncryptionContextEquals} {
			for k, v := range m {
				n += pairOverhead + len(k) + len(v)
			}
		}
	}
	return n
}

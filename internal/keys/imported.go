package keys

import (
	"bytes"
	"encoding/asn1"
)

// ParseImported is ParseAsymmetric for private key material a customer
// imports, which must also be one key in one encoding. ParseAsymmetric
// reads only what it needs: an EC key's public point is made again from
// its private scalar, whatever point the encoding carries (another key's,
// or one off the curve); an RSA key of more primes than two signs as well
// as one of two; bytes after the key are not read. Material that
// contradicts itself is not what its owner meant to import, and its key
// material id would not match the same key encoded as it should be, so it
// is ErrMaterial here. Keys this package generates pass.
func ParseImported(spec string, material []byte) (*Asymmetric, error) {
	a, err := ParseAsymmetric(spec, material)
	if err != nil {
		return nil, err
	}
	if a.mldsa != nil {
		return a, nil // a 32-byte seed: nothing to contradict
	}
	var p pkcs8
	if rest, err := asn1.Unmarshal(material, &p); err != nil || len(rest) != 0 {
		return nil, ErrMaterial
	}
	switch {
	case a.rsa != nil:
		if len(a.rsa.Primes) != 2 {
			return nil, ErrMaterial
		}
	case a.ec != nil:
		pub, err := a.ec.PublicKey.Bytes()
		if err != nil {
			return nil, ErrMaterial
		}
		if !ecEncodingAgrees(p, pub) {
			return nil, ErrMaterial
		}
	case a.k1 != nil:
		if !ecEncodingAgrees(p, a.k1.PubKey().SerializeUncompressed()) {
			return nil, ErrMaterial
		}
	}
	return a, nil
}

// ecEncodingAgrees reports whether the ECPrivateKey (RFC 5915) inside p
// is all of one key: no bytes after it, its curve, if named, the one p's
// algorithm names, and its public key, if present, the point the private
// scalar makes, uncompressed (SEC 1 §2.3.3) or compressed.
func ecEncodingAgrees(p pkcs8, uncompressed []byte) bool {
	var ec ecPrivateKey
	if rest, err := asn1.Unmarshal(p.PrivateKey, &ec); err != nil || len(rest) != 0 {
		return false
	}
	if len(ec.NamedCurveOID) != 0 {
		var curve asn1.ObjectIdentifier
		if _, err := asn1.Unmarshal(p.Algorithm.Parameters.FullBytes, &curve); err != nil || !curve.Equal(ec.NamedCurveOID) {
			return false
		}
	}
	if ec.PublicKey.BitLength == 0 {
		return true
	}
	n := (len(uncompressed) - 1) / 2
	compressed := append([]byte{2 | uncompressed[len(uncompressed)-1]&1}, uncompressed[1:1+n]...)
	pub := ec.PublicKey.Bytes
	return ec.PublicKey.BitLength == 8*len(pub) && (bytes.Equal(pub, uncompressed) || bytes.Equal(pub, compressed))
}

package keys

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/asn1"
)

// ParseImported is ParseAsymmetric for private key material a customer
// imports, which must also be one key in one encoding. ParseAsymmetric
// reads only what it needs: an EC key's public point is made again from
// its private scalar, whatever point the encoding carries (another key's,
// or one off the curve), and so is the public key a PKCS#8 v2
// (OneAsymmetricKey, RFC 5958) may carry; an RSA key of more primes than
// two signs as well as one of two; attributes and bytes after the key are
// not read. Material that contradicts itself is not what its owner meant
// to import, and its key material id would not match the same key encoded
// as it should be, so it is ErrMaterial here. Keys this package generates
// pass.
func ParseImported(spec string, material []byte) (*Asymmetric, error) {
	a, err := ParseAsymmetric(spec, material)
	if err != nil {
		return nil, err
	}
	if a.mldsa != nil {
		return a, nil // a 32-byte seed: nothing to contradict
	}
	alg, inner, encodedPub, ok := splitPKCS8(material)
	if !ok {
		return nil, ErrMaterial
	}
	var pub []byte // the public key as RFC 5958's publicKey would hold it
	switch {
	case a.rsa != nil:
		if len(a.rsa.Primes) != 2 {
			return nil, ErrMaterial
		}
		pub = x509.MarshalPKCS1PublicKey(&a.rsa.PublicKey)
	case a.ec != nil:
		if pub, err = a.ec.PublicKey.Bytes(); err != nil {
			return nil, ErrMaterial
		}
	case a.k1 != nil:
		pub = a.k1.PubKey().SerializeUncompressed()
	case a.ed != nil:
		pub = a.ed.Public().(ed25519.PublicKey)
	}
	if encodedPub != nil && !samePublic(encodedPub, pub, a.ec != nil || a.k1 != nil) {
		return nil, ErrMaterial
	}
	if (a.ec != nil || a.k1 != nil) && !ecEncodingAgrees(alg, inner, pub) {
		return nil, ErrMaterial
	}
	return a, nil
}

// splitPKCS8 takes a DER PKCS#8 private key apart: its algorithm
// identifier, its privateKey octets, and the bits of its publicKey ([1],
// nil if absent). ok is false for anything else in it: attributes ([0]),
// other members, or bytes after it.
func splitPKCS8(der []byte) (alg algorithmIdentifier, inner, pub []byte, ok bool) {
	var seq asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &seq); err != nil || len(rest) != 0 || seq.Class != asn1.ClassUniversal || seq.Tag != asn1.TagSequence {
		return alg, nil, nil, false
	}
	var version int
	rest, err := asn1.Unmarshal(seq.Bytes, &version)
	if err == nil {
		rest, err = asn1.Unmarshal(rest, &alg)
	}
	if err == nil {
		rest, err = asn1.Unmarshal(rest, &inner)
	}
	if err != nil {
		return alg, nil, nil, false
	}
	if len(rest) > 0 {
		var field asn1.RawValue
		if rest, err = asn1.Unmarshal(rest, &field); err != nil || len(rest) != 0 ||
			field.Class != asn1.ClassContextSpecific || field.Tag != 1 || field.IsCompound ||
			len(field.Bytes) < 1 || field.Bytes[0] != 0 {
			return alg, nil, nil, false
		}
		pub = field.Bytes[1:]
		if pub == nil {
			pub = []byte{}
		}
	}
	return alg, inner, pub, true
}

// samePublic reports whether an encoded public key is want; for an EC
// key, want is the uncompressed point (SEC 1 §2.3.3) and the compressed
// one is the same key too.
func samePublic(encoded, want []byte, ec bool) bool {
	if bytes.Equal(encoded, want) {
		return true
	}
	if !ec || len(want) < 3 {
		return false
	}
	n := (len(want) - 1) / 2
	compressed := append([]byte{2 | want[len(want)-1]&1}, want[1:1+n]...)
	return bytes.Equal(encoded, compressed)
}

// ecEncodingAgrees reports whether inner, the ECPrivateKey (RFC 5915) of
// a PKCS#8 key with algorithm alg, is all of one key: no bytes after it,
// nothing in it the parser passes over, its curve, if named, the one alg
// names, and its public key, if present, pub, the point its private scalar
// makes.
func ecEncodingAgrees(alg algorithmIdentifier, inner, pub []byte) bool {
	var ec ecPrivateKey
	if rest, err := asn1.Unmarshal(inner, &ec); err != nil || len(rest) != 0 {
		return false
	}
	if again, err := asn1.Marshal(ec); err != nil || !bytes.Equal(again, inner) {
		return false // members the parser passed over
	}
	if len(ec.NamedCurveOID) != 0 {
		var curve asn1.ObjectIdentifier
		if _, err := asn1.Unmarshal(alg.Parameters.FullBytes, &curve); err != nil || !curve.Equal(ec.NamedCurveOID) {
			return false
		}
	}
	if ec.PublicKey.BitLength == 0 {
		return true
	}
	return ec.PublicKey.BitLength == 8*len(ec.PublicKey.Bytes) && samePublic(ec.PublicKey.Bytes, pub, true)
}

package keys

import (
	"encoding/asn1"
	"errors"
	"math/big"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// The DER forms Go's x509 package does not write: secp256k1 keys (PKCS#8
// and SubjectPublicKeyInfo with the secp256k1 curve OID) and ML-DSA public
// keys (SubjectPublicKeyInfo with the FIPS 204 OIDs).

type asn1OID = asn1.ObjectIdentifier

var (
	oidECPublicKey = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidSecp256k1   = asn1.ObjectIdentifier{1, 3, 132, 0, 10}
)

type algorithmIdentifier struct {
	Algorithm  asn1.ObjectIdentifier
	Parameters asn1.RawValue `asn1:"optional"`
}

type subjectPublicKeyInfo struct {
	Algorithm algorithmIdentifier
	PublicKey asn1.BitString
}

type pkcs8 struct {
	Version    int
	Algorithm  algorithmIdentifier
	PrivateKey []byte
}

type ecPrivateKey struct {
	Version       int
	PrivateKey    []byte
	NamedCurveOID asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
	PublicKey     asn1.BitString        `asn1:"optional,explicit,tag:1"`
}

func algID(oid, param asn1.ObjectIdentifier) (algorithmIdentifier, error) {
	a := algorithmIdentifier{Algorithm: oid}
	if param != nil {
		b, err := asn1.Marshal(param)
		if err != nil {
			return a, err
		}
		a.Parameters = asn1.RawValue{FullBytes: b}
	}
	return a, nil
}

func marshalSPKI(oid, param asn1.ObjectIdentifier, key []byte) ([]byte, error) {
	a, err := algID(oid, param)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(subjectPublicKeyInfo{Algorithm: a, PublicKey: asn1.BitString{Bytes: key, BitLength: 8 * len(key)}})
}

func marshalK1PKCS8(k *secp256k1.PrivateKey) ([]byte, error) {
	pub := k.PubKey().SerializeUncompressed()
	inner, err := asn1.Marshal(ecPrivateKey{Version: 1, PrivateKey: k.Serialize(),
		PublicKey: asn1.BitString{Bytes: pub, BitLength: 8 * len(pub)}})
	if err != nil {
		return nil, err
	}
	a, err := algID(oidECPublicKey, oidSecp256k1)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(pkcs8{Algorithm: a, PrivateKey: inner})
}

func parseK1PKCS8(der []byte) (*secp256k1.PrivateKey, error) {
	var p pkcs8
	if rest, err := asn1.Unmarshal(der, &p); err != nil || len(rest) != 0 {
		return nil, errors.New("not PKCS#8")
	}
	var curve asn1.ObjectIdentifier
	if !p.Algorithm.Algorithm.Equal(oidECPublicKey) {
		return nil, errors.New("not an EC key")
	}
	if _, err := asn1.Unmarshal(p.Algorithm.Parameters.FullBytes, &curve); err != nil || !curve.Equal(oidSecp256k1) {
		return nil, errors.New("not a secp256k1 key")
	}
	var ec ecPrivateKey
	if rest, err := asn1.Unmarshal(p.PrivateKey, &ec); err != nil || len(rest) != 0 || len(ec.PrivateKey) > 32 || len(ec.PrivateKey) == 0 {
		return nil, errors.New("not an EC private key")
	}
	d := new(big.Int).SetBytes(ec.PrivateKey)
	if d.Sign() == 0 || d.Cmp(secp256k1.S256().N) >= 0 {
		return nil, errors.New("scalar out of range")
	}
	return secp256k1.PrivKeyFromBytes(ec.PrivateKey), nil
}

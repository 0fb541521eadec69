// Package hsm holds the root of trust in a hardware security module
// through PKCS#11 (OASIS PKCS#11 v2.40, through github.com/ThalesGroup/crypto11):
// an AES-256 secret key inside a token, named by an RFC 7512 PKCS#11 URI
// (pkcs11:token=NAME;object=LABEL), that seals and opens small secrets
// with CKM_AES_GCM. The key never leaves the token; this package only asks
// the token to encrypt and decrypt.
//
// Limits: a key is found by its token's label and its own CKA_LABEL, not
// by id, serial or slot; the URI parser accepts only the attributes it
// honours. Each call goes to the token, so the key is for a few values
// (the store's data root key), not for the hot path. Built without cgo,
// Open and Create fail with ErrNoCgo.
package hsm

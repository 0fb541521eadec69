package esdk

import (
	"bytes"
	"testing"
)

// FuzzDecrypt feeds any bytes to the decrypter, as a file given to kms
// decrypt may hold: it must not panic, Read and WriteTo must agree, and
// nothing but the plaintext of an intact message is ever returned whole.
func FuzzDecrypt(f *testing.F) {
	kr := &rawAESKeyring{namespace: "test-namespace", name: "test-key", key: bytes.Repeat([]byte{7}, 32)}
	pt := testPlaintext(40)
	for _, suite := range allSuites {
		f.Add(encryptSuite(f, kr, suite, 16, 1, map[string]string{"purpose": "fuzz"}, pt))
		nonFramed, _ := nonFramedMessage(f, kr, suite, map[string]string{"purpose": "fuzz"}, pt)
		f.Add(nonFramed)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		got, err := decryptBoth(kr, allowAll, msg)
		if err == nil && !bytes.Equal(got, pt) {
			t.Fatalf("decrypted to %d bytes that are not the plaintext", len(got))
		}
	})
}

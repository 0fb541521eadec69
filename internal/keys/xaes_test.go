package keys

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// The test vectors of https://c2sp.org/XAES-256-GCM.
func TestXAESVectors(t *testing.T) {
	nonce := []byte("ABCDEFGHIJKLMNOPQRSTUVWX")
	for _, tc := range []struct {
		key  byte
		aad  string
		want string
	}{
		{0x01, "", "ce546ef63c9cc60765923609b33a9a1974e96e52daf2fcf7075e2271"},
		{0x03, "c2sp.org/XAES-256-GCM", "986ec1832593df5443a179437fd083bf3fdb41abd740a21f71eb769d"},
	} {
		x, err := newXAES(bytes.Repeat([]byte{tc.key}, 32))
		if err != nil {
			t.Fatal(err)
		}
		aead, err := x.aead(nonce)
		if err != nil {
			t.Fatal(err)
		}
		ct := aead.Seal(nil, nonce[12:], []byte("XAES-256-GCM"), []byte(tc.aad))
		if got := hex.EncodeToString(ct); got != tc.want {
			t.Errorf("key %#x: got %s, want %s", tc.key, got, tc.want)
		}
		pt, err := aead.Open(nil, nonce[12:], ct, []byte(tc.aad))
		if err != nil || string(pt) != "XAES-256-GCM" {
			t.Errorf("key %#x: open = %q, %v", tc.key, pt, err)
		}
	}
}

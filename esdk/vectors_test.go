package esdk

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"maps"
	"os"
	"testing"
)

// testdata/js-vectors.json holds messages written by the official AWS
// Encryption SDK for JavaScript (testdata/js-vectors.js) with its raw AES
// keyring, in every suite this package reads: the committing suites and
// every version 1 suite of the specification.
type jsVectors struct {
	Generator    string `json:"generator"`
	WrappingKey  string `json:"wrapping_key"`
	KeyNamespace string `json:"key_namespace"`
	KeyName      string `json:"key_name"`
	Vectors      []struct {
		Suite       Suite             `json:"suite"`
		FrameLength uint32            `json:"frame_length"`
		Size        int               `json:"size"`
		Context     map[string]string `json:"context"`
		Message     string            `json:"message"`
	} `json:"vectors"`
}

func loadJSVectors(t *testing.T) (*jsVectors, *rawAESKeyring) {
	data, err := os.ReadFile("testdata/js-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v jsVectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	key, err := hex.DecodeString(v.WrappingKey)
	if err != nil {
		t.Fatal(err)
	}
	return &v, &rawAESKeyring{namespace: v.KeyNamespace, name: v.KeyName, key: key}
}

func TestJSVectors(t *testing.T) {
	v, kr := loadJSVectors(t)
	seen := map[Suite]int{}
	for i, vec := range v.Vectors {
		msg, err := base64.StdEncoding.DecodeString(vec.Message)
		if err != nil {
			t.Fatal(err)
		}
		for _, conc := range []int{1, 4} {
			got, h, err := decrypt(kr, DecryptOptions{AllowNonCommitting: true, Concurrency: conc}, msg)
			if err != nil {
				t.Fatalf("vector %d (%v, frame %d, %d bytes): %v", i, vec.Suite, vec.FrameLength, vec.Size, err)
			}
			if !bytes.Equal(got, testPlaintext(vec.Size)) {
				t.Fatalf("vector %d: wrong plaintext", i)
			}
			if h.Suite != vec.Suite || h.FrameLength != vec.FrameLength {
				t.Errorf("vector %d: header says %v, frame %d", i, h.Suite, h.FrameLength)
			}
			ec := maps.Clone(h.EncryptionContext)
			delete(ec, PublicKeyContextKey)
			if !maps.Equal(ec, vec.Context) {
				t.Errorf("vector %d: context %v, want %v", i, ec, vec.Context)
			}
			if hb := mustMarshal(t, h); !bytes.Equal(hb, msg[:len(hb)]) {
				t.Errorf("vector %d: header does not marshal back", i)
			}
		}
		if !vec.Suite.Committing() {
			if _, _, err := decrypt(kr, DecryptOptions{}, msg); err == nil {
				t.Errorf("vector %d: non-committing message decrypted by default", i)
			}
		}
		seen[vec.Suite]++
	}
	for _, suite := range allSuites {
		if seen[suite] == 0 {
			t.Errorf("no vector in suite %v", suite)
		}
	}
}

// The known-answer message of docs/envelope-format.md: SuiteCommitKey,
// fixed data key, message ID and raw AES wrapping IV, encryption context
// {"purpose": "example"}, frame length 16, plaintext "Hello, AWS Encryption SDK!"
// (26 bytes: one regular frame and a final frame of 10 bytes).
func katMaterials() (kr *rawAESKeyring, messageID []byte) {
	key := make([]byte, 32)
	dataKey := make([]byte, 32)
	messageID = make([]byte, 32)
	for i := range 32 {
		key[i] = byte(i)
		dataKey[i] = byte(0xA0 + i)
		messageID[i] = byte(i + 1)
	}
	return &rawAESKeyring{
		namespace: "test-namespace", name: "test-key", key: key,
		iv: bytes.Repeat([]byte{0x0B}, 12), dataKey: dataKey,
	}, messageID
}

func katEncrypt(t *testing.T) []byte {
	kr, messageID := katMaterials()
	// The known-answer message of docs/envelope-format.md: SuiteCommitKey,
	// fixed data key, message ID and raw AES wrapping IV, encryption
	// context {"purpose": "example"}, frame length 16, plaintext
	// "Hello, AWS Encryption SDK!" (26 bytes: one regular frame, and a
	// final frame of 10 bytes).
	ec := map[string]string{"purpose": "example"}
	dataKey, edks, err := kr.GenerateDataKey(t.Context(), SuiteCommitKey, ec)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := newEncrypter(&buf, SuiteCommitKey, messageID, dataKey, ec, edks, 16, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("Hello, AWS Encryption SDK!"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestKnownAnswer(t *testing.T) {
	want, err := os.ReadFile("testdata/kat-0478.hex")
	if err != nil {
		t.Fatal(err)
	}
	want, err = hex.DecodeString(string(bytes.Join(bytes.Fields(want), nil)))
	if err != nil {
		t.Fatal(err)
	}
	got := katEncrypt(t)
	if !bytes.Equal(got, want) {
		t.Fatalf("known-answer message changed:\n got  %x\n want %x", got, want)
	}
	kr, _ := katMaterials()
	pt, _, err := decrypt(kr, DecryptOptions{}, want)
	if err != nil || string(pt) != "Hello, AWS Encryption SDK!" {
		t.Fatalf("decrypt: %q, %v", pt, err)
	}
}

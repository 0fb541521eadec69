package kmskeyring

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/openkms/kms/esdk"
)

// fakeKMS returns, for Decrypt, the plaintext stored under the ciphertext
// blob, as KMS returns whatever was encrypted whatever its length, and
// for GenerateDataKey a key of the length asked.
type fakeKMS struct {
	plaintexts map[string][]byte
	asked      []int32 // NumberOfBytes of each GenerateDataKey
	decrypted  [][]byte
}

func (f *fakeKMS) GenerateDataKey(_ context.Context, in *kms.GenerateDataKeyInput, _ ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	f.asked = append(f.asked, *in.NumberOfBytes)
	return &kms.GenerateDataKeyOutput{KeyId: in.KeyId, Plaintext: bytes.Repeat([]byte{1}, int(*in.NumberOfBytes)), CiphertextBlob: []byte("blob")}, nil
}

func (f *fakeKMS) Encrypt(context.Context, *kms.EncryptInput, ...func(*kms.Options)) (*kms.EncryptOutput, error) {
	return nil, errors.New("not used")
}

func (f *fakeKMS) Decrypt(_ context.Context, in *kms.DecryptInput, _ ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	pt, ok := f.plaintexts[string(in.CiphertextBlob)]
	if !ok {
		return nil, errors.New("InvalidCiphertextException")
	}
	pt = bytes.Clone(pt)
	f.decrypted = append(f.decrypted, pt)
	return &kms.DecryptOutput{KeyId: in.KeyId, Plaintext: pt}, nil
}

const arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

// TestDataKeyLengthPerSuite: GenerateDataKey asks KMS for a key of the
// suite's length, and DecryptDataKey returns only a data key of that
// length, refusing (and zeroing) one of another length, which anyone who
// may encrypt under the KMS key can put in a message, and going on to the
// next.
func TestDataKeyLengthPerSuite(t *testing.T) {
	for _, tc := range []struct {
		suite esdk.Suite
		n     int
	}{
		{esdk.SuiteCommitKey, 32}, {esdk.SuiteCommitKeyECDSAP384, 32},
		{esdk.SuiteHKDFSHA256, 32}, {esdk.SuiteHKDFSHA384ECDSAP384, 32}, {esdk.SuiteAES256NoKDF, 32},
		{esdk.SuiteAES192HKDFSHA256, 24}, {esdk.SuiteAES192HKDFSHA384ECDSAP384, 24}, {esdk.SuiteAES192NoKDF, 24},
		{esdk.SuiteAES128HKDFSHA256, 16}, {esdk.SuiteAES128HKDFSHA256ECDSAP256, 16}, {esdk.SuiteAES128NoKDF, 16},
	} {
		f := &fakeKMS{plaintexts: map[string][]byte{}}
		kr := New(f, arn)
		key, _, err := kr.GenerateDataKey(context.Background(), tc.suite, nil)
		if err != nil || len(key) != tc.n || len(f.asked) != 1 || f.asked[0] != int32(tc.n) {
			t.Errorf("%v: GenerateDataKey asked for %v, got %d bytes, %v; want %d", tc.suite, f.asked, len(key), err, tc.n)
		}

		var edks []esdk.EncryptedDataKey
		for _, n := range []int{16, 24, 32, 0, 64} {
			if n == tc.n {
				continue
			}
			blob := []byte{byte(n)}
			f.plaintexts[string(blob)] = bytes.Repeat([]byte{0xEE}, n)
			edks = append(edks, esdk.EncryptedDataKey{ProviderID: ProviderID, ProviderInfo: arn, Ciphertext: blob})
		}
		_, err = kr.DecryptDataKey(context.Background(), tc.suite, edks, nil)
		if err == nil || !strings.Contains(err.Error(), "want "+strconv.Itoa(tc.n)) {
			t.Errorf("%v: data keys of other lengths only: %v", tc.suite, err)
		}
		for _, pt := range f.decrypted {
			if len(pt) > 0 && !bytes.Equal(pt, make([]byte, len(pt))) {
				t.Errorf("%v: a refused %d-byte data key was not zeroed", tc.suite, len(pt))
			}
		}

		good := []byte("good")
		f.plaintexts[string(good)] = bytes.Repeat([]byte{0xAB}, tc.n)
		edks = append(edks, esdk.EncryptedDataKey{ProviderID: ProviderID, ProviderInfo: arn, Ciphertext: good})
		key, err = kr.DecryptDataKey(context.Background(), tc.suite, edks, nil)
		if err != nil || !bytes.Equal(key, bytes.Repeat([]byte{0xAB}, tc.n)) {
			t.Errorf("%v: %d-byte key after the others: %d bytes, %v", tc.suite, tc.n, len(key), err)
		}
	}

	// A suite the package does not know goes to KMS neither way.
	f := &fakeKMS{plaintexts: map[string][]byte{"x": make([]byte, 32)}}
	kr := New(f, arn)
	if _, _, err := kr.GenerateDataKey(context.Background(), 0x0015, nil); err == nil || len(f.asked) != 0 {
		t.Errorf("unknown suite: GenerateDataKey %v, %d calls", err, len(f.asked))
	}
	if _, err := kr.DecryptDataKey(context.Background(), 0x0015, []esdk.EncryptedDataKey{{ProviderID: ProviderID, ProviderInfo: arn, Ciphertext: []byte("x")}}, nil); err == nil || len(f.decrypted) != 0 {
		t.Errorf("unknown suite: DecryptDataKey %v, %d calls", err, len(f.decrypted))
	}
}

// TestDiscoveryFilter: a discovery keyring with a filter sends KMS only
// the data keys under keys of the filter's accounts in its partition
// (the same account id in another partition is another account), and
// one without a filter, or with keys, any it may.
func TestDiscoveryFilter(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	under := func(arns ...string) []esdk.EncryptedDataKey {
		var edks []esdk.EncryptedDataKey
		for _, a := range arns {
			edks = append(edks, esdk.EncryptedDataKey{ProviderID: ProviderID, ProviderInfo: a, Ciphertext: []byte("blob " + a)})
		}
		return edks
	}
	other := "arn:aws:kms:us-east-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	china := "arn:aws-cn:kms:cn-north-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	for _, tc := range []struct {
		name   string
		kr     func(Client) *Keyring
		arns   []string
		wantOK bool
	}{
		{"its account", func(c Client) *Keyring { return New(c).WithDiscoveryFilter("aws", "111122223333") }, []string{arn}, true},
		{"another account", func(c Client) *Keyring { return New(c).WithDiscoveryFilter("aws", "111122223333") }, []string{other}, false},
		{"another partition", func(c Client) *Keyring { return New(c).WithDiscoveryFilter("aws", "111122223333") }, []string{china}, false},
		{"the filter's account after another", func(c Client) *Keyring { return New(c).WithDiscoveryFilter("aws", "111122223333") }, []string{other, arn}, true},
		{"no filter", func(c Client) *Keyring { return New(c) }, []string{other}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeKMS{plaintexts: map[string][]byte{}}
			for _, a := range tc.arns {
				f.plaintexts["blob "+a] = key
			}
			got, err := tc.kr(f).DecryptDataKey(context.Background(), esdk.SuiteCommitKey, under(tc.arns...), nil)
			if tc.wantOK != (err == nil) {
				t.Fatalf("DecryptDataKey: %v, want success %v", err, tc.wantOK)
			}
			if !tc.wantOK && len(f.decrypted) != 0 {
				t.Errorf("%d data keys sent to KMS past the filter", len(f.decrypted))
			}
			if tc.wantOK && !bytes.Equal(got, key) {
				t.Errorf("data key %x", got)
			}
		})
	}
}

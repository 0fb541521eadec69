package envelope

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/openkms/kms/esdk"
	"github.com/openkms/kms/esdk/kmskeyring"
)

// The key a message's header names is not yet authenticated when an
// error names it, and the error goes to a terminal: it is quoted, so that
// an escape sequence in it cannot clear the screen or print a false
// "OK".
func TestStrictKeyringQuotesTheHeader(t *testing.T) {
	k := strictKeyring{names: []string{"alias/mine"}, arns: []string{"arn:aws:kms:us-east-1:111122223333:key/mine"}}
	edks := []esdk.EncryptedDataKey{{ProviderID: kmskeyring.ProviderID, ProviderInfo: "\x1b[2J\x1b[HOK: decrypted", Ciphertext: []byte{1}}}
	_, err := k.DecryptDataKey(context.Background(), esdk.Suite(0), edks, nil)
	if err == nil || strings.ContainsRune(err.Error(), '\x1b') || !strings.Contains(err.Error(), `"\x1b[2J\x1b[HOK: decrypted"`) {
		t.Fatalf("DecryptDataKey = %q, want the header's key quoted", err)
	}
}

// A header may list thousands of data keys, each named by up to 64 KiB:
// the error names a few, each cut to a key ARN's length, on one line.
func TestStrictKeyringBoundsTheKeysNamed(t *testing.T) {
	k := strictKeyring{names: []string{"alias/mine"}, arns: []string{"arn:aws:kms:us-east-1:111122223333:key/mine"}}
	var edks []esdk.EncryptedDataKey
	for i := range 5000 {
		edks = append(edks, esdk.EncryptedDataKey{ProviderID: kmskeyring.ProviderID, ProviderInfo: fmt.Sprintf("key-%d-", i) + strings.Repeat("x", 60000), Ciphertext: []byte{1}})
	}
	_, err := k.DecryptDataKey(context.Background(), esdk.Suite(0), edks, nil)
	if err == nil {
		t.Fatal("DecryptDataKey succeeded")
	}
	msg := err.Error()
	if len(msg) > (maxNamedKeys+1)*(maxNamedKey+8)+200 {
		t.Errorf("the error is %d bytes long", len(msg))
	}
	if !strings.Contains(msg, `"key-0-`) || !strings.Contains(msg, `"key-7-`) || strings.Contains(msg, `"key-8-`) || !strings.Contains(msg, "...") {
		t.Errorf("the error names %.300q..., want the first %d keys and an ellipsis", msg, maxNamedKeys)
	}
	if !strings.HasSuffix(msg, "not under --key alias/mine (arn:aws:kms:us-east-1:111122223333:key/mine)") {
		t.Errorf("the error ends %q", msg[max(0, len(msg)-120):])
	}
}

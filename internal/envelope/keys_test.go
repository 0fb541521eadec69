package envelope

import (
	"context"
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

package envelope

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/openkms/kms/esdk"
	"github.com/openkms/kms/esdk/kmskeyring"
)

// resolveKeys maps each key named to decrypt with (id, ARN, alias name or
// alias ARN) to its key ARN with DescribeKey, as the AWS Encryption SDKs'
// strict mode requires: a data key is recognized by the key ARN the
// message stores with it, so only an ARN can restrict which KMS key is
// asked to decrypt.
func resolveKeys(ctx context.Context, c *kms.Client, names []string) ([]string, error) {
	arns := make([]string, len(names))
	for i, name := range names {
		out, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: &name}, kmskeyring.InRegionOf(name)...)
		if err != nil {
			return nil, fmt.Errorf("--key %s: %w", name, err)
		}
		if out.KeyMetadata == nil || out.KeyMetadata.Arn == nil {
			return nil, fmt.Errorf("--key %s: DescribeKey returned no key ARN", name)
		}
		arns[i] = *out.KeyMetadata.Arn
	}
	return arns, nil
}

// strictKeyring is a kmskeyring over key ARNs that refuses, with an error
// naming the keys as given, a message none of whose data keys is under
// one of them.
type strictKeyring struct {
	*kmskeyring.Keyring
	names, arns []string
}

func (k strictKeyring) DecryptDataKey(ctx context.Context, suite esdk.Suite, edks []esdk.EncryptedDataKey, ec map[string]string) ([]byte, error) {
	var under []string
	for _, e := range edks {
		if e.ProviderID != kmskeyring.ProviderID {
			continue
		}
		for _, arn := range k.arns {
			if e.ProviderInfo == arn {
				return k.Keyring.DecryptDataKey(ctx, suite, edks, ec)
			}
		}
		if len(under) == maxNamedKeys {
			under = append(under, "...")
		}
		if len(under) < maxNamedKeys {
			// Quoted: the header is not yet authenticated, and its
			// text goes to a terminal.
			under = append(under, strconv.Quote(truncate(e.ProviderInfo, maxNamedKey)))
		}
	}
	named := make([]string, len(k.names))
	for i := range k.names {
		named[i] = k.names[i]
		if k.names[i] != k.arns[i] {
			named[i] += " (" + k.arns[i] + ")"
		}
	}
	if len(under) == 0 {
		return nil, fmt.Errorf("the message has no data key encrypted under a KMS key, so none under --key %s", strings.Join(named, ", "))
	}
	return nil, fmt.Errorf("the message's data key is encrypted under %s, not under --key %s", strings.Join(under, ", "), strings.Join(named, ", "))
}

// maxNamedKeys and maxNamedKey bound the keys of a message's header an
// error names, and each one's length: a header may list thousands of data
// keys (with --max-encrypted-data-keys 0), and the error is one line.
const (
	maxNamedKeys = 8
	maxNamedKey  = 2048 // a key ARN's longest
)

// truncate is s cut to at most n bytes, with "..." after it if cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// contextKeyring refuses, before its inner keyring sends any data key to
// KMS, a message whose encryption context lacks one of the pairs, or one
// of the keys, the caller requires. The context it is given is the
// header's, not yet authenticated; a message that passes is then
// authenticated over that same context, so what was checked is what the
// writer sealed.
type contextKeyring struct {
	esdk.Keyring
	pairs map[string]string
	keys  []string
}

func (k contextKeyring) DecryptDataKey(ctx context.Context, suite esdk.Suite, edks []esdk.EncryptedDataKey, ec map[string]string) ([]byte, error) {
	for _, key := range slices.Sorted(maps.Keys(k.pairs)) {
		want := k.pairs[key]
		// Quoted: the header is not yet authenticated, and its text
		// goes to a terminal.
		switch got, ok := ec[key]; {
		case !ok:
			return nil, fmt.Errorf("the message's encryption context has no %s, not %s=%s as --context requires", key, key, want)
		case got != want:
			return nil, fmt.Errorf("the message's encryption context has %s=%s, not %s=%s as --context requires", key, strconv.Quote(got), key, want)
		}
	}
	for _, key := range k.keys {
		if _, ok := ec[key]; !ok {
			return nil, fmt.Errorf("the message's encryption context has no %s, which --context requires", key)
		}
	}
	return k.Keyring.DecryptDataKey(ctx, suite, edks, ec)
}

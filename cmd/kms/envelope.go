package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/openkms/kms/esdk"
	"github.com/openkms/kms/internal/envelope"
)

func envelopeFlags(cmd *cobra.Command, o *envelope.Options) {
	f := cmd.Flags()
	f.StringVarP(&o.Out, "output", "o", "", "output file (default stdout)")
	f.StringVar(&o.Endpoint, "endpoint", "", "KMS endpoint URL (default: AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL or AWS's)")
	f.StringVar(&o.Region, "region", "", "AWS region (default: AWS_REGION or AWS_DEFAULT_REGION, the AWS config, or us-east-1)")
	f.IntVar(&o.Concurrency, "parallel", 0, "frames processed at once, at least 1 (default: one per CPU)")
}

// checkParallel refuses a --parallel given below 1. The library reads 0
// (and less) as one per CPU; on the command line it is a mistake, and
// says so, as --frame-size 0 does.
func checkParallel(cmd *cobra.Command, o *envelope.Options) error {
	if cmd.Flags().Changed("parallel") && o.Concurrency < 1 {
		return fmt.Errorf("--parallel %d: give at least 1 frame at a time (without --parallel, one per CPU)", o.Concurrency)
	}
	return nil
}

// The commitment policies of the AWS Encryption SDK CLI, by its names.
const (
	requireEncryptRequireDecrypt = "require-encrypt-require-decrypt"
	requireEncryptAllowDecrypt   = "require-encrypt-allow-decrypt"
	forbidEncryptAllowDecrypt    = "forbid-encrypt-allow-decrypt"
)

// allowNonCommitting reads --commitment-policy of kms decrypt: whether it
// decrypts messages without key commitment. forbid-encrypt-allow-decrypt
// decrypts as require-encrypt-allow-decrypt does; its other half, to
// encrypt without commitment, has no place here, as kms encrypt always
// commits. Any other value is refused.
func allowNonCommitting(policy string) (bool, error) {
	switch policy {
	case requireEncryptRequireDecrypt:
		return false, nil
	case requireEncryptAllowDecrypt, forbidEncryptAllowDecrypt:
		return true, nil
	}
	return false, fmt.Errorf("--commitment-policy %q: give %s (the default) or %s (or %s, which decrypts the same)",
		policy, requireEncryptRequireDecrypt, requireEncryptAllowDecrypt, forbidEncryptAllowDecrypt)
}

// isTerminal reports whether f is a terminal, for the progress line.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// errEncryptBuffer refuses kms encrypt --buffer. The AWS Encryption SDK
// CLI documents --buffer for decrypt only; encrypting, nothing waits on a
// check: a regular output file appears only whole, and a message cut
// short on stdout has no final frame, which every decrypter refuses.
var errEncryptBuffer = errors.New("--buffer is for kms decrypt, to write no plaintext before the message verifies; " +
	"kms encrypt has nothing to hold back: a message it leaves cut short, on stdout, fails to decrypt")

func encryptCommand() *cobra.Command {
	var o envelope.Options
	var ctxPairs []string
	var buffer bool
	cmd := &cobra.Command{
		Use:   "encrypt --key KEY [--key KEY2 ...] [--context k=v ...] [-o OUT] [IN]",
		Short: "Encrypt a file or stdin in the AWS Encryption SDK message format with a data key from KMS",
		Long: `Encrypt a file or stdin in the AWS Encryption SDK message format with a data key from KMS.

The message commits to its data key (algorithm suite 0x0478, or 0x0578 with
--signed, message format version 2), as the AWS Encryption SDKs 2.0 and later
write by default; the SDKs 1.7 and later read it under every commitment
policy. There is no --commitment-policy: kms encrypt never writes the suites
without key commitment (forbid-encrypt-allow-decrypt of the AWS Encryption
SDK CLI), which the SDKs deprecate. It refuses --buffer, which is kms
decrypt's: encrypting holds nothing back for a check.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.In = args[0]
			}
			o.Context = map[string]string{}
			for _, p := range ctxPairs {
				k, v, ok := strings.Cut(p, "=")
				if !ok || k == "" {
					return fmt.Errorf("--context %q: want key=value", p)
				}
				if old, dup := o.Context[k]; dup {
					return fmt.Errorf("--context %s=%s and %s=%s: a key of the encryption context may have one value", k, old, k, v)
				}
				o.Context[k] = v
			}
			if o.FrameSize < 1 || o.FrameSize > esdk.MaxFrameLength {
				// The library reads 0 as its default; on the command
				// line it is a mistake, and says so.
				return fmt.Errorf("--frame-size %d: a frame is 1 byte to %d bytes (64 MiB)", o.FrameSize, esdk.MaxFrameLength)
			}
			if err := checkParallel(cmd, &o); err != nil {
				return err
			}
			if buffer {
				return errEncryptBuffer
			}
			o.Stdin, o.Stdout = cmd.InOrStdin(), cmd.OutOrStdout()
			if isTerminal(os.Stderr) {
				o.Progress = os.Stderr
			}
			return envelope.Encrypt(cmd.Context(), o)
		},
	}
	envelopeFlags(cmd, &o)
	f := cmd.Flags()
	f.StringArrayVar(&o.Keys, "key", nil, "KMS key id, ARN, alias name or alias ARN (repeat to encrypt the data key under several)")
	f.StringArrayVar(&ctxPairs, "context", nil, "encryption context pair key=value (repeatable)")
	f.IntVar(&o.FrameSize, "frame-size", 4096, "frame length in bytes, 1 to 67108864 (64 MiB)")
	f.BoolVar(&o.Signed, "signed", false, "sign the message with ECDSA P-384 (algorithm suite 0x0578)")
	f.BoolVarP(&buffer, "buffer", "b", false, "refused: kms decrypt's")
	f.MarkHidden("buffer")
	return cmd
}

// requiredContext reads the --context of kms decrypt: key=value
// requires that pair in the message's encryption context, key alone that
// key with any value, as the AWS Encryption SDK CLI's
// --encryption-context does on decrypt. A key given twice is refused.
func requiredContext(items []string, o *envelope.Options) error {
	seen := map[string]string{}
	for _, p := range items {
		k, v, hasValue := strings.Cut(p, "=")
		if k == "" {
			return fmt.Errorf("--context %q: want key=value, or a key alone", p)
		}
		if old, dup := seen[k]; dup {
			return fmt.Errorf("--context %s and %s: give each key of the encryption context once", old, p)
		}
		seen[k] = p
		if !hasValue {
			o.RequiredContextKeys = append(o.RequiredContextKeys, k)
			continue
		}
		if o.RequiredContext == nil {
			o.RequiredContext = map[string]string{}
		}
		o.RequiredContext[k] = v
	}
	return nil
}

func decryptCommand() *cobra.Command {
	var o envelope.Options
	var policy string
	var ctxItems []string
	cmd := &cobra.Command{
		Use:   "decrypt [--key KEY ...] [--context k=v ...] [-o OUT] [--buffer] [IN]",
		Short: "Decrypt an AWS Encryption SDK message from a file or stdin",
		Long: `Decrypt an AWS Encryption SDK message from a file or stdin.

By default (--commitment-policy require-encrypt-require-decrypt) only a
message that commits to its data key is decrypted: suites 0x0478 and 0x0578,
which kms encrypt and the AWS Encryption SDKs 2.0 and later write. Such a
message decrypts to one plaintext, whichever of its encrypted data keys is
used. The SDKs before 2.0, and later ones under FORBID_ENCRYPT_ALLOW_DECRYPT,
write suites without that commitment (message format version 1): 0x0378
(their default), 0x0178, 0x0346, 0x0214, 0x0146, 0x0114, and without key
derivation 0x0078, 0x0046, 0x0014. Whoever can encrypt data keys for such
a message's readers can write one that decrypts to one plaintext for one
reader and to another for another. Such messages are refused before any
data key is sent to KMS, unless --commitment-policy
require-encrypt-allow-decrypt is given: give it only for messages from such
a writer. forbid-encrypt-allow-decrypt, the AWS Encryption SDK CLI's third
policy, is accepted too and decrypts the same: only its encrypt half
differs, and kms encrypt always commits.

A framed message is decrypted as a stream: its frames are written as
each one's tag verifies, and only the last frames of a signed message
wait for the signature. To a regular file that is safe, as the file
appears under its name only once the whole message has verified. To
stdout, a pipe or a device, a message that fails late (a bad signature,
frames missing at its end) has already written most or all of its
plaintext, and only the exit code says it failed. --buffer (-b, as in
the AWS Encryption SDK CLI) writes nothing before the whole message has
verified: every frame, the signature, the end of the message and that
nothing follows it. Meanwhile the plaintext waits encrypted under a key
held only in memory, in memory up to 1 MiB and then in a temporary file
under TMPDIR (/tmp if unset) that never has a name, as large as the
message; memory stays the same whatever its size. Non-framed messages
are always decrypted so.

--context k=v (repeatable; or k alone, for the key with any value)
decrypts only a message whose encryption context has that pair, as the
AWS Encryption SDK CLI's --encryption-context does on decrypt: another
message is refused before any data key is sent to KMS, and nothing is
written. Without it any context is accepted, so a message encrypted
under the same key for another purpose decrypts too.

Without --key, any KMS key the message names is asked (discovery), in
the region its key ARN names. --discovery-account ACCOUNT (repeatable)
asks only for the keys of those accounts (of --discovery-partition, aws
by default), as the AWS Encryption SDK CLI's discovery-account does: a
message under a key of someone else's account, who let you decrypt with
it, is refused before any data key is sent to KMS.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.In = args[0]
			}
			if err := checkParallel(cmd, &o); err != nil {
				return err
			}
			allow, err := allowNonCommitting(policy)
			if err != nil {
				return err
			}
			o.AllowNonCommitting = allow
			if err := requiredContext(ctxItems, &o); err != nil {
				return err
			}
			if len(o.DiscoveryAccounts) > 0 && len(o.Keys) > 0 {
				return fmt.Errorf("--discovery-account restricts decryption without --key; with --key only the keys named are asked")
			}
			if cmd.Flags().Changed("discovery-partition") && len(o.DiscoveryAccounts) == 0 {
				return fmt.Errorf("--discovery-partition goes with --discovery-account")
			}
			for _, a := range o.DiscoveryAccounts {
				if !isAccountID(a) {
					return fmt.Errorf("--discovery-account %q: an AWS account id is 12 digits", a)
				}
			}
			if o.MaxEncryptedDataKeys < 0 {
				// The library reads a negative limit as none: a typo
				// must not switch the limit off.
				return fmt.Errorf("--max-encrypted-data-keys %d: give 0 (no limit) or more", o.MaxEncryptedDataKeys)
			}
			o.Stdin, o.Stdout = cmd.InOrStdin(), cmd.OutOrStdout()
			if isTerminal(os.Stderr) {
				o.Progress = os.Stderr
			}
			return envelope.Decrypt(cmd.Context(), o)
		},
	}
	envelopeFlags(cmd, &o)
	cmd.Flags().StringArrayVar(&o.Keys, "key", nil, "only decrypt a message whose data key is under one of these KMS keys (id, ARN, alias name or alias ARN; repeatable)")
	cmd.Flags().StringArrayVar(&ctxItems, "context", nil, "only decrypt a message whose encryption context has this pair key=value, or this key with any value (repeatable)")
	cmd.Flags().StringArrayVar(&o.DiscoveryAccounts, "discovery-account", nil, "without --key: only decrypt a message whose data key is under a KMS key of this account (repeatable)")
	cmd.Flags().StringVar(&o.DiscoveryPartition, "discovery-partition", "aws", "with --discovery-account: the partition of its accounts")
	cmd.Flags().IntVar(&o.MaxEncryptedDataKeys, "max-encrypted-data-keys", 10, "refuse a message with more encrypted data keys, before any is sent to KMS (each is a KMS call; 0: no limit)")
	cmd.Flags().BoolVarP(&o.Buffer, "buffer", "b", false,
		"write no plaintext before the whole message has verified (every frame, the signature, its end), holding it meanwhile encrypted in memory and then in a temporary file under TMPDIR as large as the message")
	cmd.Flags().StringVar(&policy, "commitment-policy", requireEncryptRequireDecrypt,
		"require-encrypt-require-decrypt: refuse messages without key commitment (message format version 1: suites 0x0014 to 0x0378 of the AWS Encryption SDKs before 2.0); require-encrypt-allow-decrypt: decrypt them too (forbid-encrypt-allow-decrypt: the same, as kms encrypt always commits)")
	return cmd
}

// isAccountID reports whether s is an AWS account id: 12 digits.
func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

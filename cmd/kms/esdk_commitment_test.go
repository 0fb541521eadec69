package main_test

// kms decrypt --commitment-policy: messages without key commitment, as the
// AWS Encryption SDK for JavaScript writes them under
// FORBID_ENCRYPT_ALLOW_DECRYPT through our server's KMS, are refused by
// default and read when asked; asking loosens nothing else.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/openkms/kms/esdk"
)

const allowDecrypt = "require-encrypt-allow-decrypt"

// version1Suites are the suites without key commitment (message format
// version 1) that the JavaScript Encryption SDK writes under
// FORBID_ENCRYPT_ALLOW_DECRYPT: every one the specification has.
var version1Suites = []string{"0014", "0046", "0078", "0114", "0146", "0178", "0214", "0346", "0378"}

// suiteOf returns the esdk suite of a hex ID of version1Suites.
func suiteOf(t *testing.T, hex string) esdk.Suite {
	t.Helper()
	n, err := strconv.ParseUint(hex, 16, 16)
	noErr(t, err, "parse suite")
	return esdk.Suite(n)
}

// jsEncrypt encrypts plain under the KMS key arn with the JavaScript
// Encryption SDK in suite (one of version1Suites, under
// FORBID_ENCRYPT_ALLOW_DECRYPT; "0478", "0578"), with the encryption
// context purpose=commitment, and returns the message's file name.
func (f *envFixture) jsEncrypt(t *testing.T, jsDir, suite, arn string, plain []byte) string {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "plain"), filepath.Join(dir, "msg-"+suite)
	noErr(t, os.WriteFile(in, plain, 0o600), "write plaintext")
	cmd := exec.CommandContext(context.Background(), "node", filepath.Join(jsDir, "esdk.js"), "encrypt", in, out, arn, suite, "purpose=commitment")
	cmd.Env = f.env
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node esdk.js encrypt in suite %s: %v\n%s", suite, err, b)
	}
	msg, err := os.ReadFile(out)
	noErr(t, err, "read the JavaScript SDK's message")
	if want := fmt.Sprintf("%04x", binary.BigEndian.Uint16(msg[versionLen(msg):])); want != suite {
		t.Fatalf("the JavaScript SDK wrote suite %s, want %s", want, suite)
	}
	return out
}

// versionLen is the length of what precedes the suite ID in a header:
// the version, and in version 1 the type.
func versionLen(msg []byte) int {
	if msg[0] == 1 {
		return 2
	}
	return 1
}

// refused runs kms decrypt with args and the message msgFile, with the
// output to a new file and to an existing one, and fails the test unless
// each exits 1 with one line on stderr holding want and leaves the
// output as it was.
func (f *envFixture) refused(t *testing.T, want string, msgFile string, args ...string) {
	t.Helper()
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing")
	const old = "what the file held before"
	noErr(t, os.WriteFile(existing, []byte(old), 0o600), "write")
	for _, out := range []string{filepath.Join(dir, "new"), existing} {
		argv := append(append([]string{"decrypt"}, args...), "-o", out, msgFile)
		code, stdout, stderr := runToExit(t, f.env, argv...)
		if code != 1 || !strings.HasPrefix(stderr, "kms: ") || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, want) {
			t.Fatalf("kms %s: exit %d, want 1 and one line with %q\n%s", strings.Join(argv, " "), code, want, stderr)
		}
		if stdout != "" {
			t.Fatalf("kms %s wrote %d bytes on stdout", strings.Join(argv, " "), len(stdout))
		}
	}
	if got, _ := os.ReadFile(existing); string(got) != old {
		t.Fatalf("kms decrypt %s: the existing output holds %q, want it untouched", strings.Join(args, " "), got)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"existing"}) {
		t.Fatalf("kms decrypt %s left %v in the output's directory, want only the existing file", strings.Join(args, " "), names)
	}
}

// decrypted runs kms decrypt with args on msgFile and fails the test
// unless it gives plain, byte for byte.
func (f *envFixture) decrypted(t *testing.T, plain []byte, msgFile string, args ...string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	f.run(t, append(append([]string{"decrypt"}, args...), "-o", out, msgFile)...)
	got, err := os.ReadFile(out)
	noErr(t, err, "read output")
	if !bytes.Equal(got, plain) {
		t.Fatalf("kms decrypt %s gave %d bytes, want the %d-byte plaintext", strings.Join(args, " "), len(got), len(plain))
	}
}

// TestDecryptCommitmentPolicy: a message without key commitment from the
// JavaScript SDK (every version 1 suite: AES-128, -192 and -256, with
// HKDF or none, signed with P-256 or P-384 or not) is refused by default, with
// one line naming the flag and no output, and decrypts with
// --commitment-policy require-encrypt-allow-decrypt (or the CLI's
// forbid-encrypt-allow-decrypt); --key still restricts it; committing
// messages, theirs and ours, decrypt under every policy.
func TestDecryptCommitmentPolicy(t *testing.T) {
	t.Parallel()
	jsDir := requireNodePackage(t, "esdk-js", "@aws-crypto/client-node")
	f := newEnvFixture(t)
	other, err := f.s.client(t).CreateKey(testCtx(t), &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	otherARN := aws.ToString(other.KeyMetadata.Arn)
	plain := make([]byte, 3*4096+17)
	rand.Read(plain)

	for _, suite := range version1Suites {
		t.Run(suite, func(t *testing.T) {
			msg := f.jsEncrypt(t, jsDir, suite, f.arn, plain)
			b, _ := os.ReadFile(msg)
			if b[0] != 1 || b[1] != 0x80 {
				t.Fatalf("the JavaScript SDK's message starts % x, want a version 1 header", b[:2])
			}
			want := "the message is in algorithm suite 0x" + strings.ToUpper(suite) + " ("
			f.refused(t, want, msg)
			f.refused(t, "--commitment-policy require-encrypt-allow-decrypt decrypts it", msg, "--commitment-policy", "require-encrypt-require-decrypt")
			code, stdout, stderr := runToExit(t, f.env, "decrypt", msg)
			if code != 1 || stdout != "" || !strings.Contains(stderr, want) {
				t.Fatalf("kms decrypt to stdout: exit %d, %d bytes out\n%s", code, len(stdout), stderr)
			}

			f.decrypted(t, plain, msg, "--commitment-policy", allowDecrypt)
			f.decrypted(t, plain, msg, "--commitment-policy", "forbid-encrypt-allow-decrypt", "--parallel", "1")

			// --key restricts the message as it does any other.
			f.refused(t, "not under --key "+otherARN, msg, "--commitment-policy", allowDecrypt, "--key", otherARN)
			f.decrypted(t, plain, msg, "--commitment-policy", allowDecrypt, "--key", f.arn)
		})
	}

	t.Run("committing", func(t *testing.T) {
		msgs := []string{f.jsEncrypt(t, jsDir, "0478", f.arn, plain), f.jsEncrypt(t, jsDir, "0578", f.arn, plain)}
		dir := t.TempDir()
		p := filepath.Join(dir, "plain")
		noErr(t, os.WriteFile(p, plain, 0o600), "write plaintext")
		f.run(t, "encrypt", "--key", f.arn, "-o", filepath.Join(dir, "ours"), p)
		f.run(t, "encrypt", "--key", f.arn, "--signed", "-o", filepath.Join(dir, "ours-signed"), p)
		msgs = append(msgs, filepath.Join(dir, "ours"), filepath.Join(dir, "ours-signed"))
		for _, msg := range msgs {
			f.decrypted(t, plain, msg)
			for _, policy := range []string{"require-encrypt-require-decrypt", allowDecrypt, "forbid-encrypt-allow-decrypt"} {
				f.decrypted(t, plain, msg, "--commitment-policy", policy)
			}
		}
	})
}

// TestDecryptCommitmentPolicyValues: a --commitment-policy other than the
// AWS Encryption SDK CLI's names is refused before anything is read or
// written, as other bad flag values are, and kms encrypt, which always
// commits, has no such flag.
func TestDecryptCommitmentPolicyValues(t *testing.T) {
	t.Parallel()
	f := newEnvFixture(t)
	plain, msg := f.sealed(t, 100)
	for _, v := range []string{"", "REQUIRE_ENCRYPT_ALLOW_DECRYPT", "allow", "require-encrypt-allow-decrypt "} {
		want := fmt.Sprintf("kms: --commitment-policy %q: give require-encrypt-require-decrypt (the default) or require-encrypt-allow-decrypt", v)
		f.refused(t, want, msg, "--commitment-policy", v)
	}
	f.decrypted(t, plain, msg, "--commitment-policy", "require-encrypt-require-decrypt")

	out := filepath.Join(t.TempDir(), "out")
	p := filepath.Join(t.TempDir(), "plain")
	noErr(t, os.WriteFile(p, plain, 0o600), "write plaintext")
	code, _, stderr := runToExit(t, f.env, "encrypt", "--key", f.arn, "--commitment-policy", "forbid-encrypt-allow-decrypt", "-o", out, p)
	if code != 1 || !strings.Contains(stderr, "unknown flag: --commitment-policy") {
		t.Fatalf("kms encrypt --commitment-policy: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("kms encrypt --commitment-policy wrote the output")
	}
	for _, h := range []struct{ cmd, want string }{
		{"decrypt", "forbid-encrypt-allow-decrypt, the AWS Encryption SDK CLI's third\npolicy, is accepted too and decrypts the same"},
		{"decrypt", "0x0378\n(their default), 0x0178, 0x0346, 0x0214, 0x0146, 0x0114, and without key\nderivation 0x0078, 0x0046, 0x0014."},
		{"encrypt", "There is no --commitment-policy: kms encrypt never writes the suites\nwithout key commitment"},
	} {
		if _, help, _ := runToExit(t, baseEnv(), h.cmd, "--help"); !strings.Contains(help, h.want) {
			t.Fatalf("kms %s --help does not say %q:\n%s", h.cmd, h.want, help)
		}
	}
}

// otherLength maps a version 1 suite to one signed (on the same curve) or
// not like it, with another data key length.
var otherLength = map[string]string{
	"0014": "0046", "0046": "0078", "0078": "0014",
	"0114": "0146", "0146": "0178", "0178": "0114",
	"0346": "0378", "0378": "0346",
}

// otherKDF maps a version 1 suite without a signature to the one of the
// same data key length with the other key derivation: HKDF-SHA256 or none.
var otherKDF = map[string]string{
	"0014": "0114", "0114": "0014", "0046": "0146", "0146": "0046", "0078": "0178", "0178": "0078",
}

func suiteBytes(t *testing.T, hex string) []byte {
	return binary.BigEndian.AppendUint16(nil, uint16(suiteOf(t, hex)))
}

// flipIn flips a bit of the byte at off into the value that follows key
// in msg (its uint16 length, then the value).
func flipIn(msg []byte, key string, off int) func([]byte) []byte {
	at := bytes.Index(msg, []byte(key)) + len(key) + 2 + off
	return func(b []byte) []byte { b[at] ^= 0x01; return b }
}

// TestDecryptNonCommittingTampered: with --commitment-policy
// require-encrypt-allow-decrypt, a message of the JavaScript SDK without
// key commitment that was relabelled, truncated or altered anywhere is
// refused, and nothing is left in a regular output file, new or existing,
// even when frames before the damage authenticated.
func TestDecryptNonCommittingTampered(t *testing.T) {
	t.Parallel()
	jsDir := requireNodePackage(t, "esdk-js", "@aws-crypto/client-node")
	f := newEnvFixture(t)
	plain := make([]byte, 2*4096+100) // two regular frames and a final frame of 100 bytes
	rand.Read(plain)
	for _, suite := range version1Suites {
		t.Run(suite, func(t *testing.T) {
			signed := suiteOf(t, suite).Signed()
			file := f.jsEncrypt(t, jsDir, suite, f.arn, plain)
			f.decrypted(t, plain, file, "--commitment-policy", allowDecrypt)
			msg, err := os.ReadFile(file)
			noErr(t, err, "read message")
			h, err := esdk.ReadHeader(bytes.NewReader(msg))
			noErr(t, err, "read header")
			hb, err := h.MarshalBinary()
			noErr(t, err, "marshal header")
			if h.FrameLength != 4096 || !bytes.Equal(hb, msg[:len(hb)]) {
				t.Fatalf("header of frame length %d does not marshal back", h.FrameLength)
			}
			hl := len(hb)
			const frame = 4 + 12 + 4096 + 16
			final := hl + 2*frame
			footer := final + 4 + 4 + 12 + 4 + 100 + 16
			if signed {
				if n := int(binary.BigEndian.Uint16(msg[footer:])); footer+2+n != len(msg) {
					t.Fatalf("footer of %d bytes at %d of a %d-byte message", n, footer, len(msg))
				}
			} else if footer != len(msg) {
				t.Fatalf("message of %d bytes, want %d", len(msg), footer)
			}
			with := func(edit func(b []byte) []byte) []byte { return edit(bytes.Clone(msg)) }
			set := func(at int, v ...byte) func([]byte) []byte {
				return func(b []byte) []byte { copy(b[at:], v); return b }
			}
			flip := func(at int) func([]byte) []byte {
				return func(b []byte) []byte { b[at] ^= 0x04; return b }
			}
			cut := func(n int) func([]byte) []byte {
				return func(b []byte) []byte { return b[:n] }
			}
			const (
				malformed = "malformed message header"
				auth      = "message authentication failed"
				anyError  = ""
			)
			// A suite of the other kind, signed or not: its public key is
			// missing, or there where it must not be.
			otherKind := []byte{0x03, 0x78}
			if signed {
				otherKind = []byte{0x01, 0x78}
			}
			type tamperCase struct {
				name string
				msg  []byte
				want string // in the error; "" for any
			}
			cases := []tamperCase{
				{"claims suite 0x0478", with(set(2, 0x04, 0x78)), "algorithm suite ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY in a version 1 header"},
				{"claims suite 0x0578", with(set(2, 0x05, 0x78)), "in a version 1 header"},
				{"claims version 2", with(set(0, 0x02)), malformed},
				{"claims version 2 and suite 0x0478", with(func(b []byte) []byte { return append([]byte{0x02, 0x04, 0x78}, b[4:]...) }), anyError},
				{"relabelled as a suite signed or not unlike it", with(set(2, otherKind...)), malformed},
				{"non-framed with a frame length", with(set(hl-38, 0x01)), "non-framed content with frame length"},
				{"truncated in the header", with(cut(hl / 2)), malformed},
				{"truncated after the header", with(cut(hl)), auth},
				{"truncated in frame 2", with(cut(hl + frame + frame/2)), auth},
				{"truncated before the final frame", with(cut(final)), auth},
				{"truncated by one byte", with(cut(len(msg) - 1)), auth},
				{"bit flipped in the message ID", with(flip(10)), auth},
				{"bit flipped in the header IV", with(flip(hl - 20)), auth},
				{"bit flipped in the header tag", with(flip(hl - 1)), auth},
				{"bit flipped in frame 2", with(flip(hl + frame + 100)), auth},
				{"bit flipped in the final frame", with(flip(final + 30)), auth},
				{"byte appended", append(bytes.Clone(msg), 0), auth},
			}
			if signed {
				cases = append(cases,
					tamperCase{"footer removed", with(cut(footer)), auth},
					tamperCase{"bit flipped in the signature", with(flip(len(msg) - 10)), auth},
					tamperCase{"bit flipped in the public key", with(flipIn(msg, esdk.PublicKeyContextKey, 10)), anyError},
				)
			}
			// Relabelled as a suite of the same kind with another data key
			// length: KMS returns the data key of the message's length,
			// which is refused before it is used.
			if other, ok := otherLength[suite]; ok {
				want := fmt.Sprintf("returned a %d-byte data key, want %d", suiteOf(t, suite).DataKeyLength(), suiteOf(t, other).DataKeyLength())
				cases = append(cases, tamperCase{"relabelled as suite 0x" + other, with(set(2, suiteBytes(t, other)...)), want})
			}
			// Relabelled as the suite of the same key length with the other
			// key derivation (HKDF or none): the key is not the one the
			// message was sealed with.
			if other, ok := otherKDF[suite]; ok {
				cases = append(cases, tamperCase{"relabelled as suite 0x" + other, with(set(2, suiteBytes(t, other)...)), auth})
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					p := filepath.Join(t.TempDir(), "msg")
					noErr(t, os.WriteFile(p, c.msg, 0o600), "write message")
					f.refused(t, c.want, p, "--commitment-policy", allowDecrypt)
				})
			}
		})
	}
}

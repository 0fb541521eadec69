package main_test

// kms decrypt --buffer: no plaintext on stdout, or in any output, before
// the whole message has verified.

import (
	"bytes"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/openkms/kms/esdk"
)

// finalFrameAt returns where the final frame of msg begins, for a message
// of kms encrypt (4096-byte frames) of plainLen bytes, a whole number of
// frames.
func finalFrameAt(t *testing.T, msg []byte, plainLen int) int {
	t.Helper()
	r := bytes.NewReader(msg)
	h, err := esdk.ReadHeader(r)
	noErr(t, err, "ReadHeader")
	if h.FrameLength != 4096 || plainLen%4096 != 0 {
		t.Fatalf("frame length %d, plaintext %d bytes: want whole 4096-byte frames", h.FrameLength, plainLen)
	}
	at := len(msg) - r.Len() + plainLen/4096*(4+12+4096+16)
	if !bytes.Equal(msg[at:at+4], []byte{0xff, 0xff, 0xff, 0xff}) {
		t.Fatalf("no final frame at byte %d", at)
	}
	return at
}

// TestDecryptBuffer: kms decrypt --buffer (-b) gives back a message of
// several MiB, more than the spool keeps in memory, byte for byte on
// stdout and to a file, signed and not. A message whose signature was
// changed, or that ends before its final frame, fails with one line and
// exit 1, and with --buffer writes nothing on stdout and leaves an
// existing output file as it was. Without --buffer the same messages, to
// stdout, write their authenticated frames before failing: all but the
// last run of frames when the signature is bad, and all of the plaintext
// when the final frame is missing; the exit code alone tells.
// The spool leaves nothing in TMPDIR.
func TestDecryptBuffer(t *testing.T) {
	t.Parallel()
	f := newEnvFixture(t)
	spoolDir := t.TempDir()
	g := *f
	g.env = append(slices.Clone(f.env), "TMPDIR="+spoolDir)
	plain := make([]byte, 6<<20) // whole frames: the final frame is empty
	rand.Read(plain)
	plainFile := filepath.Join(t.TempDir(), "plain")
	noErr(t, os.WriteFile(plainFile, plain, 0o600), "write plaintext")

	toStdout := func(t *testing.T, args ...string) (int, string, string) {
		t.Helper()
		return runToExit(t, g.env, append([]string{"decrypt"}, args...)...)
	}
	for _, signed := range []bool{true, false} {
		name := "unsigned"
		encArgs := []string{"encrypt", "--key", f.arn}
		if signed {
			name = "signed"
			encArgs = append(encArgs, "--signed")
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			msgFile := filepath.Join(dir, "msg")
			g.run(t, append(encArgs, "-o", msgFile, plainFile)...)
			msg, err := os.ReadFile(msgFile)
			noErr(t, err, "read message")

			for _, args := range [][]string{{"--buffer"}, {"-b", "--parallel", "1"}} {
				code, stdout, stderr := toStdout(t, append(args, msgFile)...)
				if code != 0 || stdout != string(plain) {
					t.Fatalf("decrypt %s to stdout: exit %d, %d bytes, want the %d-byte plaintext\n%s", strings.Join(args, " "), code, len(stdout), len(plain), stderr)
				}
				g.decrypted(t, plain, msgFile, args...)
			}

			final := finalFrameAt(t, msg, len(plain))
			cases := map[string][]byte{"truncated before the final frame": msg[:final]}
			if signed {
				bad := bytes.Clone(msg)
				bad[len(bad)-3] ^= 0x01
				cases["signature changed"] = bad
			}
			for what, bad := range cases {
				badFile := filepath.Join(dir, "bad")
				noErr(t, os.WriteFile(badFile, bad, 0o600), "write message")
				for _, args := range [][]string{{"--buffer"}, {"-b", "--parallel", "1"}} {
					code, stdout, stderr := toStdout(t, append(args, badFile)...)
					if code != 1 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "message authentication failed") {
						t.Fatalf("%s, decrypt %s to stdout: exit %d, %d bytes on stdout, want exit 1, none, and one line\n%s", what, strings.Join(args, " "), code, len(stdout), stderr)
					}
					g.refused(t, "message authentication failed", badFile, args...)
				}

				// Streamed, one run of frames at a time.
				code, stdout, stderr := toStdout(t, "--parallel", "1", badFile)
				if code != 1 || strings.Count(stderr, "\n") != 1 {
					t.Fatalf("%s, streamed to stdout: exit %d, want 1 and one line\n%s", what, code, stderr)
				}
				if !strings.HasPrefix(string(plain), stdout) {
					t.Fatalf("%s, streamed to stdout: %d bytes that are not the plaintext's first", what, len(stdout))
				}
				switch what {
				case "signature changed":
					if len(stdout) == 0 || len(stdout) >= len(plain) {
						t.Fatalf("signature changed, streamed to stdout: %d of %d bytes written, want all but the last run's", len(stdout), len(plain))
					}
				default:
					if len(stdout) != len(plain) {
						t.Fatalf("%s, streamed to stdout: %d of %d bytes written, want them all", what, len(stdout), len(plain))
					}
				}
			}
		})
	}
	if names := dirNames(t, spoolDir); len(names) != 0 {
		t.Fatalf("the spool left %v in TMPDIR", names)
	}
}

// TestEncryptRefusesBuffer: --buffer means something to kms decrypt only,
// as in the AWS Encryption SDK CLI; kms encrypt refuses it with one line
// that says why, and writes nothing.
func TestEncryptRefusesBuffer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "plain"), filepath.Join(dir, "msg")
	noErr(t, os.WriteFile(in, []byte("plain"), 0o600), "write")
	for _, flag := range []string{"--buffer", "-b"} {
		code, stdout, stderr := runToExit(t, baseEnv("AWS_ENDPOINT_URL=http://127.0.0.1:1"), "encrypt", "--key", "alias/any", flag, "-o", out, in)
		if code != 1 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "--buffer is for kms decrypt") {
			t.Fatalf("kms encrypt %s: exit %d, want 1 and one line\n%s", flag, code, stderr)
		}
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"plain"}) {
		t.Fatalf("kms encrypt --buffer left %v", names)
	}
}

// TestDecryptBufferPipeMemory streams 128 MiB, twice what kms decrypt
// may hold, through `kms encrypt --signed | kms decrypt --buffer`: the
// plaintext comes back whole, and the decrypting process holds no more
// than 64 MiB at its peak, the plaintext waiting in the spool's file
// under TMPDIR, which is left empty.
func TestDecryptBufferPipeMemory(t *testing.T) {
	t.Parallel()
	f := newEnvFixture(t)
	spoolDir := t.TempDir()
	env := append(slices.Clone(f.env), "TMPDIR="+spoolDir)
	pipeMemory(t, env, 128<<20, []string{"encrypt", "--signed", "--key", f.arn}, []string{"decrypt", "--buffer", "--key", f.arn})
	if names := dirNames(t, spoolDir); len(names) != 0 {
		t.Fatalf("the spool left %v in TMPDIR", names)
	}
}

// TestDecryptSpoolFull: when the spool's temporary file cannot grow (the
// file size limit, as a full TMPDIR: EFBIG where a full disk gives
// ENOSPC), kms decrypt --buffer of a framed message, and kms decrypt of a
// non-framed one, fail with one line naming the spool and exit 1, having
// written nothing on stdout, leaving an existing output file as it was
// and nothing in its directory or in TMPDIR.
func TestDecryptSpoolFull(t *testing.T) {
	t.Parallel()
	f := newEnvFixture(t)
	spoolDir := t.TempDir()
	env := append(slices.Clone(f.env), "TMPDIR="+spoolDir)
	plain, framed := f.sealed(t, 6<<20)
	nonFramed := filepath.Join(t.TempDir(), "non-framed")
	msg, _ := f.nonFramedMessage(t, esdk.SuiteCommitKeyECDSAP384, plain)
	noErr(t, os.WriteFile(nonFramed, msg, 0o600), "write message")

	// 4096 blocks: 2 MiB (or 4 MiB where sh counts KiB), more than the
	// spool keeps in memory and less than the message.
	limited := func(args ...string) *exec.Cmd {
		cmd := exec.Command("/bin/sh", append([]string{"-c", `ulimit -f 4096 && exec "$0" "$@"`, kmsBin}, args...)...)
		cmd.Env = env
		return cmd
	}
	for _, args := range [][]string{{"decrypt", "--buffer", framed}, {"decrypt", nonFramed}} {
		p := startCmd(t, limited(args...))
		code, stdout, stderr := p.wait(exitTimeout), p.stdout.String(), p.stderr.String()
		if code != 1 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "spooling plaintext") {
			t.Fatalf("kms %s, spool full: exit %d, %d bytes on stdout, want 1, none and one line naming the spool\n%s",
				strings.Join(args, " "), code, len(stdout), stderr)
		}

		outDir := t.TempDir()
		existing := filepath.Join(outDir, "existing")
		const old = "what the file held before"
		noErr(t, os.WriteFile(existing, []byte(old), 0o600), "write")
		p = startCmd(t, limited(append([]string{args[0], "-o", existing}, args[1:]...)...))
		if code, stderr := p.wait(exitTimeout), p.stderr.String(); code != 1 || strings.Count(stderr, "\n") != 1 {
			t.Fatalf("kms %s -o, spool full: exit %d, want 1 and one line\n%s", strings.Join(args, " "), code, stderr)
		}
		if got, _ := os.ReadFile(existing); string(got) != old {
			t.Fatalf("kms %s -o, spool full: the output holds %d bytes, want it untouched", strings.Join(args, " "), len(got))
		}
		if names := dirNames(t, outDir); !slices.Equal(names, []string{"existing"}) {
			t.Fatalf("kms %s -o, spool full: left %v beside the output", strings.Join(args, " "), names)
		}
	}
	if names := dirNames(t, spoolDir); len(names) != 0 {
		t.Fatalf("the spool left %v in TMPDIR", names)
	}
}

package main_test

// kms encrypt and kms decrypt against a --dev server: where the output
// goes (devices, FIFOs, regular files, symbolic links), what a signal
// leaves, and which keys --key allows.

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// envFixture is a --dev server with a key, and the environment that
// points the kms commands at it.
type envFixture struct {
	s   *server
	env []string
	arn string
	dir string // scratch directory for the test's files
}

func newEnvFixture(t *testing.T) *envFixture {
	t.Helper()
	s := startDev(t, t.TempDir())
	key, err := s.client(t).CreateKey(testCtx(t), &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	id, secret := devCredentials(t, s.Dir)
	env := append(baseEnv(), "AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_REGION=us-east-1",
		"AWS_ENDPOINT_URL="+s.URL, "HOME="+t.TempDir(), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	return &envFixture{s: s, env: env, arn: aws.ToString(key.KeyMetadata.Arn), dir: t.TempDir()}
}

// run runs kms with args to its end and fails the test unless it exits 0.
func (f *envFixture) run(t *testing.T, args ...string) {
	t.Helper()
	code, _, stderr := runToExit(t, f.env, args...)
	if code != 0 {
		t.Fatalf("kms %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
	}
}

// sealed writes n random bytes to a file, encrypts it, and returns the
// plaintext and the ciphertext's file name.
func (f *envFixture) sealed(t *testing.T, n int) ([]byte, string) {
	t.Helper()
	plain := make([]byte, n)
	rand.Read(plain)
	p := filepath.Join(f.dir, "plain")
	noErr(t, os.WriteFile(p, plain, 0o600), "write plaintext")
	enc := filepath.Join(f.dir, "msg.enc")
	f.run(t, "encrypt", "--key", f.arn, "-o", enc, p)
	return plain, enc
}

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	noErr(t, err, "read dir")
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestEnvelopeOutputNotRegular(t *testing.T) {
	t.Parallel()
	f := newEnvFixture(t)
	plain, enc := f.sealed(t, 3<<20+17)

	t.Run("dev-null", func(t *testing.T) {
		f.run(t, "decrypt", "-o", "/dev/null", enc)
		f.run(t, "encrypt", "--key", f.arn, "-o", "/dev/null", enc)
		st, err := os.Stat("/dev/null")
		noErr(t, err, "stat /dev/null")
		if st.Mode()&os.ModeCharDevice == 0 {
			t.Fatalf("/dev/null is no longer a character device: %v", st.Mode())
		}
		if st.Size() != 0 {
			t.Fatalf("/dev/null holds %d bytes", st.Size())
		}
	})

	t.Run("dev-stdout", func(t *testing.T) {
		for _, name := range []string{"/dev/stdout", "/proc/self/fd/1"} {
			code, stdout, stderr := runToExit(t, f.env, "decrypt", "-o", name, enc)
			if code != 0 || stdout != string(plain) {
				t.Fatalf("decrypt -o %s: exit %d, %d bytes on stdout, want the %d-byte plaintext\n%s", name, code, len(stdout), len(plain), stderr)
			}
		}
		// Appending through /dev/stdout keeps what the file held.
		out := filepath.Join(t.TempDir(), "log")
		noErr(t, os.WriteFile(out, []byte("before\n"), 0o600), "write")
		lf, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND, 0)
		noErr(t, err, "open")
		cmd := exec.Command(kmsBin, "decrypt", "-o", "/dev/stdout", enc)
		var stderr bytes.Buffer
		cmd.Env, cmd.Stdout, cmd.Stderr = f.env, lf, &stderr
		err = cmd.Run()
		lf.Close()
		if err != nil {
			t.Fatalf("decrypt -o /dev/stdout >> log: %v\n%s", err, stderr.String())
		}
		got, _ := os.ReadFile(out)
		if !bytes.Equal(got, append([]byte("before\n"), plain...)) {
			t.Fatalf("log holds %d bytes, want 7 + %d", len(got), len(plain))
		}
	})

	t.Run("fifo", func(t *testing.T) {
		fifo := filepath.Join(t.TempDir(), "fifo")
		noErr(t, syscall.Mkfifo(fifo, 0o600), "mkfifo")
		reader := exec.Command("cat", fifo)
		var got bytes.Buffer
		reader.Stdout = &got
		noErr(t, reader.Start(), "start cat")
		f.run(t, "decrypt", "-o", fifo, enc)
		noErr(t, reader.Wait(), "cat")
		if !bytes.Equal(got.Bytes(), plain) {
			t.Fatalf("read %d bytes from the FIFO, want the %d-byte plaintext", got.Len(), len(plain))
		}
		st, err := os.Lstat(fifo)
		noErr(t, err, "lstat fifo")
		if st.Mode()&os.ModeNamedPipe == 0 {
			t.Fatalf("the FIFO was replaced: %v", st.Mode())
		}
	})
}

func TestEnvelopeOutputRegular(t *testing.T) {
	t.Parallel()
	f := newEnvFixture(t)
	plain, enc := f.sealed(t, 1<<20+5)

	t.Run("existing", func(t *testing.T) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out")
		noErr(t, os.WriteFile(out, []byte("old content, longer than nothing"), 0o640), "write")
		f.run(t, "decrypt", "-o", out, enc)
		got, err := os.ReadFile(out)
		noErr(t, err, "read output")
		if !bytes.Equal(got, plain) {
			t.Fatalf("output holds %d bytes, want the %d-byte plaintext", len(got), len(plain))
		}
		if m := fileMode(t, out); m != 0o640 {
			t.Errorf("output mode %v, want the old file's 0640", m)
		}
		if names := dirNames(t, dir); len(names) != 1 {
			t.Errorf("directory holds %v, want only out", names)
		}
	})

	t.Run("symlink", func(t *testing.T) {
		dir := t.TempDir()
		real := filepath.Join(dir, "sub", "real")
		noErr(t, os.MkdirAll(filepath.Dir(real), 0o700), "mkdir")
		noErr(t, os.WriteFile(real, []byte("old"), 0o600), "write")
		link := filepath.Join(dir, "link")
		noErr(t, os.Symlink("sub/real", link), "symlink")
		f.run(t, "decrypt", "-o", link, enc)
		if dest, err := os.Readlink(link); err != nil || dest != "sub/real" {
			t.Fatalf("the link was replaced: readlink = %q, %v", dest, err)
		}
		got, err := os.ReadFile(real)
		noErr(t, err, "read link target")
		if !bytes.Equal(got, plain) {
			t.Fatalf("the link's target holds %d bytes, want the %d-byte plaintext", len(got), len(plain))
		}
		if names := dirNames(t, filepath.Dir(real)); len(names) != 1 {
			t.Errorf("directory holds %v, want only real", names)
		}
	})

	// A relative link reached through a linked directory: its ".." climbs
	// from the directory it is really in, as the kernel reads it.
	t.Run("symlink through a linked directory", func(t *testing.T) {
		dir := t.TempDir()
		noErr(t, os.MkdirAll(filepath.Join(dir, "real", "sub"), 0o700), "mkdir")
		noErr(t, os.Symlink("real/sub", filepath.Join(dir, "alias")), "symlink")
		target := filepath.Join(dir, "real", "target")
		noErr(t, os.WriteFile(target, []byte("old"), 0o600), "write")
		noErr(t, os.Symlink("../target", filepath.Join(dir, "real", "sub", "out")), "symlink")
		f.run(t, "decrypt", "-o", filepath.Join(dir, "alias", "out"), enc)
		got, err := os.ReadFile(target)
		noErr(t, err, "read link target")
		if !bytes.Equal(got, plain) {
			t.Fatalf("the file the link names holds %q, want the plaintext", got[:min(len(got), 16)])
		}
		if _, err := os.Lstat(filepath.Join(dir, "target")); err == nil {
			t.Fatal("the output went to dir/target, which the link does not name")
		}
	})

	t.Run("failure", func(t *testing.T) {
		dir := t.TempDir()
		bad := filepath.Join(dir, "bad.enc")
		msg, err := os.ReadFile(enc)
		noErr(t, err, "read")
		msg[len(msg)-100] ^= 1
		noErr(t, os.WriteFile(bad, msg, 0o600), "write")
		code, _, stderr := runToExit(t, f.env, "decrypt", "-o", filepath.Join(dir, "out"), bad)
		if code == 0 {
			t.Fatal("decrypt of a tampered message exited 0")
		}
		if strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("error is not one line: %q", stderr)
		}
		if names := dirNames(t, dir); len(names) != 1 {
			t.Errorf("directory holds %v, want only bad.enc", names)
		}
	})
}

// TestEnvelopeSignalLeavesNothing stops a decrypt to a file with SIGTERM,
// SIGINT and SIGHUP while it waits for the rest of a large message on
// stdin: neither the output nor a temporary file may be left.
func TestEnvelopeSignalLeavesNothing(t *testing.T) {
	t.Parallel()
	f := newEnvFixture(t)
	_, enc := f.sealed(t, 64<<20)
	msg, err := os.ReadFile(enc)
	noErr(t, err, "read")
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "k.out")
			cmd := exec.Command(kmsBin, "decrypt", "-o", out)
			cmd.Env = f.env
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdin, err := cmd.StdinPipe()
			noErr(t, err, "stdin pipe")
			noErr(t, cmd.Start(), "start")
			// Most of the message, then, with the pipe open, wait until
			// plaintext has been written to the temporary file.
			if _, err := stdin.Write(msg[:len(msg)*3/4]); err != nil {
				t.Fatalf("write: %v\n%s", err, stderr.String())
			}
			waitFor(t, exitTimeout, "plaintext in a temporary file", func() error { return writingIn(cmd.Process.Pid, dir) })
			noErr(t, cmd.Process.Signal(sig), "signal")
			err = cmd.Wait()
			stdin.Close()
			if err == nil {
				t.Fatal("decrypt exited 0 after a signal")
			}
			if names := dirNames(t, dir); len(names) != 0 {
				t.Fatalf("left %v after %v", names, sig)
			}
		})
	}
}

// writingIn returns nil once the process pid holds open a file in dir
// with something in it, named or not (an O_TMPFILE file shows in
// /proc/<pid>/fd as "dir/#inode (deleted)").
func writingIn(pid int, dir string) error {
	fds := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(fds)
	if err != nil {
		return err
	}
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(fds, e.Name()))
		if err != nil || filepath.Dir(strings.TrimSuffix(target, " (deleted)")) != dir {
			continue
		}
		if fi, err := os.Stat(filepath.Join(fds, e.Name())); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
			return nil
		}
	}
	return fmt.Errorf("no file with content open in %s", dir)
}

// TestEnvelopeDecryptKeyStrict: --key naming another key than the
// message's, by alias or id, refuses the message.
func TestEnvelopeDecryptKeyStrict(t *testing.T) {
	t.Parallel()
	f := newEnvFixture(t)
	plain, enc := f.sealed(t, 10000)
	ctx := testCtx(t)
	c := f.s.client(t)
	other, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/B"), TargetKeyId: other.KeyMetadata.KeyId})
	noErr(t, err, "CreateAlias B")
	_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/A"), TargetKeyId: aws.String(f.arn)})
	noErr(t, err, "CreateAlias A")
	keyA := f.arn[strings.LastIndex(f.arn, "/")+1:]

	for _, k := range []string{"alias/B", aws.ToString(other.KeyMetadata.KeyId), aws.ToString(other.KeyMetadata.Arn)} {
		out := filepath.Join(t.TempDir(), "out")
		code, _, stderr := runToExit(t, f.env, "decrypt", "--key", k, "-o", out, enc)
		if code == 0 {
			t.Errorf("decrypt --key %s of a message under another key exited 0", k)
		}
		if strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, k) {
			t.Errorf("decrypt --key %s: want a one-line error naming the key, got %q", k, stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("decrypt --key %s wrote the output", k)
		}
	}
	for _, k := range []string{"alias/A", keyA, f.arn} {
		out := filepath.Join(t.TempDir(), "out")
		f.run(t, "decrypt", "--key", k, "-o", out, enc)
		if got, _ := os.ReadFile(out); !bytes.Equal(got, plain) {
			t.Errorf("decrypt --key %s: wrong plaintext", k)
		}
	}
}

// TestEnvelopePipeMemory streams 512 MiB through `kms encrypt | kms
// decrypt`, two processes joined by a pipe, from a generator to a
// hasher: the plaintext must come back whole, and neither process may
// hold more than 64 MiB at its peak (VmHWM, read while they run), however
// long the stream.
// PIPE_TEST_MIB=10240 runs a longer stream by hand.
func TestEnvelopePipeMemory(t *testing.T) {
	t.Parallel()
	size := 512 << 20
	if s := os.Getenv("PIPE_TEST_MIB"); s != "" {
		mib, err := strconv.Atoi(s)
		noErr(t, err, "PIPE_TEST_MIB")
		size = mib << 20
	}
	f := newEnvFixture(t)
	pipeMemory(t, f.env, size, []string{"encrypt", "--key", f.arn}, []string{"decrypt", "--key", f.arn})
}

// pipeMemory streams size bytes through `kms ENC... | kms DEC...`, two
// processes joined by a pipe, from a generator to a hasher, and fails the
// test unless the plaintext comes back whole and neither process held
// more than 64 MiB at its peak (VmHWM, read while they run).
func pipeMemory(t *testing.T, env []string, size int, encArgs, decArgs []string) {
	t.Helper()
	const maxRSS = 64 << 20
	start := time.Now()
	enc := exec.Command(kmsBin, encArgs...)
	dec := exec.Command(kmsBin, decArgs...)
	enc.Env, dec.Env = env, env
	var encErr, decErr bytes.Buffer
	enc.Stderr, dec.Stderr = &encErr, &decErr
	pr, pw, err := os.Pipe()
	noErr(t, err, "pipe")
	enc.Stdout, dec.Stdin = pw, pr
	in, err := enc.StdinPipe()
	noErr(t, err, "stdin pipe")
	out, err := dec.StdoutPipe()
	noErr(t, err, "stdout pipe")
	noErr(t, enc.Start(), "start encrypt")
	noErr(t, dec.Start(), "start decrypt")
	encHWM, decHWM := watchHWM(enc.Process.Pid), watchHWM(dec.Process.Pid)
	pr.Close()
	pw.Close()

	// The generator: AES-CTR keystream, fast and incompressible.
	var key [32]byte
	rand.Read(key[:])
	block, err := aes.NewCipher(key[:])
	noErr(t, err, "aes")
	stream := cipher.NewCTR(block, make([]byte, aes.BlockSize))
	sent := sha256.New()
	genErr := make(chan error, 1)
	go func() {
		buf := make([]byte, 1<<20)
		var err error
		for n := 0; n < size && err == nil; n += len(buf) {
			stream.XORKeyStream(buf, buf)
			sent.Write(buf)
			_, err = in.Write(buf)
		}
		if cerr := in.Close(); err == nil {
			err = cerr
		}
		genErr <- err
	}()
	got := sha256.New()
	n, err := io.Copy(got, out)
	encHWM.stop()
	decHWM.stop()
	noErr(t, err, "read decrypt's output")
	noErr(t, <-genErr, "write encrypt's input")
	if err := enc.Wait(); err != nil {
		t.Fatalf("kms %s: %v\n%s", encArgs[0], err, encErr.String())
	}
	if err := dec.Wait(); err != nil {
		t.Fatalf("kms %s: %v\n%s", decArgs[0], err, decErr.String())
	}
	t.Logf("%d MiB in %v", size>>20, time.Since(start).Round(time.Millisecond))
	if n != int64(size) || !bytes.Equal(got.Sum(nil), sent.Sum(nil)) {
		t.Fatalf("decrypt gave %d bytes with another SHA-256 than the %d sent", n, size)
	}
	for name, w := range map[string]*hwmWatch{encArgs[0]: encHWM, decArgs[0]: decHWM} {
		peak := w.stop()
		t.Logf("kms %s: peak RSS (VmHWM) %d MiB", name, peak>>20)
		if peak == 0 {
			t.Errorf("kms %s: VmHWM never read", name)
		}
		if peak > maxRSS {
			t.Errorf("kms %s: peak RSS %d MiB, want at most %d MiB", name, peak>>20, maxRSS>>20)
		}
	}
}

// hwmWatch polls a process's peak resident set size, VmHWM in
// /proc/PID/status, until stopped. (The rusage of a child cannot serve:
// Linux carries the parent's peak across fork and exec into it.)
type hwmWatch struct {
	done chan struct{}
	peak chan int64
	once sync.Once
	got  int64
}

func watchHWM(pid int) *hwmWatch {
	w := &hwmWatch{done: make(chan struct{}), peak: make(chan int64, 1)}
	go func() {
		var peak int64
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
				for _, line := range strings.Split(string(b), "\n") {
					if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
						kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
						peak = max(peak, kb<<10)
					}
				}
			}
			select {
			case <-w.done:
				w.peak <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// stop ends the polling, after one last read, and returns the peak.
func (w *hwmWatch) stop() int64 {
	w.once.Do(func() {
		close(w.done)
		w.got = <-w.peak
	})
	return w.got
}

// TestEnvelopeDecryptLimitsDataKeys: a message with more encrypted data
// keys than --max-encrypted-data-keys (10 by default) is refused before
// any is sent to KMS, each being a KMS call an unauthenticated file could
// make in the user's name; a higher limit reads it.
func TestEnvelopeDecryptLimitsDataKeys(t *testing.T) {
	t.Parallel()
	f := newEnvFixture(t)
	dir := t.TempDir()
	plainFile := filepath.Join(dir, "plain")
	noErr(t, os.WriteFile(plainFile, []byte("eleven keys"), 0o600), "write")
	args := []string{"encrypt", "-o", filepath.Join(dir, "msg.enc")}
	for range 11 {
		args = append(args, "--key", f.arn)
	}
	f.run(t, append(args, plainFile)...)
	out := filepath.Join(dir, "out")
	code, _, stderr := runToExit(t, f.env, "decrypt", "-o", out, filepath.Join(dir, "msg.enc"))
	if code == 0 || !strings.Contains(stderr, "too many encrypted data keys: 11, at most 10") || !strings.Contains(stderr, "--max-encrypted-data-keys") {
		t.Fatalf("decrypt of a message with 11 data keys: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("the refused decrypt wrote the output")
	}
	f.run(t, "decrypt", "--max-encrypted-data-keys", "11", "-o", out, filepath.Join(dir, "msg.enc"))
	if got, _ := os.ReadFile(out); string(got) != "eleven keys" {
		t.Fatalf("decrypt with the limit raised: %q", got)
	}
	// A key of the encryption context given twice is refused, not
	// silently given its last value.
	code, _, stderr = runToExit(t, f.env, "encrypt", "--key", f.arn, "--context", "purpose=prod", "--context", "purpose=test", "-o", filepath.Join(dir, "dup.enc"), plainFile)
	if code == 0 || !strings.Contains(stderr, "--context purpose=prod and purpose=test") {
		t.Fatalf("encrypt with a context key twice: exit %d\n%s", code, stderr)
	}
	// A frame size out of range is refused, 0 included, which the
	// library would read as its default.
	for _, size := range []string{"0", "-1", "67108865"} {
		out := filepath.Join(dir, "frame.enc")
		code, _, stderr = runToExit(t, f.env, "encrypt", "--key", f.arn, "--frame-size", size, "-o", out, plainFile)
		if code == 0 || !strings.Contains(stderr, "--frame-size "+size+": a frame is 1 byte to 67108864 bytes") {
			t.Fatalf("encrypt --frame-size %s: exit %d\n%s", size, code, stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("encrypt --frame-size %s wrote the output", size)
		}
	}
}

// TestEnvelopeRefusesCountsOutOfRange: a --parallel below 1, which the
// library would read as one per CPU, and a negative
// --max-encrypted-data-keys, which it would read as no limit, are
// refused before anything is read or written, as --frame-size 0 is: a
// typo must not switch the data key limit off or pass for the default.
func TestEnvelopeRefusesCountsOutOfRange(t *testing.T) {
	t.Parallel()
	f := newEnvFixture(t)
	dir := t.TempDir()
	plainFile := filepath.Join(dir, "plain")
	noErr(t, os.WriteFile(plainFile, []byte("counted"), 0o600), "write")
	msg := filepath.Join(dir, "msg.enc")
	f.run(t, "encrypt", "--key", f.arn, "--key", f.arn, "-o", msg, plainFile)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"encrypt", "--key", f.arn, "--parallel", "0", plainFile}, "--parallel 0: give at least 1"},
		{[]string{"encrypt", "--key", f.arn, "--parallel", "-1", plainFile}, "--parallel -1: give at least 1"},
		{[]string{"decrypt", "--parallel", "0", msg}, "--parallel 0: give at least 1"},
		{[]string{"decrypt", "--max-encrypted-data-keys", "-1", msg}, "--max-encrypted-data-keys -1: give 0 (no limit) or more"},
	} {
		out := filepath.Join(dir, "out")
		args := append(append([]string{}, tc.args[:len(tc.args)-1]...), "-o", out, tc.args[len(tc.args)-1])
		code, _, stderr := runToExit(t, f.env, args...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Fatalf("kms %s: exit %d, want the error %q\n%s", strings.Join(args, " "), code, tc.want, stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("kms %s wrote the output", strings.Join(args, " "))
		}
	}
	// The bounds themselves are taken: one frame at a time, and a limit
	// of 0 (none) on a message with two data keys.
	out := filepath.Join(dir, "out")
	f.run(t, "decrypt", "--parallel", "1", "--max-encrypted-data-keys", "0", "-o", out, msg)
	if got, _ := os.ReadFile(out); string(got) != "counted" {
		t.Fatalf("decrypt --parallel 1 --max-encrypted-data-keys 0: %q", got)
	}
}

// TestEnvelopeRegionDefaults: kms encrypt and decrypt find their region
// as their --help and the README say: --region, else AWS_REGION or
// AWS_DEFAULT_REGION (which `kms server --dev` prints), the AWS config,
// and us-east-1 when nothing names one. An alias is looked up in that
// region, so a wrong one fails with NotFoundException naming it.
func TestEnvelopeRegionDefaults(t *testing.T) {
	t.Parallel()
	f := newEnvFixture(t)
	_, err := f.s.client(t).CreateAlias(testCtx(t), &kms.CreateAliasInput{
		AliasName: aws.String("alias/region-test"), TargetKeyId: aws.String(f.arn)})
	noErr(t, err, "CreateAlias")
	var noRegion []string
	for _, kv := range f.env {
		if !strings.HasPrefix(kv, "AWS_REGION=") {
			noRegion = append(noRegion, kv)
		}
	}
	dir := t.TempDir()
	plainFile := filepath.Join(dir, "plain")
	noErr(t, os.WriteFile(plainFile, []byte("regional"), 0o600), "write")
	encrypt := func(env []string, extra ...string) (int, string) {
		args := append([]string{"encrypt", "--key", "alias/region-test", "-o", filepath.Join(dir, "msg.enc")}, extra...)
		code, _, stderr := runToExit(t, env, append(args, plainFile)...)
		return code, stderr
	}
	if code, stderr := encrypt(noRegion); code != 0 {
		t.Fatalf("encrypt with no region configured (us-east-1): exit %d\n%s", code, stderr)
	}
	inIreland := append(append([]string{}, noRegion...), "AWS_DEFAULT_REGION=eu-west-1")
	if code, stderr := encrypt(inIreland); code == 0 || !strings.Contains(stderr, "NotFoundException") || !strings.Contains(stderr, "eu-west-1") {
		t.Fatalf("encrypt with AWS_DEFAULT_REGION=eu-west-1: exit %d, want the alias not found in eu-west-1\n%s", code, stderr)
	}
	if code, stderr := encrypt(inIreland, "--region", "us-east-1"); code != 0 {
		t.Fatalf("encrypt --region us-east-1 over AWS_DEFAULT_REGION: exit %d\n%s", code, stderr)
	}
	for _, cmd := range []string{"encrypt", "decrypt"} {
		code, help, _ := runToExit(t, baseEnv(), cmd, "--help")
		if code != 0 || !regexp.MustCompile(`--region string +AWS region \(default: AWS_REGION or AWS_DEFAULT_REGION, the AWS config, or us-east-1\)`).MatchString(help) {
			t.Fatalf("kms %s --help does not give the region's defaults as they are:\n%s", cmd, help)
		}
	}
}

// TestEnvelopeDecryptRequiresContext: kms decrypt --context k=v (or k
// alone) decrypts only a message whose encryption context has that pair
// (or key), as the AWS Encryption SDK CLI's --encryption-context does on
// decrypt: a message sealed for another purpose under the same key is
// refused with one line naming both, and writes nothing; a key given
// twice is refused.
func TestEnvelopeDecryptRequiresContext(t *testing.T) {
	t.Parallel()
	f := newEnvFixture(t)
	dir := t.TempDir()
	plainFile := filepath.Join(dir, "plain")
	noErr(t, os.WriteFile(plainFile, []byte("for prod"), 0o600), "write")
	msg := filepath.Join(dir, "msg.enc")
	f.run(t, "encrypt", "--key", f.arn, "--context", "purpose=prod", "--context", "team=a", "-o", msg, plainFile)

	for _, ctx := range [][]string{
		{"--context", "purpose=prod"},
		{"--context", "purpose"},
		{"--context", "purpose=prod", "--context", "team"},
	} {
		out := filepath.Join(t.TempDir(), "out")
		f.run(t, append(append([]string{"decrypt"}, ctx...), "-o", out, msg)...)
		if got, _ := os.ReadFile(out); string(got) != "for prod" {
			t.Errorf("decrypt %v: %q", ctx, got)
		}
	}
	for _, tc := range []struct {
		ctx  []string
		want string
	}{
		{[]string{"--context", "purpose=test"}, `has purpose="prod", not purpose=test`},
		{[]string{"--context", "purpose=prod", "--context", "stage=1"}, "has no stage, not stage=1"},
		{[]string{"--context", "stage"}, "has no stage, which --context requires"},
		{[]string{"--context", "purpose="}, `has purpose="prod", not purpose=`},
		{[]string{"--context", "purpose=prod", "--context", "purpose"}, "--context purpose=prod and purpose: give each key"},
		{[]string{"--context", "=prod"}, `--context "=prod": want key=value`},
	} {
		out := filepath.Join(t.TempDir(), "out")
		args := append(append([]string{"decrypt"}, tc.ctx...), "-o", out, msg)
		code, _, stderr := runToExit(t, f.env, args...)
		if code == 0 || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("kms %s: exit %d, want one line with %q\n%s", strings.Join(args, " "), code, tc.want, stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("kms %s wrote the output", strings.Join(args, " "))
		}
	}
}

// TestEnvelopeKeysOfAnotherRegionAndAccountFilter: a key named by ARN is
// asked for in the ARN's region, whatever region the environment names,
// as the AWS Encryption SDKs do, for encrypting and for decrypting with
// and without --key; and kms decrypt --discovery-account decrypts only a
// message whose data key is under a key of one of those accounts,
// refusing another before any data key goes to KMS and writing nothing.
func TestEnvelopeKeysOfAnotherRegionAndAccountFilter(t *testing.T) {
	t.Parallel()
	f := newEnvFixture(t) // AWS_REGION=us-east-1
	ctx := testCtx(t)
	inIreland := func(o *kms.Options) { o.Region = "eu-west-1" }
	key, err := f.s.client(t).CreateKey(ctx, &kms.CreateKeyInput{}, inIreland)
	noErr(t, err, "CreateKey in eu-west-1")
	arn := aws.ToString(key.KeyMetadata.Arn)
	account := strings.Split(arn, ":")[4]

	plain := []byte("sealed under a key in Ireland")
	p := filepath.Join(f.dir, "plain")
	noErr(t, os.WriteFile(p, plain, 0o600), "write plaintext")
	enc := filepath.Join(f.dir, "msg.enc")
	f.run(t, "encrypt", "--key", arn, "-o", enc, p)
	for _, args := range [][]string{nil, {"--key", arn}, {"--discovery-account", account}, {"--discovery-account", "444455556666", "--discovery-account", account}} {
		out := filepath.Join(t.TempDir(), "out")
		f.run(t, append(append([]string{"decrypt"}, args...), "-o", out, enc)...)
		if got, _ := os.ReadFile(out); !bytes.Equal(got, plain) {
			t.Errorf("decrypt %v: wrong plaintext", args)
		}
	}

	out := filepath.Join(t.TempDir(), "out")
	code, _, stderr := runToExit(t, f.env, "decrypt", "--discovery-account", "444455556666", "-o", out, enc)
	if code == 0 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "discovery filter") || !strings.Contains(stderr, arn) {
		t.Errorf("decrypt --discovery-account of another account: exit %d, want a one-line refusal naming the key\n%s", code, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("decrypt --discovery-account of another account wrote the output")
	}
	for _, args := range [][]string{
		{"--discovery-account", "12345"},
		{"--discovery-account", account, "--key", arn},
		{"--discovery-partition", "aws-cn"},
	} {
		code, _, stderr := runToExit(t, f.env, append(append([]string{"decrypt"}, args...), "-o", out, enc)...)
		if code == 0 || !strings.Contains(stderr, "--discovery-") {
			t.Errorf("decrypt %v: exit %d, want a usage error\n%s", args, code, stderr)
		}
	}
}

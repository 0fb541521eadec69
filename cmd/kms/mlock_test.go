package main_test

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// procKB reads the fields of /proc/PID/file given in kB (VmLck, Rss,
// Locked, ...) by name.
func procKB(t *testing.T, pid int, file string) map[string]int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/%s", pid, file))
	noErr(t, err, "open")
	defer f.Close()
	fields := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		v, isKB := strings.CutSuffix(strings.TrimSpace(v), " kB")
		if !ok || !isKB {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		noErr(t, err, "/proc/%d/%s: %s", pid, file, k)
		fields[k] = n
	}
	noErr(t, sc.Err(), "read /proc/%d/%s", pid, file)
	return fields
}

// With --mlock the server's memory is locked into RAM, so that no key
// material it holds is ever written to swap: every page it has is locked
// (Locked, the resident pages of its locked maps, is about its Pss, and
// VmLck, the size of those maps, covers its resident set), and it
// answers signed calls. Without it nothing is locked.
func TestMlockLocksTheServersMemory(t *testing.T) {
	ctx := testCtx(t)
	for _, lock := range []bool{true, false} {
		args := []string{"--dev"}
		if lock {
			args = append(args, "--mlock")
		}
		s := startServer(t, t.TempDir(), baseEnv(), args...)
		c := s.client(t)
		ck, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
		noErr(t, err, "CreateKey with --mlock=%v", lock)
		enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: ck.KeyMetadata.KeyId, Plaintext: []byte("kept out of swap")})
		noErr(t, err, "Encrypt with --mlock=%v", lock)
		dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
		noErr(t, err, "Decrypt with --mlock=%v", lock)
		if string(dec.Plaintext) != "kept out of swap" {
			t.Errorf("Decrypt with --mlock=%v: %q", lock, dec.Plaintext)
		}

		pid := s.cmd.Process.Pid
		status, rollup := procKB(t, pid, "status"), procKB(t, pid, "smaps_rollup")
		if !lock {
			if status["VmLck"] != 0 || rollup["Locked"] != 0 {
				t.Errorf("without --mlock: VmLck %d kB, Locked %d kB; want none", status["VmLck"], rollup["Locked"])
			}
			continue
		}
		if status["VmLck"] <= 0 || status["VmLck"] < status["VmRSS"] {
			t.Errorf("with --mlock: VmLck %d kB, VmRSS %d kB: the locked maps do not cover the resident set", status["VmLck"], status["VmRSS"])
		}
		if rollup["Locked"] < rollup["Pss"]*9/10 {
			t.Errorf("with --mlock: Locked %d kB of Pss %d kB: pages of the server are not locked", rollup["Locked"], rollup["Pss"])
		}
		s.waitLog(regexp.MustCompile(`memory locked into RAM \(--mlock\)`), startTimeout)
	}
}

// A server asked to lock its memory that may not (a user whose
// RLIMIT_MEMLOCK is below what the process maps, and who lacks
// CAP_IPC_LOCK) refuses to start, with one line that says why and how to
// lift the limit, whether asked by the flag or the config file; it never
// runs unlocked. Without --mlock the same user starts it.
func TestMlockRefusedUnderTheLimit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running a server as another user needs root")
	}
	home, err := os.MkdirTemp("", "kms-mlock-")
	noErr(t, err, "temp dir")
	t.Cleanup(func() { os.RemoveAll(home) })
	noErr(t, os.Chown(home, otherUID, otherUID), "chown")
	config := filepath.Join(home, "kms.yaml")
	noErr(t, os.WriteFile(config, []byte("mlock: true\n"), 0o644), "write config")
	bin := binaryForOthers(t)

	// sh lowers its own limit, as `ulimit -l 64` in a unit's script would.
	limited := func(args ...string) *exec.Cmd {
		cmd := exec.Command("/bin/sh", append([]string{"-c", `ulimit -l 64 && exec "$0" "$@"`, bin, "server", "--dev",
			"--listen", "127.0.0.1:0", "--data-dir", filepath.Join(home, "kms-data")}, args...)...)
		cmd.Env, cmd.Dir = baseEnv("HOME="+home), home
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: otherUID, Gid: otherUID}}
		return cmd
	}
	for _, c := range []struct {
		args []string
		from string
	}{
		{[]string{"--mlock"}, "--mlock"},
		{[]string{"--config", config}, "mlock in the --config file"},
	} {
		p := startCmd(t, limited(c.args...))
		code := p.wait(exitTimeout)
		stderr := p.stderr.String()
		if code == 0 || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v under ulimit -l 64: exit %d, stderr:\n%s\nwant a refusal on one line", c.args, code, stderr)
		}
		for _, want := range []string{"kms: " + c.from + ": cannot lock the server's memory: mlockall", "RLIMIT_MEMLOCK (64 KiB)",
			"ulimit -l unlimited", "LimitMEMLOCK=infinity", "CAP_IPC_LOCK", "--cap-add IPC_LOCK"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("%v under ulimit -l 64: the refusal does not say %q:\n%s", c.args, want, stderr)
			}
		}
		if strings.Contains(p.stdout.String(), "listening") {
			t.Errorf("%v under ulimit -l 64 listened:\n%s", c.args, p.stdout)
		}
	}

	s := startCmd(t, limited())
	m := s.waitOutput(listeningRE, startTimeout)
	srv := &server{proc: s, URL: m[1], Region: m[2], Dir: m[3]}
	waitHealthy(t, srv)
	if _, err := srv.client(t).ListKeys(testCtx(t), &kms.ListKeysInput{Limit: aws.Int32(1)}); err != nil {
		t.Errorf("ListKeys of the server started without --mlock under ulimit -l 64: %v", err)
	}
}

// The offline commands that read a root key or hold key material or
// plaintext in the clear take --mlock too: kms decrypt, waiting for its
// message on stdin, has its memory locked; a user who may not lock
// (ulimit -l 64) is refused with one line before anything is done (kms
// root-key init writes no key file), and without --mlock is not.
func TestMlockOfflineCommands(t *testing.T) {
	cmd := exec.Command(kmsBin, "decrypt", "--mlock")
	cmd.Env = baseEnv()
	stdin, err := cmd.StdinPipe()
	noErr(t, err, "stdin")
	p := startCmd(t, cmd)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(startTimeout)
	for procKB(t, cmd.Process.Pid, "status")["VmLck"] == 0 {
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("kms decrypt --mlock, waiting on stdin, has locked nothing (exited: %v)\n%s", p.exited(), p.stderr)
		}
		<-tick.C
	}
	stdin.Close()
	p.wait(exitTimeout)

	if os.Geteuid() != 0 {
		t.Skip("running kms as another user needs root")
	}
	home, err := os.MkdirTemp("", "kms-mlock-")
	noErr(t, err, "temp dir")
	t.Cleanup(func() { os.RemoveAll(home) })
	noErr(t, os.Chown(home, otherUID, otherUID), "chown")
	bin := binaryForOthers(t)
	keyFile := filepath.Join(home, "root.key")
	initKey := func(args ...string) *proc {
		cmd := exec.Command("/bin/sh", append([]string{"-c", `ulimit -l 64 && exec "$0" "$@"`, bin, "root-key", "init", "--root-key-file", keyFile}, args...)...)
		cmd.Env, cmd.Dir = baseEnv("HOME="+home), home
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: otherUID, Gid: otherUID}}
		return startCmd(t, cmd)
	}
	p = initKey("--mlock")
	code, stderr := p.wait(exitTimeout), p.stderr.String()
	if code == 0 || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "kms: --mlock: cannot lock this process's memory: mlockall") ||
		!strings.Contains(stderr, "ulimit -l unlimited") || !strings.Contains(stderr, "CAP_IPC_LOCK") {
		t.Errorf("kms root-key init --mlock under ulimit -l 64: exit %d, stderr:\n%s\nwant a refusal on one line naming the limit", code, stderr)
	}
	if _, err := os.Stat(keyFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("kms root-key init --mlock, refused, left %s: %v", keyFile, err)
	}
	if p := initKey(); p.wait(exitTimeout) != 0 {
		t.Errorf("kms root-key init under ulimit -l 64 without --mlock failed:\n%s", p.stderr)
	}
	if _, err := os.Stat(keyFile); err != nil {
		t.Errorf("kms root-key init without --mlock: %v", err)
	}
}

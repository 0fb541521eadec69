package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/openkms/kms/internal/backup"
)

// kms backup of a data directory takes its snapshot from whatever answers
// on the directory's backup.sock. Another user who could put a socket
// there (in a directory others may write, say, where the stopped store
// would itself be refused) must not hand out a backup of their own store
// as this one's: kms backup answers only to a process of the directory's
// owner or of the user running it, by the user id the kernel reports for
// the listening process. Root backing up the directory of a server run by
// the directory's owner goes on working.
func TestBackupSocketPeer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running a server as another user needs root")
	}
	// Another user's server, on a data directory of theirs: a copy of
	// the binary they may run, in directories they may go through.
	binDir, err := os.MkdirTemp("", "kms-bin-")
	noErr(t, err, "temp dir")
	t.Cleanup(func() { os.RemoveAll(binDir) })
	noErr(t, os.Chmod(binDir, 0o755), "chmod")
	theirBin := filepath.Join(binDir, "kms")
	copyInto(t, kmsBin, theirBin)
	noErr(t, os.Chmod(theirBin, 0o755), "chmod")
	theirs, err := os.MkdirTemp("", "kms-theirs-")
	noErr(t, err, "temp dir")
	t.Cleanup(func() { os.RemoveAll(theirs) })
	noErr(t, os.Chown(theirs, otherUID, otherUID), "chown")
	cmd := exec.Command(theirBin, "server", "--dev", "--listen", "127.0.0.1:0", "--data-dir", theirs)
	cmd.Env, cmd.Dir = baseEnv("HOME="+theirs), theirs
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: otherUID, Gid: otherUID}}
	startCmd(t, cmd).waitOutput(listeningRE, startTimeout)

	// Root may back up the server of the directory's owner.
	out := t.TempDir()
	if code, stdout, stderr := runToExit(t, baseEnv(), "backup", "-o", filepath.Join(out, "theirs.kmsbak"), "--data-dir", theirs); code != 0 {
		t.Fatalf("kms backup of the server of the directory's owner: exit %d\n%s%s", code, stdout, stderr)
	}

	// Root's data directory, stopped, which others may write: their
	// server's socket is moved in (a socket keeps its listener across a
	// rename).
	dir := filepath.Join(t.TempDir(), "kms-data")
	s := startDev(t, dir)
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("the dev server exited %d on SIGTERM", code)
	}
	noErr(t, os.Chmod(dir, 0o777), "chmod")
	sock := filepath.Join(dir, backup.SocketName)
	noErr(t, os.Rename(filepath.Join(theirs, backup.SocketName), sock), "move the socket")
	file := filepath.Join(out, "ours.kmsbak")
	code, stdout, stderr := runToExit(t, baseEnv(), "backup", "-o", file, "--data-dir", dir)
	want := "backup socket " + sock + " is held by a process of user 65534, neither the data directory's owner (user 0) nor the user running kms (0)"
	if code == 0 || !strings.Contains(stderr, want) {
		t.Fatalf("kms backup through another user's socket: exit %d, stdout:\n%s\nstderr:\n%s\nwant a refusal saying %q", code, stdout, stderr, want)
	}
	if entries, err := os.ReadDir(out); err != nil || len(entries) != 1 {
		t.Errorf("the refused backup left files beside the first: %v, %v", entries, err)
	}
}

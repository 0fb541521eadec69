package main_test

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/openkms/kms/internal/backup"
)

// kms backup of a data directory takes its snapshot from whatever answers
// on the directory's backup.sock. Another user who could put a socket
// there (by winning the name from a server that is starting, or in a
// directory others may write, where the stopped store would itself be
// refused) must not hand out a backup of their own store as this one's:
// kms backup takes a snapshot only from a process of the directory's owner
// or of the user running it, by the user id the kernel reports for the
// listening process. Root backing up the directory of a server run by
// the directory's owner goes on working; a data directory that others may
// write, or that is reached through one, is refused as the server refuses
// it.
func TestBackupSocketPeer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running a server as another user needs root")
	}
	// Another user's server, on a data directory of theirs: a copy of
	// the binary they may run, in directories they may go through.
	theirs, err := os.MkdirTemp("", "kms-theirs-")
	noErr(t, err, "temp dir")
	t.Cleanup(func() { os.RemoveAll(theirs) }) // if it is not moved
	noErr(t, os.Chown(theirs, otherUID, otherUID), "chown")
	startDevAs(t, otherUID, otherUID, theirs, theirs)

	// Root may back up the server of the directory's owner.
	out := t.TempDir()
	if code, stdout, stderr := runToExit(t, baseEnv(), "backup", "-o", filepath.Join(out, "theirs.kmsbak"), "--data-dir", theirs); code != 0 {
		t.Fatalf("kms backup of the server of the directory's owner: exit %d\n%s%s", code, stdout, stderr)
	}

	// Root's data directory, stopped, where their server's socket is
	// moved (a socket keeps its listener across a rename), as by someone
	// who won the name from a server that was starting.
	dir := filepath.Join(t.TempDir(), "kms-data")
	s := startDev(t, dir)
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("the dev server exited %d on SIGTERM", code)
	}
	theirSock, sock := filepath.Join(theirs, backup.SocketName), filepath.Join(dir, backup.SocketName)
	refused := func(t *testing.T, dir, want string) {
		t.Helper()
		file := filepath.Join(out, "refused.kmsbak")
		code, stdout, stderr := runToExit(t, baseEnv(), "backup", "-o", file, "--data-dir", dir)
		if code == 0 || !strings.Contains(stderr, want) {
			t.Errorf("kms backup: exit %d, stdout:\n%s\nstderr:\n%s\nwant a refusal saying %q", code, stdout, stderr, want)
		}
		if entries, err := os.ReadDir(out); err != nil || len(entries) != 1 {
			t.Errorf("the refused backup left files beside the first: %v, %v", entries, err)
		}
	}
	noErr(t, os.Rename(theirSock, sock), "move the socket")
	refused(t, dir, "backup socket "+sock+" is held by a process of user 65534, neither the data directory's owner (user 0) nor the user running kms (0)")

	// The same directory, which others may write: no server of kms runs
	// on it.
	noErr(t, os.Chmod(dir, 0o777), "chmod")
	refused(t, dir, "data directory "+dir+" has mode 0777")

	// Their data directory, with their server's socket, put in place of
	// a directory in a parent others may write.
	noErr(t, os.Rename(sock, theirSock), "move the socket back")
	shared := filepath.Join(t.TempDir(), "shared")
	noErr(t, os.Mkdir(shared, 0o700), "mkdir")
	noErr(t, os.Chmod(shared, 0o777), "chmod")
	swapped := filepath.Join(shared, "kms-data")
	noErr(t, os.Rename(theirs, swapped), "move their data directory")
	refused(t, swapped, "data directory "+swapped+": "+shared+", a directory it is reached through, has mode 0777")
}

// The server of a user with a private group (Debian's, with a umask of
// 002) serves on a data directory in a directory of theirs that the group
// may write (0775), as the private group rule of "The data directory"
// says. Root may back up that server as it may any of the directory's
// owner: the rules hold with the owner trusted as the server's user, its
// private group too. kms backup refused it before, naming the owner's own
// directory as one others may write.
func TestBackupSocketOwnersPrivateGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running a server as another user needs root")
	}
	var owner *user.User
	for _, name := range []string{"daemon", "bin", "sys"} {
		u, err := user.Lookup(name)
		if err != nil || u.Uid == "0" {
			continue
		}
		if g, err := user.LookupGroupId(u.Gid); err == nil && g.Name == u.Username {
			owner = u
			break
		}
	}
	if owner == nil {
		t.Skip("no user of this system has a private group")
	}
	uid, _ := strconv.Atoi(owner.Uid)
	gid, _ := strconv.Atoi(owner.Gid)
	home, err := os.MkdirTemp("", "kms-home-")
	noErr(t, err, "temp dir")
	t.Cleanup(func() { os.RemoveAll(home) })
	noErr(t, os.Chmod(home, 0o775), "chmod")
	noErr(t, os.Chown(home, uid, gid), "chown")
	dir := filepath.Join(home, "kms-data")
	startDevAs(t, uid, gid, home, dir)

	out := filepath.Join(t.TempDir(), "theirs.kmsbak")
	if code, stdout, stderr := runToExit(t, baseEnv(), "backup", "-o", out, "--data-dir", dir); code != 0 {
		t.Fatalf("kms backup of the server of %s, in a directory of theirs their private group may write: exit %d\n%s%s", owner.Username, code, stdout, stderr)
	}

	// Another group than the owner's private group may not write it.
	noErr(t, os.Chown(home, uid, otherUID), "chown")
	code, stdout, stderr := runToExit(t, baseEnv(), "backup", "-o", filepath.Join(t.TempDir(), "refused.kmsbak"), "--data-dir", dir)
	if want := "data directory " + dir + ": " + home + ", a directory it is reached through, has mode 0775"; code == 0 || !strings.Contains(stderr, want) {
		t.Errorf("kms backup through a directory another group may write: exit %d, stdout:\n%s\nstderr:\n%s\nwant a refusal saying %q", code, stdout, stderr, want)
	}
}

// startDevAs runs `kms server --dev` on the data directory dir as the
// user uid and group gid, with home as its home and working directory,
// from a copy of the binary they may run (binaryForOthers). It returns the
// running command and the submatches of its listening line (listeningRE).
func startDevAs(t *testing.T, uid, gid int, home, dir string) (*exec.Cmd, []string) {
	t.Helper()
	cmd := exec.Command(binaryForOthers(t), "server", "--dev", "--listen", "127.0.0.1:0", "--data-dir", dir)
	cmd.Env, cmd.Dir = baseEnv("HOME="+home), home
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	return cmd, startCmd(t, cmd).waitOutput(listeningRE, startTimeout)
}

// binaryForOthers is a copy of the kms binary that other users may run, in
// a directory they may go through.
func binaryForOthers(t *testing.T) string {
	t.Helper()
	binDir, err := os.MkdirTemp("", "kms-bin-")
	noErr(t, err, "temp dir")
	t.Cleanup(func() { os.RemoveAll(binDir) })
	noErr(t, os.Chmod(binDir, 0o755), "chmod")
	bin := filepath.Join(binDir, "kms")
	copyInto(t, kmsBin, bin)
	noErr(t, os.Chmod(bin, 0o755), "chmod")
	return bin
}

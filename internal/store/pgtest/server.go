package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// sharedServer starts the private server on first use and returns the DSN
// of its postgres database. A test binary starts at most one server: it
// takes a second or two, and each test gets a database of its own anyway.
var sharedServer = sync.OnceValues(startServer)

// serverScript runs initdb and postgres in a temporary directory and
// removes the directory once postgres has exited. SIGTERM (sent by the
// kernel when the test binary exits) makes it stop postgres. On a failure
// while nobody asked it to stop, it copies the server log to stderr for
// the error message.
//
// The server runs with fsync=off: its data directory does not outlive the
// test binary, and what a killed server or client wrote is kept by the
// operating system all the same; only the machine's crash, which the
// directory does not survive anyway, would need the flushes. Every
// commit and CREATE DATABASE would otherwise wait for the disk.
//
// Arguments: the directory, the directory of the binaries, the port.
const serverScript = `
dir=$1 bin=$2 port=$3
pid= stopping= status=0
trap 'stopping=1; [ -z "$pid" ] || kill -INT "$pid" 2>/dev/null' HUP INT TERM
if "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 --locale=C >"$dir/log" 2>&1; then
	if [ -z "$stopping" ]; then
		"$bin/postgres" -D "$dir/data" -k "$dir" -p "$port" \
			-c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300 >>"$dir/log" 2>&1 &
		pid=$!
		[ -z "$stopping" ] || kill -INT "$pid"
		# A trapped signal interrupts wait: wait again until postgres is gone.
		while :; do
			wait "$pid"; status=$?
			kill -0 "$pid" 2>/dev/null || break
		done
	fi
else
	status=$?
fi
[ -n "$stopping" ] || cat "$dir/log" >&2
rm -rf "$dir"
exit "$status"
`

func startServer() (dsn string, err error) {
	bin, err := findBinaries()
	if err != nil {
		return "", err
	}
	// A free port can be taken between our probe and postgres' bind: retry.
	for range 3 {
		dsn, err = tryStart(bin)
		if err == nil || !strings.Contains(err.Error(), "could not bind") {
			break
		}
	}
	return dsn, err
}

// findBinaries returns the directory of initdb and postgres: PATH first,
// then the newest /usr/lib/postgresql/<version>/bin.
func findBinaries() (string, error) {
	if p, err := exec.LookPath("postgres"); err == nil {
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return majorVersion(a) - majorVersion(b) })
	for _, dir := range slices.Backward(dirs) {
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	return "", errors.New("postgres and initdb are not on PATH or in /usr/lib/postgresql/*/bin")
}

func majorVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func tryStart(bin string) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "kms-pgtest-")
	if err != nil {
		return "", err
	}
	cmd := exec.Command("/bin/sh", "-c", serverScript, "sh", dir, bin, strconv.Itoa(port))
	cmd.Dir = dir // the server's user may not be able to enter ours
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if os.Geteuid() == 0 {
		cred, err := unprivileged()
		if err == nil {
			err = os.Chown(dir, int(cred.Uid), int(cred.Gid))
		}
		if err != nil {
			os.RemoveAll(dir)
			return "", err
		}
		cmd.SysProcAttr.Credential = cred
	}
	exited, err := startLocked(cmd)
	if err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	dsn := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	if err := waitReady(dsn, exited); err != nil {
		cmd.Process.Signal(syscall.SIGTERM)
		<-exited
		return "", fmt.Errorf("%v\n%s", err, strings.TrimSpace(stderr.String()))
	}
	return dsn, nil
}

// startLocked starts cmd from an OS thread that lives as long as cmd:
// Pdeathsig fires when the thread that started the process ends, and the Go
// runtime may otherwise end threads before the process exits. exited is
// closed when cmd has exited.
func startLocked(cmd *exec.Cmd) (exited <-chan struct{}, err error) {
	started := make(chan error)
	done := make(chan struct{})
	go func() {
		// Never unlocked: the thread ends with this goroutine, after cmd.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		cmd.Wait()
		close(done)
	}()
	return done, <-started
}

// unprivileged returns the credentials of the user postgres, or else
// nobody, for running PostgreSQL as root.
func unprivileged() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		if u, err = user.Lookup("nobody"); err != nil {
			return nil, errors.New("running as root, and there is no user postgres or nobody to run PostgreSQL as")
		}
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls until the server accepts a connection, it exits, or 30
// seconds pass.
func waitReady(dsn string, exited <-chan struct{}) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, dsn)
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("PostgreSQL did not accept connections within 30 s: %v", err)
		}
		select {
		case <-exited:
			return errors.New("PostgreSQL exited while starting")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

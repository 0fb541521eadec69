package backup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openkms/kms/internal/datadir"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
)

// SocketName is the Unix socket in a data directory through which a
// running server hands out snapshots of its store: bbolt locks the file
// against every other process, so only the server can read it while it
// serves. The socket has mode 0600 in a directory of mode 0700, the same
// protection as kms.db itself, and the server answers only processes of
// its own user and root (Serve); kms backup takes a snapshot only from a
// process of the directory's owner or of its own user (checkServer).
const SocketName = "backup.sock"

// LiveSnapshot writes a backup file of st, the open store of a data
// directory dir, to w while a server writes to it: the records in one read
// transaction, then the audit trail files. The files are read after the
// transaction has begun and the audit log last, so that the trail holds at
// least every call whose records are in the snapshot and every record its
// digests sign; a line the server is still writing is left out. The
// transaction ends before w is written to (the records wait in a file in
// dir, unlinked), so that a slow reader holds no lock of the store. The
// file is authenticated under root, the store's root key.
//
// A panic in reading a record or a trail file is its error: the server
// that serves the snapshot (Serve, in a goroutine of its own) fails that
// backup and goes on.
func LiveSnapshot(ctx context.Context, st store.Store, root *keys.RootKey, dir string, w io.Writer) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("the snapshot failed: panic: %v", p)
		}
	}()
	return liveSnapshot(ctx, st, root, dir, w)
}

func liveSnapshot(ctx context.Context, st store.Store, root *keys.RootKey, dir string, w io.Writer) error {
	// The records go first to a file of their own, unlinked at once, and
	// reach w after the read transaction has ended: a client that reads
	// slowly, or not at all, must not hold the store, whose writers wait
	// for every read transaction when the file grows.
	spool, err := os.CreateTemp(dir, ".backup-spool-*")
	if err != nil {
		return err
	}
	os.Remove(spool.Name())
	defer spool.Close()
	sb := bufio.NewWriterSize(spool, 1<<20)
	out := &switchWriter{w: sb}
	// Taken before the read transaction begins: the snapshot holds at
	// least every change made before the time it records.
	enc := NewEncoder(out, root.BackupKey(), time.Now())
	rc := newRecordCheck(root)
	err = st.View(ctx, func(tx store.Tx) error {
		if enc.Records > 0 {
			return errors.New("the store asked to retry a read transaction during a backup")
		}
		return tx.Scan(nil, nil, func(k, v []byte) (bool, error) {
			if err := rc.add(k, v); err != nil {
				return false, unrestorable(err)
			}
			return true, enc.Record(k, v)
		})
	})
	if err != nil {
		return err
	}
	if _, err := rc.result(); err != nil {
		return unrestorable(err)
	}
	if err := sb.Flush(); err != nil {
		return err
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	if _, err := io.Copy(bw, spool); err != nil {
		return err
	}
	out.w = bw
	if err := streamAuditFiles(ctx, dir, true, enc); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// switchWriter writes to w, which may be changed between writes.
type switchWriter struct{ w io.Writer }

func (s *switchWriter) Write(p []byte) (int, error) { return s.w.Write(p) }

// Serve answers each connection on ln with a backup file written by
// snapshot, until ln is closed. Only a process of the server's own user,
// or of root, is answered: the socket's mode says so too, but it is set
// just after the socket is made, and a directory shared with others (a
// data directory made by hand with mode 0755) would leave a moment in
// which anyone could connect.
func Serve(ln net.Listener, snapshot func(w io.Writer) error, logf func(msg string, args ...any)) {
	euid := uint32(os.Geteuid())
	serve(ln, snapshot, logf, func(uid uint32) bool { return uid == euid || uid == 0 })
}

// serve is Serve, answering a connection only if allow says yes to the
// user id of the process at its other end.
func serve(ln net.Listener, snapshot func(w io.Writer) error, logf func(msg string, args ...any), allow func(uid uint32) bool) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		uid, err := peerUID(c)
		if err != nil || !allow(uid) {
			logf("backup socket: refused a connection", "uid", uid, "err", err)
			c.Close()
			continue
		}
		go func() {
			defer c.Close()
			c.SetWriteDeadline(time.Now().Add(time.Hour))
			if err := snapshot(c); err != nil {
				logf("backup snapshot failed", "err", err)
			}
		}()
	}
}

// Listen opens the backup socket of the data directory dir, replacing a
// stale one left by a killed server (the caller holds the store's lock, so
// no other server is listening on it).
func Listen(dir string) (net.Listener, error) {
	path := filepath.Join(dir, SocketName)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// fromServer asks the server running on the data directory dir for a
// snapshot and copies it to w. It reports false, with no error, when no
// server answers on the socket. A process at the other end that is not
// of the directory's owner or the running user is refused (checkServer).
func fromServer(ctx context.Context, dir string, w io.Writer) (bool, error) {
	var d net.Dialer
	path := filepath.Join(dir, SocketName)
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return false, ctx.Err() // interrupted, or no server: nil
	}
	defer c.Close()
	if err := checkServer(c, dir, path); err != nil {
		return true, err
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	n, err := io.Copy(w, c)
	if err != nil {
		if ctx.Err() != nil {
			return true, ctx.Err()
		}
		return true, fmt.Errorf("read the snapshot from the server: %w", err)
	}
	if n == 0 && ctx.Err() == nil {
		// It writes nothing before its read transaction has ended well.
		return true, errors.New("the server sent no snapshot: its log says why")
	}
	return true, ctx.Err()
}

// checkServer refuses c, a connection to the backup socket path of the
// data directory dir, unless dir passes datadir.CheckServed and the
// process that listens at its other end runs as the user who owns dir (the
// server's user: the server refuses a directory of anyone else) or as the
// running user. Whoever else could
// put a socket under that name, in a directory they may write or by
// winning the name from a server that is starting, could hand out a
// backup of a store of their making as this one's.
func checkServer(c net.Conn, dir, path string) error {
	owner, err := datadir.CheckServed(dir)
	if err != nil {
		return err
	}
	uid, err := peerUID(c)
	if err != nil {
		return fmt.Errorf("backup socket %s: who listens on it: %w", path, err)
	}
	if int(uid) != owner && int(uid) != os.Geteuid() {
		return fmt.Errorf("backup socket %s is held by a process of user %d, neither the data directory's owner (user %d) nor the user running kms (%d): another user may have put it there to hand out a store of theirs as this one. Find out who (ss -xp), remove the socket and back up again", path, uid, owner, os.Geteuid())
	}
	return nil
}

// peerUID is the user id of the process at the other end of c, a Unix
// socket connection, as the kernel saw it (SO_PEERCRED): for a connection
// a listener accepted, the process that connected; for one that dialed,
// the process that made the listening socket, when it listened.
func peerUID(c net.Conn) (uint32, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return 0, fmt.Errorf("a %T, not a Unix socket connection", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if credErr != nil {
		return 0, credErr
	}
	return cred.Uid, nil
}

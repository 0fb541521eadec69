package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/openkms/kms/internal/store"
)

// SocketName is the Unix socket in a data directory through which a
// running server hands out snapshots of its store: bbolt locks the file
// against every other process, so only the server can read it while it
// serves. The socket has mode 0600 in a directory of mode 0700, the same
// protection as kms.db itself.
const SocketName = "backup.sock"

// maxLiveBackup bounds what Take reads from a server's socket.
const maxLiveBackup = 1 << 34

// LiveSnapshot takes a snapshot of st, the open store of a data directory
// dir, while a server writes to it: the records in one read transaction,
// and during it the audit trail files. The files are read after the
// transaction has begun and the audit log last, so that the trail holds at
// least every call whose records are in the snapshot and every record its
// digests sign; a line the server is still writing is left out.
func LiveSnapshot(ctx context.Context, st store.Store, dir string) (*Snapshot, error) {
	s := &Snapshot{}
	err := st.View(ctx, func(tx store.Tx) error {
		s.Records = s.Records[:0]
		err := tx.Scan(nil, nil, func(k, v []byte) (bool, error) {
			s.Records = append(s.Records, Record{Key: bytes.Clone(k), Value: bytes.Clone(v)})
			return true, nil
		})
		if err != nil {
			return err
		}
		s.AuditFiles, err = readAuditFiles(dir, true)
		return err
	})
	return s, err
}

// Serve answers each connection on ln with a backup file made by snapshot,
// until ln is closed.
func Serve(ln net.Listener, snapshot func() (*Snapshot, error), logf func(msg string, args ...any)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			s, err := snapshot()
			if err != nil {
				logf("backup snapshot failed", "err", err)
				return
			}
			c.SetWriteDeadline(time.Now().Add(10 * time.Minute))
			if _, err := c.Write(Marshal(s)); err != nil {
				logf("backup: writing the snapshot failed", "err", err)
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
// snapshot. It reports ok false, with no error, when no server answers on
// the socket.
func fromServer(ctx context.Context, dir string) (s *Snapshot, ok bool, err error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", filepath.Join(dir, SocketName))
	if err != nil {
		return nil, false, nil
	}
	defer c.Close()
	data, err := io.ReadAll(io.LimitReader(c, maxLiveBackup))
	if err != nil {
		return nil, true, fmt.Errorf("read the snapshot from the server: %w", err)
	}
	s, err = Parse(data)
	if err != nil {
		return nil, true, fmt.Errorf("the snapshot from the server: %w", err)
	}
	return s, true, nil
}

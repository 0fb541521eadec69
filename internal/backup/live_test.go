package backup

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
)

// blockedWriter holds its first Write until release is closed.
type blockedWriter struct {
	started, release chan struct{}
	buf              bytes.Buffer
}

func (b *blockedWriter) Write(p []byte) (int, error) {
	if b.started != nil {
		close(b.started)
		b.started = nil
		<-b.release
	}
	return b.buf.Write(p)
}

// A client that reads a live snapshot slowly holds no read transaction
// of the store: the store can be closed (which waits for every reader, as
// a writer growing the file does) while the client has not read a byte,
// and the snapshot still completes whole.
func TestLiveSnapshotHoldsNoTransactionWhileWriting(t *testing.T) {
	dir := t.TempDir()
	st, err := boltstore.Open(filepath.Join(dir, "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	const records = 100
	root := testRoot(t)
	err = st.Update(context.Background(), func(tx store.Tx) error {
		// A key store from before its records were authenticated.
		if err := tx.Put(keys.RootCheckRecord, root.Seal(keys.RootCheckRecord, []byte("openkms root key check"))); err != nil {
			return err
		}
		for i := range records {
			if err := tx.Put(fmt.Appendf(nil, "key/%04d", i), bytes.Repeat([]byte("v"), 1000)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// More than the snapshot's write buffer, so that the client is
	// written to before the trail has been read.
	line := `{"line":"` + strings.Repeat("x", 1000) + `"}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "audit-digests.log"), []byte(strings.Repeat(line, 3000)), 0o600); err != nil {
		t.Fatal(err)
	}
	w := &blockedWriter{started: make(chan struct{}), release: make(chan struct{})}
	started := w.started
	done := make(chan error, 1)
	go func() { done <- LiveSnapshot(context.Background(), st, root, dir, w) }()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("LiveSnapshot wrote nothing: %v", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- st.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		close(w.release)
		t.Fatal("the store could not be closed while the client had not read: the snapshot holds its read transaction")
	}
	close(w.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c, err := Check(bufio.NewReader(&w.buf))
	if err != nil || c.Records != records+1 || c.AuditFiles != 1 {
		t.Fatalf("the snapshot: %+v, %v; want %d records and the digests", c, err, records+1)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".backup-spool") {
			t.Fatalf("the spool %s was left in the data directory", e.Name())
		}
	}
}

// An interrupted backup (Ctrl-C on kms backup) stops while the server's
// snapshot has not come, and leaves no file.
func TestWriteStopsWhenInterrupted(t *testing.T) {
	dir := t.TempDir()
	ln, err := Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		close(accepted)
		c.Read(make([]byte, 1)) // a server that sends nothing
	}()
	ctx, cancel := context.WithCancel(context.Background())
	out := filepath.Join(t.TempDir(), "kms.kmsbak")
	done := make(chan error, 1)
	go func() { done <- Write(ctx, Where{DataDir: dir}, out, nil, new(bytes.Buffer)) }()
	<-accepted
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Fatalf("Write = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Write did not stop when interrupted")
	}
	if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 0 {
		t.Fatalf("an interrupted backup left %v", entries)
	}
}

// An offline backup stops reading a file when interrupted.
func TestStreamAuditFileStopsWhenInterrupted(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "audit-digests.log"), []byte("d1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := streamAuditFiles(ctx, dir, false, NewEncoder(new(bytes.Buffer), nil, time.Time{}))
	if err == nil || !strings.Contains(err.Error(), context.Canceled.Error()) {
		t.Fatalf("streamAuditFiles with a canceled context = %v", err)
	}
}

// The backup socket answers only the users Serve allows, by the user id
// the kernel reports for the connecting process: a refused client reads
// nothing, an allowed one the whole snapshot.
func TestServeChecksThePeersUser(t *testing.T) {
	dir, err := os.MkdirTemp("", "sock") // short: a socket path has ~107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ln, err := Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var seen atomic.Int64
	seen.Store(-1)
	var admit atomic.Bool
	logged := make(chan string, 4)
	go serve(ln, func(w io.Writer) error { _, err := io.WriteString(w, "the snapshot"); return err },
		func(msg string, _ ...any) { logged <- msg },
		func(uid uint32) bool { seen.Store(int64(uid)); return admit.Load() })
	read := func() string {
		t.Helper()
		c, err := net.Dial("unix", filepath.Join(dir, SocketName))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read(); got != "" {
		t.Fatalf("a refused client read %q", got)
	}
	if msg := <-logged; !strings.Contains(msg, "refused") {
		t.Fatalf("logged %q", msg)
	}
	if got := seen.Load(); got != int64(os.Geteuid()) {
		t.Fatalf("the peer's user id was read as %d, want %d", got, os.Geteuid())
	}
	admit.Store(true)
	if got := read(); got != "the snapshot" {
		t.Fatalf("an allowed client read %q", got)
	}
}

// panickingStore panics on every read, as a bug on a record it reads
// would.
type panickingStore struct{ store.Store }

func (panickingStore) View(context.Context, func(store.Tx) error) error { panic("injected fault") }

// TestLiveSnapshotPanicIsItsError: a snapshot that panics reading the
// store fails with an error, written nowhere, instead of ending the
// server that serves it (in a goroutine of the backup socket's, where
// nothing else recovers it).
func TestLiveSnapshotPanicIsItsError(t *testing.T) {
	var w bytes.Buffer
	err := LiveSnapshot(context.Background(), panickingStore{}, testRoot(t), t.TempDir(), &w)
	if err == nil || !strings.Contains(err.Error(), "injected fault") || w.Len() != 0 {
		t.Fatalf("a snapshot that panicked: %v, with %d bytes written", err, w.Len())
	}
}

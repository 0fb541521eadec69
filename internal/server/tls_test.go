package server

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// withinBound runs fn and fails the test if it has not returned within
// a generous bound; unblock then frees what fn waits on, so that the
// test ends.
func withinBound(t *testing.T, what string, fn func(), unblock func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		unblock()
		<-done
		t.Fatalf("%s blocked", what)
	}
}

// openFIFOWriter opens the FIFO at path for writing and closes it, which
// releases a reader waiting to open it.
func openFIFOWriter(path string) {
	if f, err := os.OpenFile(path, os.O_WRONLY, 0); err == nil {
		f.Close()
	}
}

// A certificate, key or client CA file replaced by a FIFO (or any file
// that is not a regular file) is refused by a reload, which keeps the
// pair in use and logs why, and never waits on it: the reload opened and
// read the FIFO, and waited for a writer forever. A server does not
// start on one either.
func TestTLSReloadRefusesAFileThatIsNotRegular(t *testing.T) {
	dir := t.TempDir()
	_, certFile, keyFile, err := ensureDevTLS(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	files := map[string]string{"certificate": certFile, "key": keyFile, "client CA": caFile}
	for _, which := range []string{"certificate", "key", "client CA"} {
		t.Run(which, func(t *testing.T) {
			var logs bytes.Buffer
			r, err := newCertReloader(certFile, keyFile, caFile, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			inUse, cas := r.cert, r.clientCAs
			path := files[which]
			saved, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				os.Remove(path)
				os.WriteFile(path, saved, 0o600)
			})
			if !r.changed() {
				t.Fatal("the FIFO in the file's place is not seen as a change")
			}
			withinBound(t, "a reload of a FIFO", r.reload, func() { openFIFOWriter(path) })
			if r.cert != inUse || r.clientCAs != cas {
				t.Error("a refused reload replaced the certificate or the client CAs in use")
			}
			if got := logs.String(); !strings.Contains(got, "keeping the one in use") || !strings.Contains(got, "not a regular file") {
				t.Errorf("the log of a refused reload: %q", got)
			}
			withinBound(t, "a start on a FIFO", func() {
				if _, err := newCertReloader(certFile, keyFile, caFile, slog.New(slog.NewTextHandler(&logs, nil))); err == nil || !strings.Contains(err.Error(), "not a regular file") {
					t.Errorf("a start on a FIFO: %v", err)
				}
			}, func() { openFIFOWriter(path) })
		})
	}
}

// A certificate, key or client CA file larger than 1 MiB is refused by
// a reload, which keeps the pair in use and logs why, and by a start:
// it was read whole into memory, at every reload, whatever its size.
// One of exactly 1 MiB is read.
func TestTLSReloadRefusesAFileTooLarge(t *testing.T) {
	dir := t.TempDir()
	_, certFile, keyFile, err := ensureDevTLS(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	files := map[string]string{"certificate": certFile, "key": keyFile, "client CA": caFile}
	for _, which := range []string{"certificate", "key", "client CA"} {
		t.Run(which, func(t *testing.T) {
			var logs bytes.Buffer
			r, err := newCertReloader(certFile, keyFile, caFile, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			inUse, cas := r.cert, r.clientCAs
			path := files[which]
			saved, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.WriteFile(path, saved, 0o600) })
			// The file's PEM followed by blank lines, which a PEM parser
			// skips: as good a file as before, but for its size.
			padded := func(size int) []byte {
				return append(bytes.Clone(saved), bytes.Repeat([]byte("\n"), size-len(saved))...)
			}
			if err := os.WriteFile(path, padded(maxTLSFileBytes+1), 0o600); err != nil {
				t.Fatal(err)
			}
			if !r.changed() {
				t.Fatal("the larger file is not seen as a change")
			}
			r.reload()
			if r.cert != inUse || r.clientCAs != cas {
				t.Error("a refused reload replaced the certificate or the client CAs in use")
			}
			if got := logs.String(); !strings.Contains(got, "keeping the one in use") || !strings.Contains(got, "larger than 1 MiB") {
				t.Errorf("the log of a refused reload: %q", got)
			}
			if _, err := newCertReloader(certFile, keyFile, caFile, slog.New(slog.NewTextHandler(&logs, nil))); err == nil || !strings.Contains(err.Error(), path+" is larger than 1 MiB") {
				t.Errorf("a start on a file larger than 1 MiB: %v", err)
			}
			if err := os.WriteFile(path, padded(maxTLSFileBytes), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := newCertReloader(certFile, keyFile, caFile, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
				t.Errorf("a start on a file of 1 MiB: %v", err)
			}
		})
	}
}

package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// certReloader serves the certificate in a pair of PEM files, and the
// client CAs in a third when there is one, and reads them again when told
// to (SIGHUP) or when any of the files changes, so a renewed certificate,
// or a CA taken out of the file, applies to new connections without a
// restart and without dropping the open ones. Files that fail to load
// leave the previous ones in use.
type certReloader struct {
	certFile, keyFile string
	clientCAFile      string // "" when clients are not asked for certificates
	log               *slog.Logger

	mu        sync.RWMutex
	cert      *tls.Certificate
	clientCAs *x509.CertPool
	stamp     string // the files' sizes and modification times when loaded
}

func newCertReloader(certFile, keyFile, clientCAFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, clientCAFile: clientCAFile, log: log}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) stampNow() string {
	s := fileStamp(r.certFile) + "|" + fileStamp(r.keyFile)
	if r.clientCAFile != "" {
		s += "|" + fileStamp(r.clientCAFile)
	}
	return s
}

func (r *certReloader) load() error {
	stamp := r.stampNow()
	certPEM, err := readRegularFile(r.certFile)
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	keyPEM, err := readRegularFile(r.keyFile)
	if err != nil {
		return fmt.Errorf("TLS key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("TLS certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	var pool *x509.CertPool
	if r.clientCAFile != "" {
		pem, err := readRegularFile(r.clientCAFile)
		if err != nil {
			return fmt.Errorf("TLS client CA: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("TLS client CA %s: no PEM certificate in it", r.clientCAFile)
		}
	}
	r.mu.Lock()
	r.cert, r.clientCAs, r.stamp = &cert, pool, stamp
	r.mu.Unlock()
	return nil
}

// reload reads the pair again, keeping the current one if that fails.
func (r *certReloader) reload() {
	if err := r.load(); err != nil {
		r.log.Error("reloading the TLS certificate: keeping the one in use", "err", err)
		return
	}
	r.log.Info("TLS certificate loaded", "cert", r.certFile, "clientCA", r.clientCAFile)
}

// changed reports whether either file differs from when it was loaded.
func (r *certReloader) changed() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.stampNow() != r.stamp
}

func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.cert, nil
}

// watch reloads on every value from signals and whenever the files change
// (checked every interval), until done is closed.
func (r *certReloader) watch(signals <-chan struct{}, interval time.Duration, done <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-signals:
			r.reload()
		case <-t.C:
			if r.changed() {
				r.reload()
			}
		}
	}
}

// maxTLSFileBytes bounds a certificate, key or client CA file: a
// certificate chain or a key takes a few kilobytes, and a bundle of every
// public CA some 200 KiB.
const maxTLSFileBytes = 1 << 20

// readRegularFile reads the file at path, refusing one that is not a
// regular file: a FIFO put in a certificate's place would block the read
// until something writes to it, and a device may never end, where a
// reload must not wait. It opens the file without blocking (O_NONBLOCK,
// which a FIFO's open would otherwise wait on) and checks what it opened,
// so that nothing swapped in between a check and the open is read. It
// refuses a file of more than maxTLSFileBytes, reading no more than that
// of one that grows as it is read: the wrong file named, or one a
// mistaken script keeps writing to, would otherwise be read whole into
// memory at each reload.
func readRegularFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%v)", path, fi.Mode().Type())
	}
	if fi.Size() <= maxTLSFileBytes {
		b, err := io.ReadAll(io.LimitReader(f, maxTLSFileBytes+1))
		if err != nil {
			return nil, err
		}
		if len(b) <= maxTLSFileBytes {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%s is larger than 1 MiB, which no certificate, key or CA file takes", path)
}

func fileStamp(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "missing"
	}
	return fmt.Sprintf("%d@%d", fi.Size(), fi.ModTime().UnixNano())
}

// tlsConfig is the server's TLS configuration: TLS 1.2 or later, the
// reloader's certificate, and when the reloader has client CAs, client
// certificates required and verified against those it holds at each
// handshake (in addition to SigV4, not instead).
func tlsConfig(r *certReloader) *tls.Config {
	c := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.getCertificate,
	}
	if r.clientCAFile != "" {
		r.mu.RLock()
		c.ClientCAs = r.clientCAs
		r.mu.RUnlock()
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cc := c.Clone()
			cc.GetConfigForClient = nil
			r.mu.RLock()
			cc.ClientCAs = r.clientCAs
			r.mu.RUnlock()
			return cc, nil
		}
	}
	return c
}

// errPlainHTTP refuses to serve plain HTTP beyond this machine.
var errPlainHTTP = errors.New("refusing to serve plain HTTP on a non-loopback address: " +
	"Encrypt and GenerateDataKey answer with plaintext, so give --tls-cert and --tls-key " +
	"(or put a TLS proxy in front and pass --insecure-http)")

// isLoopback reports whether a listen address (host:port) only accepts
// connections from this machine.
func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openkms/kms/internal/atomicfile"
)

// The files of a --dev --tls server, in its data directory.
const (
	devCAFile      = "ca.pem"      // the local CA's certificate: AWS_CA_BUNDLE
	devCertFile    = "tls.pem"     // the server's certificate
	devCertKeyFile = "tls-key.pem" // its private key
)

// ensureDevTLS makes, once, a local CA and a certificate it signs for
// localhost, 127.0.0.1 and ::1, in dir; a pair already there is kept while
// it is valid for more than a day. It returns the paths of the CA
// certificate, the server certificate and its key. The CA's private key is
// not kept: nothing else is ever signed with it.
func ensureDevTLS(dir string, now time.Time) (ca, cert, key string, err error) {
	ca, cert, key = filepath.Join(dir, devCAFile), filepath.Join(dir, devCertFile), filepath.Join(dir, devCertKeyFile)
	// The nodes of a dev cluster share the data directory and may start
	// together: one makes the files while the others wait, then finds
	// them valid. Unlocked, their writes could interleave and leave one
	// node's key beside another's certificate and a third's CA.
	unlock, err := lockDir(dir)
	if err != nil {
		return "", "", "", fmt.Errorf("making the dev TLS certificate: %w", err)
	}
	defer unlock()
	if devTLSValid(ca, cert, key, now) {
		return ca, cert, key, nil
	}
	caPEM, certPEM, keyPEM, err := makeDevTLS(now)
	if err != nil {
		return "", "", "", fmt.Errorf("making the dev TLS certificate: %w", err)
	}
	// The key first, the CA last: a start cut short leaves a pair that
	// fails devTLSValid, and is made again.
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{key, keyPEM, 0o600}, {cert, certPEM, 0o644}, {ca, caPEM, 0o644}} {
		if err := atomicfile.Write(f.path, f.data, f.mode); err != nil {
			return "", "", "", err
		}
	}
	return ca, cert, key, nil
}

// lockDir takes an exclusive flock(2) of the directory dir, waiting for
// it, and returns the function that releases it. It excludes only others
// that lock dir so, in this process or another.
func lockDir(dir string) (unlock func(), err error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "flock", Path: dir, Err: err}
	}
	return func() { unix.Close(fd) }, nil // closing it releases the lock
}

// devTLSValid reports whether the files hold a certificate for the dev
// names, signed by the CA in caFile and with its key, valid for a day more.
func devTLSValid(caFile, certFile, keyFile string, now time.Time) bool {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return false
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return false
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return false
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return false
	}
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, CurrentTime: now.Add(24 * time.Hour)}); err != nil {
			return false
		}
	}
	return true
}

// makeDevTLS returns a new CA certificate, and a server certificate it
// signed with the server's private key, all PEM.
func makeDevTLS(now time.Time) (caPEM, certPEM, keyPEM []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "kms dev CA", Organization: []string{"kms --dev"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "localhost", Organization: []string{"kms --dev"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(errors.New("crypto/rand failed: " + err.Error())) // never, since Go 1.24
	}
	return n
}

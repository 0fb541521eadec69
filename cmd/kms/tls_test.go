package main_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/openkms/kms/internal/testsupport"
)

// testCA is a CA made for one test, which signs server and client
// certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key signed by ca; server
// certificates are for 127.0.0.1 and localhost.
func (ca *testCA) issue(t *testing.T, cn string, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames, tmpl.IPAddresses = []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// tlsClient is an HTTP client trusting caPEM, presenting cert if given.
func tlsClient(caPEM []byte, cert *tls.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	c := &tls.Config{RootCAs: pool}
	if cert != nil {
		c.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: c}}
}

// kmsOver is an SDK client of s that sends its requests with hc.
func kmsOver(t *testing.T, s *server, hc *http.Client) *kms.Client {
	id, secret := devCredentials(t, s.Dir)
	return kms.New(kms.Options{
		Region: s.Region, BaseEndpoint: aws.String(s.URL), HTTPClient: testsupport.SDKHTTPClient(hc), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""),
	})
}

// peerSerial is the serial number of the certificate a new TLS connection
// to s is shown.
func peerSerial(t *testing.T, s *server) string {
	t.Helper()
	c, err := tls.Dial("tcp", strings.TrimPrefix(s.URL, "https://"), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestDevTLS: `kms server --dev --tls` makes a CA and a certificate, prints
// AWS_CA_BUNDLE with the other exports, and the aws CLI, the SDK and curl
// all work over https with no other step.
func TestDevTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, dir, baseEnv(), "--dev", "--tls")
	if !strings.HasPrefix(s.URL, "https://127.0.0.1:") {
		t.Fatalf("a --dev --tls server listens on %s", s.URL)
	}
	ca := filepath.Join(dir, "ca.pem")
	if !strings.Contains(s.stdout.String(), "AWS_CA_BUNDLE="+ca) {
		t.Errorf("the exports do not name the CA bundle:\n%s", s.stdout)
	}
	for _, f := range []string{"ca.pem", "tls.pem", "tls-key.pem"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "tls-key.pem" && fi.Mode().Perm() != 0o600 {
			t.Errorf("tls-key.pem has mode %v, want 0600", fi.Mode().Perm())
		}
	}
	caPEM, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}

	// The aws CLI, with AWS_CA_BUNDLE as the server printed it.
	a := newAWSCLI(t, requireAWS(t), s)
	a.env = append(a.env, "AWS_CA_BUNDLE="+ca)
	keyID, account, _ := strings.Cut(strings.TrimSpace(string(a.ok("create-key", "--query", "KeyMetadata.[KeyId,AWSAccountId]", "--output", "text"))), "\t")
	// The common policy that denies every call not made over TLS lets
	// these calls in: aws:SecureTransport is true over https.
	a.ok("put-key-policy", "--key-id", keyID, "--policy-name", "default", "--policy", `{"Version":"2012-10-17","Statement":[
	  {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::`+account+`:root"},"Action":"kms:*","Resource":"*"},
	  {"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`)
	ct := a.blob("CiphertextBlob", "encrypt", "--key-id", keyID, "--plaintext", "aGVsbG8=")
	if len(ct) == 0 {
		t.Fatal("no ciphertext over https")
	}
	// Without the bundle the CLI refuses the certificate (at once: it
	// would otherwise try five times, backing off for seconds).
	a.env = append(a.env, "AWS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt", "AWS_MAX_ATTEMPTS=1")
	if _, errb, code := a.run("list-keys"); code == 0 || !bytes.Contains(bytes.ToLower(errb), []byte("certificate")) {
		t.Errorf("the aws CLI without the dev CA: exit %d, stderr %s", code, errb)
	}

	// kms encrypt and decrypt, with the exports as printed.
	id, secret := devCredentials(t, dir)
	env := append(baseEnv(), "AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_REGION=us-east-1",
		"AWS_ENDPOINT_URL="+s.URL, "AWS_CA_BUNDLE="+ca, "HOME="+t.TempDir(), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	files := t.TempDir()
	writeFile(t, filepath.Join(files, "plain"), []byte("over https"))
	for _, args := range [][]string{
		{"encrypt", "--key", keyID, "-o", filepath.Join(files, "enc"), filepath.Join(files, "plain")},
		{"decrypt", "-o", filepath.Join(files, "dec"), filepath.Join(files, "enc")},
	} {
		if code, _, stderr := runToExit(t, env, args...); code != 0 {
			t.Fatalf("kms %s over https: exit %d\n%s", args[0], code, stderr)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(files, "dec")); string(got) != "over https" {
		t.Errorf("kms decrypt over https gave %q", got)
	}

	// aws-sdk-go-v2 with a CA pool of its own.
	c := kmsOver(t, s, tlsClient(caPEM, nil))
	if _, err := c.DescribeKey(testCtx(t), &kms.DescribeKeyInput{KeyId: aws.String(keyID)}); err != nil {
		t.Fatalf("DescribeKey over https: %v", err)
	}

	// curl for the operator's endpoints.
	curl := requireTool(t, "curl")
	out, err := exec.Command(curl, "-sS", "--cacert", ca, s.URL+"/readyz").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"status":"ready"`) {
		t.Errorf("curl /readyz: %v %s", err, out)
	}

	// Plain HTTP to the same port is not served.
	resp, err := http.Get("http://" + strings.TrimPrefix(s.URL, "https://") + "/healthz")
	if err == nil {
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP was answered on the TLS port")
		}
		resp.Body.Close()
	}

	// A restart keeps the CA clients already trust.
	s.stop(syscall.SIGTERM)
	s2 := startServer(t, dir, baseEnv(), "--dev", "--tls")
	caPEM2, _ := os.ReadFile(ca)
	if !bytes.Equal(caPEM, caPEM2) {
		t.Error("a restart made a new CA")
	}
	if _, err := kmsOver(t, s2, tlsClient(caPEM, nil)).ListKeys(testCtx(t), &kms.ListKeysInput{}); err != nil {
		t.Fatalf("ListKeys after a restart: %v", err)
	}
}

// requireTool returns the path of a command the test needs: missing, it
// fails in CI and skips elsewhere.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is needed for this test: %v", name, err)
		}
		t.Skipf("no %s on PATH", name)
	}
	return p
}

// TestTLSCertificateReload: a new certificate is served after SIGHUP, and
// after the files change without a signal, while a connection opened
// before keeps working.
func TestTLSCertificateReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newTestCA(t, "reload CA")
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	c1, k1 := ca.issue(t, "first", true)
	writeFile(t, certFile, c1)
	writeFile(t, keyFile, k1)
	s := startServer(t, dir, baseEnv(), "--dev", "--tls-cert", certFile, "--tls-key", keyFile)
	hc := tlsClient(ca.pem, nil)
	client := kmsOver(t, s, hc)
	if _, err := client.ListKeys(testCtx(t), &kms.ListKeysInput{}); err != nil {
		t.Fatal(err)
	}
	first := peerSerial(t, s)

	// A broken pair is not taken: the server keeps the first.
	writeFile(t, certFile, []byte("not a certificate"))
	s.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, "the server to log the failed reload", func() error {
		return expect(strings.Contains(s.stderr.String(), "keeping the one in use"), "not logged yet")
	})
	if got := peerSerial(t, s); got != first {
		t.Fatalf("a broken certificate file replaced the one in use")
	}

	c2, k2 := ca.issue(t, "second", true)
	writeFile(t, keyFile, k2)
	writeFile(t, certFile, c2)
	s.cmd.Process.Signal(syscall.SIGHUP)
	var second string
	waitFor(t, 10*time.Second, "the second certificate after SIGHUP", func() error {
		second = peerSerial(t, s)
		return expect(second != first, "still the first certificate")
	})
	// The connection the client kept alive still works.
	if _, err := client.ListKeys(testCtx(t), &kms.ListKeysInput{}); err != nil {
		t.Fatalf("ListKeys on the connection opened before the reload: %v", err)
	}

	// Without a signal: the server notices the files changed.
	c3, k3 := ca.issue(t, "third", true)
	writeFile(t, keyFile, k3)
	writeFile(t, certFile, c3)
	waitFor(t, 15*time.Second, "the third certificate without a signal", func() error {
		return expect(peerSerial(t, s) != second, "still the second certificate")
	})
	if _, err := kmsOver(t, s, tlsClient(ca.pem, nil)).ListKeys(testCtx(t), &kms.ListKeysInput{}); err != nil {
		t.Fatalf("ListKeys with the third certificate: %v", err)
	}
}

// expect is nil if ok, else an error saying why not.
func expect(ok bool, why string) error {
	if ok {
		return nil
	}
	return errors.New(why)
}

// TestMutualTLS: with --tls-client-ca, a client without a certificate from
// that CA cannot connect; one with it still has to sign its requests.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	serverCA, clientCA, otherCA := newTestCA(t, "server CA"), newTestCA(t, "client CA"), newTestCA(t, "other CA")
	sc, sk := serverCA.issue(t, "server", true)
	writeFile(t, filepath.Join(dir, "cert.pem"), sc)
	writeFile(t, filepath.Join(dir, "key.pem"), sk)
	writeFile(t, filepath.Join(dir, "client-ca.pem"), clientCA.pem)
	// Even /healthz needs a client certificate: wait for it with one.
	p := startProc(t, baseEnv(), "server", "--listen", "127.0.0.1:0", "--data-dir", dir, "--dev",
		"--tls-cert", filepath.Join(dir, "cert.pem"), "--tls-key", filepath.Join(dir, "key.pem"),
		"--tls-client-ca", filepath.Join(dir, "client-ca.pem"))
	m := p.waitOutput(listeningRE, startTimeout)
	s := &server{proc: p, URL: m[1], Region: m[2], Dir: m[3]}
	pair := func(ca *testCA) *tls.Certificate {
		c, k := ca.issue(t, "client", false)
		p, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return &p
	}
	good := tlsClient(serverCA.pem, pair(clientCA))
	waitFor(t, startTimeout, "/healthz with a client certificate", func() error {
		resp, err := good.Get(s.URL + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return expect(resp.StatusCode == http.StatusOK, resp.Status)
	})
	for name, cert := range map[string]*tls.Certificate{"no certificate": nil, "another CA's certificate": pair(otherCA)} {
		_, err := kmsOver(t, s, tlsClient(serverCA.pem, cert)).ListKeys(testCtx(t), &kms.ListKeysInput{})
		if err == nil {
			t.Errorf("%s: the call went through", name)
		}
	}
	if _, err := kmsOver(t, s, good).ListKeys(testCtx(t), &kms.ListKeysInput{}); err != nil {
		t.Fatalf("with a client certificate: %v", err)
	}
	// The certificate does not replace the signature.
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/", strings.NewReader("{}"))
	req.Header.Set("X-Amz-Target", "TrentService.ListKeys")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := good.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("an unsigned request with a client certificate: %d, want 400", resp.StatusCode)
	}

	// The CA file is read again on SIGHUP: a CA taken out of it is refused
	// by new connections, the one put in its place accepted.
	writeFile(t, filepath.Join(dir, "client-ca.pem"), otherCA.pem)
	s.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, "a certificate of the new client CA", func() error {
		_, err := kmsOver(t, s, tlsClient(serverCA.pem, pair(otherCA))).ListKeys(testCtx(t), &kms.ListKeysInput{})
		return err
	})
	if _, err := kmsOver(t, s, tlsClient(serverCA.pem, pair(clientCA))).ListKeys(testCtx(t), &kms.ListKeysInput{}); err == nil {
		t.Error("a certificate of the CA taken out of the file still connects")
	}
}

// TestPlainHTTPOffLoopback: without --dev, plain HTTP is refused on any
// address but loopback unless --insecure-http is given.
func TestPlainHTTPOffLoopback(t *testing.T) {
	t.Parallel()
	env := baseEnv("KMS_ROOT_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	for _, listen := range []string{"0.0.0.0:0", "[::]:0", ":0"} {
		code, _, stderr := runToExit(t, env, "server", "--listen", listen, "--data-dir", t.TempDir())
		if code == 0 || !strings.Contains(stderr, "refusing to serve plain HTTP on a non-loopback address") {
			t.Errorf("--listen %s: exit %d, stderr %q", listen, code, stderr)
		}
		if strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("--listen %s: the refusal is not one line:\n%s", listen, stderr)
		}
	}
	s := startServer(t, t.TempDir(), env, "--listen", "0.0.0.0:0", "--insecure-http")
	if !regexp.MustCompile(`^http://`).MatchString(s.URL) {
		t.Errorf("URL %s", s.URL)
	}
	// Loopback needs no flag.
	startServer(t, t.TempDir(), env)
}

// A start refused for its TLS files or its --listen address is refused
// before the data directory is made: a typo leaves no fresh root key,
// store or credentials behind for the corrected start to pick up.
func TestBadTLSOrListenMakesNoDataDirectory(t *testing.T) {
	t.Parallel()
	files := t.TempDir()
	ca := newTestCA(t, "startup CA")
	cert, key := ca.issue(t, "server", true)
	_, otherKey := ca.issue(t, "other", true)
	certFile, keyFile := filepath.Join(files, "cert.pem"), filepath.Join(files, "key.pem")
	otherKeyFile, badCA := filepath.Join(files, "other-key.pem"), filepath.Join(files, "ca.pem")
	writeFile(t, certFile, cert)
	writeFile(t, keyFile, key)
	writeFile(t, otherKeyFile, otherKey)
	writeFile(t, badCA, []byte("not a certificate"))
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, args := range [][]string{
		{"--tls-cert", filepath.Join(files, "missing.pem"), "--tls-key", keyFile},
		{"--tls-cert", certFile, "--tls-key", otherKeyFile},
		{"--tls-cert", certFile, "--tls-key", keyFile, "--tls-client-ca", badCA},
		{"--listen", busy.Addr().String()},
		{"--metrics-listen", busy.Addr().String()},
		{"--pprof-listen", busy.Addr().String()},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		p := startProc(t, baseEnv(), append([]string{"server", "--dev", "--listen", "127.0.0.1:0", "--data-dir", dir}, args...)...)
		if code := p.wait(exitTimeout); code == 0 {
			t.Errorf("%v: exit 0, stderr %q", args, p.stderr.String())
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%v: the refused start made the data directory (%v)", args, err)
		}
	}
}

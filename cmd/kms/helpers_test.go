package main_test

// Black-box harness for the kms binary: TestMain builds it once, and the
// helpers below start it as a subprocess, learn its URL from the line it
// prints, wait for /healthz, and stop it (SIGKILL, SIGTERM) on demand or at
// the end of the test.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"

	"github.com/openkms/kms/internal/testsupport"
)

// kmsBin is the binary under test, built by TestMain.
var kmsBin string

const (
	startTimeout = 10 * time.Second // until the server answers /healthz
	exitTimeout  = 15 * time.Second // until a stopped or refusing server has exited
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "kms-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	kmsBin = filepath.Join(dir, "kms")
	goTool, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "the go command is needed to build the binary under test:", err)
		return 1
	}
	build := exec.Command(goTool, "build", "-o", kmsBin, "github.com/openkms/kms/cmd/kms")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building kms:", err)
		return 1
	}
	if err := bypassVersionShims(filepath.Join(dir, "tools"), "aws", "python3"); err != nil {
		fmt.Fprintln(os.Stderr, "resolving the tools' version shims:", err)
		return 1
	}
	return m.Run()
}

// bypassVersionShims puts the programs that pyenv's shims for tools run
// first on PATH (as links in dir), when those tools are shims. A shim is a
// bash script that runs pyenv to find the program on every call: for the
// aws CLI, which the tests run hundreds of times, that is 0.45 s of CPU a
// call on top of the CLI's own 0.7 s. The program run is the one the shim
// would run (pyenv which resolves it the same way); a tool that is not a
// shim is left as it is.
func bypassVersionShims(dir string, tools ...string) error {
	pyenv, err := exec.LookPath("pyenv")
	if err != nil {
		return nil
	}
	var linked bool
	for _, tool := range tools {
		path, err := exec.LookPath(tool)
		if err != nil || filepath.Base(filepath.Dir(path)) != "shims" {
			continue
		}
		out, err := exec.Command(pyenv, "which", tool).Output()
		if err != nil {
			return fmt.Errorf("pyenv which %s: %w", tool, err)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		if err := os.Symlink(strings.TrimSpace(string(out)), filepath.Join(dir, tool)); err != nil {
			return err
		}
		linked = true
	}
	if !linked {
		return nil
	}
	return os.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// lineBuf collects what a process writes and lets a test wait until it has
// written something.
type lineBuf struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newLineBuf() *lineBuf { return &lineBuf{changed: make(chan struct{})} }

func (l *lineBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(p)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

func (l *lineBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lineBuf) snapshot() (string, chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String(), l.changed
}

// proc is a running kms process.
type proc struct {
	t       *testing.T
	cmd     *exec.Cmd
	stdout  *lineBuf
	stderr  *lineBuf
	done    chan struct{} // closed when the process has exited and its output is read
	waitErr error
}

// startProc starts kms with args and env. The process is killed at the end
// of the test if it is still running; if the test failed, its output is
// logged.
func startProc(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	return startProcIn(t, "", env, args...)
}

// startProcIn is startProc with working directory wd.
func startProcIn(t *testing.T, wd string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(kmsBin, args...)
	cmd.Env, cmd.Dir = env, wd
	return startCmd(t, cmd)
}

// startCmd is startProc of cmd, a command to run kms (its output is the
// proc's).
func startCmd(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	args := cmd.Args[1:]
	p := &proc{t: t, cmd: cmd, stdout: newLineBuf(), stderr: newLineBuf(), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start kms %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			select {
			case <-p.done:
			case <-time.After(exitTimeout):
				t.Errorf("kms (pid %d) did not exit after SIGKILL", cmd.Process.Pid)
			}
		}
		if t.Failed() {
			t.Logf("kms %s\n[stdout]\n%s[stderr]\n%s", strings.Join(args, " "), p.stdout, p.stderr)
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits (bounded) for the process to exit and returns its exit code,
// or -1 if it was ended by a signal.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("kms (pid %d) has not exited after %v\nstderr:\n%s", p.cmd.Process.Pid, timeout, p.stderr)
	}
	return p.cmd.ProcessState.ExitCode()
}

// kill ends the process with SIGKILL and waits for it to be gone.
func (p *proc) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Kill(); err != nil && !p.exited() {
		p.t.Fatalf("kill: %v", err)
	}
	p.wait(exitTimeout)
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		p.t.Fatalf("kms was not ended by SIGKILL: %v", p.cmd.ProcessState)
	}
}

// stop sends sig and returns the exit code once the process has exited.
func (p *proc) stop(sig os.Signal) int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
	return p.wait(exitTimeout)
}

// waitOutput waits until the process's stdout matches re, and returns the
// submatches. It fails the test if the process exits first or the timeout
// passes.
func (p *proc) waitOutput(re *regexp.Regexp, timeout time.Duration) []string {
	p.t.Helper()
	return p.waitFor(p.stdout, re, timeout)
}

// waitLog is waitOutput for the process's log, on stderr.
func (p *proc) waitLog(re *regexp.Regexp, timeout time.Duration) []string {
	p.t.Helper()
	return p.waitFor(p.stderr, re, timeout)
}

func (p *proc) waitFor(buf *lineBuf, re *regexp.Regexp, timeout time.Duration) []string {
	p.t.Helper()
	deadline := time.After(timeout)
	for {
		out, changed := buf.snapshot()
		if m := re.FindStringSubmatch(out); m != nil {
			return m
		}
		select {
		case <-changed:
		case <-p.done:
			out = buf.String()
			if m := re.FindStringSubmatch(out); m != nil {
				return m
			}
			p.t.Fatalf("kms exited (%v) before printing %q\nstdout:\n%s\nstderr:\n%s", p.waitErr, re, out, p.stderr)
		case <-deadline:
			p.t.Fatalf("kms printed no %q within %v\nstdout:\n%s\nstderr:\n%s", re, timeout, out, p.stderr)
		}
	}
}

// server is a kms server that has answered /healthz.
type server struct {
	*proc
	URL    string
	Dir    string
	Region string
}

// initCreds maps a data directory to the credentials file a server wrote
// for it with --init-credentials.
var initCreds sync.Map

var listeningRE = regexp.MustCompile(`kms server listening on (https?://\S+) \(region (\S+), data in (.*)\)\n`)

// baseEnv is this process's environment without anything that could steer
// the server or an AWS client: no KMS_ROOT_KEY, no AWS_* variables.
func baseEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "KMS_") || strings.HasPrefix(kv, "AWS_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// startServer runs `kms server --listen 127.0.0.1:0 --data-dir dir extra...`
// and waits until it serves.
func startServer(t *testing.T, dir string, env []string, extra ...string) *server {
	t.Helper()
	args := append([]string{"server", "--listen", "127.0.0.1:0", "--data-dir", dir}, extra...)
	for i, a := range extra {
		if a == "--init-credentials" && i+1 < len(extra) {
			initCreds.Store(dir, extra[i+1])
		}
	}
	s := startServerIn(t, "", env, args...)
	if s.Dir != dir {
		t.Errorf("listening line names data dir %q, want %q", s.Dir, dir)
	}
	return s
}

// startServerIn runs kms with args in working directory wd and waits until
// it serves.
func startServerIn(t *testing.T, wd string, env []string, args ...string) *server {
	t.Helper()
	p := startProcIn(t, wd, env, args...)
	m := p.waitOutput(listeningRE, startTimeout)
	s := &server{proc: p, URL: m[1], Region: m[2], Dir: m[3]}
	waitHealthy(t, s)
	return s
}

// startDev runs `kms server --dev` on dir.
func startDev(t *testing.T, dir string) *server {
	t.Helper()
	return startServer(t, dir, baseEnv(), "--dev")
}

// waitHealthy polls GET /healthz until it answers 200, for at most
// startTimeout.
func waitHealthy(t *testing.T, s *server) {
	t.Helper()
	// A connection of its own for each poll, closed after it: none is
	// left open to take one of the server's places from the test.
	tr := &http.Transport{DisableKeepAlives: true}
	if strings.HasPrefix(s.URL, "https://") {
		// Readiness only: the tests' own clients verify the certificate.
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	}
	client := &http.Client{Timeout: time.Second, Transport: tr}
	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		resp, err := client.Get(s.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if s.exited() {
			t.Fatalf("kms exited (%v) before /healthz answered\nstderr:\n%s", s.waitErr, s.stderr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s/healthz did not answer 200 within %v: %s", s.URL, startTimeout, last)
		}
		<-tick.C
	}
}

// runToExit runs kms with args and waits (bounded) for it to exit.
func runToExit(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	p := startProc(t, env, args...)
	code = p.wait(exitTimeout)
	return code, p.stdout.String(), p.stderr.String()
}

// readCredentials parses an AWS shared-credentials file into its profiles.
func readCredentials(t *testing.T, path string) map[string]map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("credentials: %v", err)
	}
	defer f.Close()
	profiles := map[string]map[string]string{}
	var cur map[string]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			name := strings.TrimSpace(line[1 : len(line)-1])
			cur = map[string]string{}
			profiles[name] = cur
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || cur == nil {
				t.Fatalf("credentials %s: unexpected line %q", path, line)
			}
			cur[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("credentials: %v", err)
	}
	return profiles
}

// devCredentials returns the default profile's access key id and secret
// from dir/credentials.
func devCredentials(t *testing.T, dir string) (id, secret string) {
	t.Helper()
	path := filepath.Join(dir, "credentials")
	p, ok := readCredentials(t, path)["default"]
	if !ok {
		t.Fatalf("%s has no [default] profile", path)
	}
	id, secret = p["aws_access_key_id"], p["aws_secret_access_key"]
	if id == "" || secret == "" {
		t.Fatalf("%s: [default] lacks aws_access_key_id or aws_secret_access_key: %v", path, p)
	}
	return id, secret
}

// client returns an AWS SDK KMS client for s, signing with the dev
// credentials when the data dir has them.
func (s *server) client(t *testing.T) *kms.Client {
	t.Helper()
	id, secret := "AKIAEXAMPLEEXAMPLE00", "not-a-secret-not-a-secret-not-a-secret00"
	if _, err := os.Stat(filepath.Join(s.Dir, "credentials")); err == nil {
		id, secret = devCredentials(t, s.Dir)
	} else if f, ok := initCreds.Load(s.Dir); ok {
		id, secret = devCredentials(t, filepath.Dir(f.(string)))
	}
	return kms.New(kms.Options{
		Region:           s.Region,
		BaseEndpoint:     aws.String(s.URL),
		Credentials:      credentials.NewStaticCredentialsProvider(id, secret, ""),
		RetryMaxAttempts: 1,
		HTTPClient:       testsupport.SDKHTTPClient(nil),
	})
}

// ctx returns a context bounded for one test's calls.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// apiErrorCode returns the AWS error code of err, or "" if it is not one.
func apiErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// noErr fails the test if err is not nil.
func noErr(t *testing.T, err error, format string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(format, args...), err)
	}
}

package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/openkms/kms/internal/testsupport"
)

// TestGracefulShutdownUnderLoad sends SIGTERM to a server under load: it
// exits 0, every call it answered has its audit record, and no call the
// server carried out failed at the client. Each call carries its own
// encryption context, so the trail says which calls the server read: a
// client may see a connection refused (the server stopped listening), but
// never a call the server did while the client got no answer.
func TestGracefulShutdownUnderLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startDev(t, dir)
	ctx := testCtx(t)
	keyID := aws.ToString(mustCreateKey(t, s))

	id, secret := devCredentials(t, dir)
	var (
		mu       sync.Mutex
		answered []string         // request ids of answered calls
		failed   map[string]error // by call number, the calls that got no answer
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	failed = map[string]error{}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := kms.New(kms.Options{
				Region: s.Region, BaseEndpoint: aws.String(s.URL), RetryMaxAttempts: 1,
				Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""),
				HTTPClient:  testsupport.SDKHTTPClient(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}),
			})
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				call := fmt.Sprintf("%d-%d", w, n)
				out, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("shutdown"),
					EncryptionContext: map[string]string{"call": call}})
				mu.Lock()
				if err == nil {
					answered = append(answered, okRequestID(out.ResultMetadata))
				} else {
					failed[call] = err
				}
				mu.Unlock()
				if err != nil {
					return // the server is going
				}
			}
		}()
	}
	// Let the load run until a few hundred calls were answered.
	waitFor(t, 30*time.Second, "load to build up", func() error {
		mu.Lock()
		defer mu.Unlock()
		return expect(len(answered) >= 300, "fewer than 300 answered")
	})
	code := s.stop(syscall.SIGTERM)
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0\nstderr:\n%s", code, s.stderr)
	}
	recorded := map[string]bool{}
	for _, ev := range auditJSON(t, dir) {
		recorded[ev.RequestID] = true
		var p struct {
			EncryptionContext map[string]string `json:"encryptionContext"`
		}
		json.Unmarshal(ev.RequestParameters, &p)
		if err, ok := failed[p.EncryptionContext["call"]]; ok && ev.EventName == "Encrypt" {
			t.Errorf("call %s was carried out (record %d, %s) but its client got: %v", p.EncryptionContext["call"], ev.Sequence, ev.ErrorCode, err)
		}
	}
	for call, err := range failed {
		if !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("call %s failed otherwise than by a refused connection: %v", call, err)
		}
	}
	missing := 0
	for _, id := range answered {
		if !recorded[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d answered calls have no audit record", missing, len(answered))
	}
	if code, out := auditVerify(t, dir); code != 0 {
		t.Errorf("kms audit verify after shutdown: exit %d\n%s", code, out)
	}
	t.Logf("%d calls answered before and during shutdown, all recorded", len(answered))
}

func mustCreateKey(t *testing.T, s *server) *string {
	t.Helper()
	out, err := s.client(t).CreateKey(testCtx(t), &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	return out.KeyMetadata.KeyId
}

// TestReloadDuringShutdown: a SIGHUP (systemctl reload, a renewed
// certificate's hook) that comes while the server drains its requests at
// shutdown is not the signal's default action, which ends the process at
// once, cutting the requests in flight short and leaving the trail
// without its closing digest: the shutdown finishes and exits 0.
func TestReloadDuringShutdown(t *testing.T) {
	t.Parallel()
	s := startDev(t, t.TempDir())
	// A request in flight, its body not yet sent, holds the drain open
	// for a few seconds. The connection has been answered once first, so
	// that the server has taken it before the signal.
	c, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(exitTimeout))
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: TrentService.ListKeys\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: 2\r\n\r\n")
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	s.waitLog(regexp.MustCompile(`shutting down`), exitTimeout)
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if code := s.wait(exitTimeout); code != 0 {
		t.Fatalf("kms exited %d (%v) after a SIGHUP during its shutdown, want 0", code, s.cmd.ProcessState)
	}
	if !strings.Contains(s.stderr.String(), "stopped") {
		t.Errorf("the shutdown did not finish:\n%s", s.stderr)
	}
}

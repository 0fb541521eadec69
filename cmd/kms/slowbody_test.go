package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/openkms/kms/internal/testsupport"
)

// TestUnfinishedBodies is the slow-body attack on the built server: many
// unauthenticated connections announce 1 MiB bodies and send all but the
// last byte. The server's memory stays bounded (it once grew by the
// announced length of every body, past 1 GB), every such connection is
// closed by the read timeout, and the server keeps answering.
func TestUnfinishedBodies(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir(), baseEnv(), "--dev", "--read-timeout", "2s")
	addr := strings.TrimPrefix(s.URL, "http://")
	pid := s.cmd.Process.Pid

	const conns = 300
	const announced = 1 << 20
	var wg sync.WaitGroup
	opened := make(chan net.Conn, conns)
	chunk := make([]byte, 64<<10)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			opened <- c
			c.SetWriteDeadline(time.Now().Add(20 * time.Second))
			fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: %s\r\nX-Amz-Target: TrentService.Encrypt\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: %d\r\n\r\n", addr, announced)
			// A throttled request is answered, and its connection closed,
			// before its body is done: the writes then fail, which is fine.
			for left := announced - 1; left > 0; left -= len(chunk) {
				if _, err := c.Write(chunk[:min(left, len(chunk))]); err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	close(opened)
	if peak := peakRSS(t, pid); peak > 256<<20 {
		t.Errorf("the server's peak RSS is %d MiB while %d unfinished 1 MiB bodies were sent, want under 256 MiB", peak>>20, conns)
	} else {
		t.Logf("peak RSS %d MiB with %d unfinished 1 MiB bodies", peak>>20, conns)
	}

	// Every connection ends: answered (throttled, or the body could not be
	// read in time) and closed by the server, never left open.
	answered := map[string]int{}
	for c := range opened {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := io.ReadAll(bufio.NewReader(c))
		c.Close()
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("a connection with an unfinished body was still open after 30 s")
		}
		typ := "closed without an answer"
		for _, name := range []string{"ThrottlingException", "SerializationException"} {
			if strings.Contains(string(resp), name) {
				typ = name
			}
		}
		answered[typ]++
	}
	t.Logf("unfinished bodies ended as: %v", answered)

	// The server still answers.
	if _, err := s.client(t).ListKeys(testCtx(t), &kms.ListKeysInput{}); err != nil {
		t.Fatalf("ListKeys after the attack: %v", err)
	}
}

// peakRSS reads a process's peak resident set size from /proc.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// TestSlowBodiesShareByAddress is the slow-body attack with valid access
// key ids, which are not secret, on the built server behind a trusted
// proxy: one client address holding bodies signed with two keys takes
// its share of the body memory, and a body from it signed with a third
// key is throttled, while the same body from another address is read
// (and refused for its made-up signature).
func TestSlowBodiesShareByAddress(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, dir, baseEnv(), "--dev", "--trusted-proxies", "127.0.0.1", "--read-timeout", "30s", "--metrics-listen", "127.0.0.1:0")
	metricsURL := s.servedURL(t, "metrics served")
	addr := strings.TrimPrefix(s.URL, "http://")
	ctx := testCtx(t)
	rootID, rootSecret := devCredentials(t, dir)
	ic := iam.New(iam.Options{Region: s.Region, BaseEndpoint: aws.String(s.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(rootID, rootSecret, ""), HTTPClient: testsupport.SDKHTTPClient(nil)})
	keys := []string{rootID}
	for _, name := range []string{"u1", "u2"} {
		_, err := ic.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)})
		noErr(t, err, "CreateUser")
		ak, err := ic.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(name)})
		noErr(t, err, "CreateAccessKey")
		keys = append(keys, aws.ToString(ak.AccessKey.AccessKeyId))
	}
	const body = 1 << 20
	// head is a request with a 1 MiB body from client, through the proxy,
	// with a signature that passes every check made before the body is
	// read: the key is known and the time current.
	head := func(akid, client string) string {
		now := time.Now().UTC()
		return fmt.Sprintf("POST / HTTP/1.1\r\nHost: %s\r\nX-Amz-Target: TrentService.Encrypt\r\nContent-Type: application/x-amz-json-1.1\r\n"+
			"X-Amz-Date: %s\r\nAuthorization: AWS4-HMAC-SHA256 Credential=%s/%s/%s/kms/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=%s\r\n"+
			"X-Forwarded-For: %s\r\nContent-Length: %d\r\n\r\n",
			addr, now.Format("20060102T150405Z"), akid, now.Format("20060102"), s.Region, strings.Repeat("0", 64), client, body)
	}
	// Eight bodies for each of the first two keys from 198.51.100.7, each
	// sent past half its length: the server holds 1 MiB for each, 16 MiB
	// of the default 64 MiB, its share for one address.
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for _, akid := range keys[:2] {
		for range 8 {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
			c.SetWriteDeadline(time.Now().Add(20 * time.Second))
			if _, err := io.WriteString(c, head(akid, "198.51.100.7")); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write(make([]byte, body/2+1)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// send sends a whole body signed with the third key from client and
	// returns the error type of the answer.
	send := func(client string) string {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		go func() {
			io.WriteString(c, head(keys[2], client))
			c.Write(make([]byte, body)) // fails if the answer came first: fine
		}()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Type string `json:"__type"`
		}
		json.NewDecoder(resp.Body).Decode(&out)
		return out.Type
	}
	// The server reads the held bodies as they arrive: wait until it
	// holds all 16 MiB (a body sent before could take part of the share,
	// and have one of them throttled).
	deadline := time.Now().Add(15 * time.Second)
	for metricValue(scrape(t, metricsURL), "kms_request_body_bytes", nil) < 16<<20 {
		if time.Now().After(deadline) {
			t.Fatal("the server never held the 16 bodies sent past half their length (kms_request_body_bytes)")
		}
	}
	if got := send("198.51.100.7"); got != "ThrottlingException" {
		t.Fatalf("a body from the address holding its share, signed with another key: %s, want ThrottlingException", got)
	}
	if got := send("198.51.100.8"); got != "InvalidSignatureException" {
		t.Fatalf("the same body from another address: %s, want it read and refused with InvalidSignatureException", got)
	}
}

// TestUnknownCallersCannotHoldTheConnections: every connection the server
// takes (--max-connections) holds an unsigned request whose body never
// finishes. The read timeout is long, but a body from a caller the server
// cannot know is given only a few seconds: each is answered with who it
// is (no one) and closed, and a signed call gets through, long before the
// read timeout would have freed a place.
func TestUnknownCallersCannotHoldTheConnections(t *testing.T) {
	t.Parallel()
	const places = 16
	s := startServer(t, t.TempDir(), baseEnv(), "--dev", "--max-connections", strconv.Itoa(places), "--read-timeout", "10m", "--metrics-listen", "127.0.0.1:0")
	metricsURL := s.servedURL(t, "metrics served")
	addr := strings.TrimPrefix(s.URL, "http://")
	// Each connection is opened once the server reads the body of the one
	// before: every place is then taken by a request under way, which the
	// server never closes to make room (a connection still sending its
	// headers, or one left idle, it would close).
	var conns []net.Conn
	deadline := time.Now().Add(time.Minute)
	for i := range places {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Headers and the first byte of an 8,000-byte body; nothing more.
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: %s\r\nX-Amz-Target: TrentService.ListKeys\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: 8000\r\n\r\n{", addr)
		conns = append(conns, c)
		for metricValue(scrape(t, metricsURL), "kms_request_body_bytes", nil) < float64((i+1)*8000) {
			if time.Now().After(deadline) {
				t.Fatalf("the server never read the body of held connection %d (kms_request_body_bytes)", i+1)
			}
		}
	}
	ctx, cancel := context.WithTimeout(testCtx(t), 2*time.Minute)
	defer cancel()
	if _, err := s.client(t).ListKeys(ctx, &kms.ListKeysInput{}); err != nil {
		t.Fatalf("ListKeys while unknown callers held every connection: %v", err)
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(time.Minute))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !resp.Close || !strings.Contains(string(b), "MissingAuthenticationTokenException") {
			t.Errorf("connection %d: %d (close %v) %s, want 400 MissingAuthenticationTokenException and the connection closed", i, resp.StatusCode, resp.Close, b)
		}
	}
}

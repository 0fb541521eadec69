package main_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
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

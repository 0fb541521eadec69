package main_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"golang.org/x/sys/unix"
)

// limitFileSize sets the soft limit on the size of the files the process
// pid writes (RLIMIT_FSIZE), keeping its hard limit: a write past it gets
// EFBIG, as a write onto a full disk gets ENOSPC (Go ignores SIGXFSZ).
func limitFileSize(t *testing.T, pid int, soft uint64) {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, nil, &old); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
	lim := unix.Rlimit{Cur: min(soft, old.Max), Max: old.Max}
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &lim, nil); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
}

// readyz returns the status code of s's GET /readyz and its body.
func readyz(t *testing.T, s *server) (int, string) {
	t.Helper()
	resp, err := http.Get(s.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAuditTrailFullRecovers: a server whose audit trail cannot grow (the
// file size limit, as a full disk) refuses every call with
// KMSInternalException, 500, and changes nothing; once the trail can grow
// again, it answers calls again without a restart, and the trail verifies
// with every answered call in it.
func TestAuditTrailFullRecovers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := startDev(t, dir)
	c := s.client(t)
	ctx := testCtx(t)
	key, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	keyID := key.KeyMetadata.KeyId

	// The next batch of records is cut 100 bytes in, by the limit, and
	// every write after it refused (the key store's pages too).
	trail, err := os.ReadFile(filepath.Join(dir, "audit.log"))
	noErr(t, err, "read the trail")
	end := bytes.IndexByte(trail, 0)
	if end < 0 {
		end = len(trail)
	}
	limitFileSize(t, s.cmd.Process.Pid, uint64(end)+100)
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: keyID, Plaintext: []byte("x")})
	var re *smithyhttp.ResponseError
	if apiErrorCode(err) != "KMSInternalException" || !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusInternalServerError {
		t.Fatalf("Encrypt with the trail full: %v, want KMSInternalException (500)", err)
	}
	tag := []types.Tag{{TagKey: aws.String("k"), TagValue: aws.String("v")}}
	_, err = c.TagResource(ctx, &kms.TagResourceInput{KeyId: keyID, Tags: tag})
	if apiErrorCode(err) != "KMSInternalException" {
		t.Fatalf("TagResource with the trail failing: %v, want KMSInternalException", err)
	}
	_, err = c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("while full")})
	if apiErrorCode(err) != "KMSInternalException" {
		t.Fatalf("CreateKey with the trail failing: %v, want KMSInternalException", err)
	}
	if code, body := readyz(t, s); code != http.StatusServiceUnavailable || !strings.Contains(body, `"audit"`) {
		t.Errorf("/readyz with the trail failing: %d %s, want 503 naming audit", code, body)
	}
	s.waitLog(regexp.MustCompile(`audit trail write failed; the call is refused.*file too large`), exitTimeout)

	// Room again: the next call is answered, without a restart.
	limitFileSize(t, s.cmd.Process.Pid, unix.RLIM_INFINITY)
	if code, body := readyz(t, s); code != http.StatusOK {
		t.Errorf("/readyz once the trail can grow: %d %s, want 200", code, body)
	}
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: keyID, Plaintext: []byte("x")})
	noErr(t, err, "Encrypt once the trail can grow again")
	keys, err := c.ListKeys(ctx, &kms.ListKeysInput{})
	noErr(t, err, "ListKeys")
	if len(keys.Keys) != 1 {
		t.Errorf("ListKeys: %d keys, want 1: the CreateKey refused while full made one", len(keys.Keys))
	}
	tags, err := c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: keyID})
	noErr(t, err, "ListResourceTags")
	if len(tags.Tags) != 0 {
		t.Errorf("ListResourceTags: %v, want none: the TagResource refused while full tagged the key", tags.Tags)
	}
	// A kill now loses nothing answered: the next start takes the trail up.
	s.kill()
	s = startDev(t, dir)
	s.stop(syscall.SIGTERM)
	// CreateKey, Encrypt, ListKeys, ListResourceTags: the answered calls,
	// and no refused one.
	code, out, errOut := runToExit(t, baseEnv(), "audit", "verify", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "OK: 4 records") {
		t.Fatalf("audit verify: exit %d\n%s%s", code, out, errOut)
	}
}

// TestFullDiskRefusesChangesBeforeTheyAreMade: once the disk is full (the
// file size limit at the end of the zeros written ahead of the trail's
// records), the server refuses calls before they begin while the zeros
// left still hold the records of the calls under way, so the first call
// refused made no change; without the reserve it was the call whose
// record did not fit, refused after its change. Every call answered
// changed the key, and no refused one did.
func TestFullDiskRefusesChangesBeforeTheyAreMade(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := startDev(t, dir)
	c := s.client(t)
	ctx := testCtx(t)
	key, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	keyID := key.KeyMetadata.KeyId
	fi, err := os.Stat(filepath.Join(dir, "audit.log"))
	noErr(t, err, "stat the trail")
	limitFileSize(t, s.cmd.Process.Pid, uint64(fi.Size())) // the zeros written at start

	// Each TagResource's record is about 20 KB: 49 tags of the longest
	// names and values, and "seq", the call's number.
	var tags []types.Tag
	for i := range 49 {
		tags = append(tags, types.Tag{TagKey: aws.String(fmt.Sprintf("%03d%s", i, strings.Repeat("k", 125))), TagValue: aws.String(strings.Repeat("v", 256))})
	}
	answered := -1
	for i := 0; ; i++ {
		if i > int(fi.Size())/10000 {
			t.Fatalf("%d TagResource calls answered past the size limit", i)
		}
		_, err := c.TagResource(ctx, &kms.TagResourceInput{KeyId: keyID,
			Tags: append(tags, types.Tag{TagKey: aws.String("seq"), TagValue: aws.String(strconv.Itoa(i))})})
		if err != nil {
			if apiErrorCode(err) != "KMSInternalException" {
				t.Fatalf("TagResource %d with the disk full: %v, want KMSInternalException", i, err)
			}
			break
		}
		answered = i
	}
	if answered < 0 {
		t.Fatal("no TagResource was answered before the disk was full")
	}
	if code, body := readyz(t, s); code != http.StatusServiceUnavailable || !strings.Contains(body, `"audit"`) {
		t.Errorf("/readyz with the disk full: %d %s, want 503 naming audit", code, body)
	}

	limitFileSize(t, s.cmd.Process.Pid, unix.RLIM_INFINITY)
	got, err := c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: keyID, Limit: aws.Int32(50)})
	noErr(t, err, "ListResourceTags once there is room")
	for _, tag := range got.Tags {
		if aws.ToString(tag.TagKey) == "seq" && aws.ToString(tag.TagValue) != strconv.Itoa(answered) {
			t.Errorf("the key's seq tag is %s: the call refused after %d answered made its change", aws.ToString(tag.TagValue), answered)
		}
	}
	s.stop(syscall.SIGTERM)
	// CreateKey, the TagResource calls answered and refused, ListResourceTags.
	code, out, errOut := runToExit(t, baseEnv(), "audit", "verify", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "OK: ") {
		t.Fatalf("audit verify: exit %d\n%s%s", code, out, errOut)
	}
}

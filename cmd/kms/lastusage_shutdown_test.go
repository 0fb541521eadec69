package main_test

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// The key uses a server noted in memory are written at a graceful
// shutdown: after a restart GetKeyLastUsage still reports them.
func TestKeyLastUsageSurvivesShutdown(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	s := startDev(t, dir)
	id := mustCreateKey(t, s)
	c := s.client(t)
	if _, err := c.Encrypt(testCtx(t), &kms.EncryptInput{KeyId: id, Plaintext: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("kms server exited %d on SIGTERM", code)
	}
	s = startDev(t, dir)
	out, err := s.client(t).GetKeyLastUsage(testCtx(t), &kms.GetKeyLastUsageInput{KeyId: id})
	if err != nil {
		t.Fatal(err)
	}
	u := out.KeyLastUsage
	if u == nil || u.Operation != "Encrypt" || aws.ToString(u.CloudTrailEventId) == "" || u.Timestamp == nil || time.Since(*u.Timestamp) > time.Minute {
		t.Fatalf("after a restart KeyLastUsage = %+v; want the Encrypt before it", u)
	}
}

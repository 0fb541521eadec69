package testsupport

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// SoftHSM sets up a SoftHSM token for one test, in a temporary directory
// that SOFTHSM2_CONF names for the rest of the test: label "kms", user
// PIN 1234, SO PIN 5678. It returns the PKCS#11 module's path. Without
// softhsm2 installed the test fails when CI is set, and is skipped
// otherwise.
func SoftHSM(t *testing.T) string {
	t.Helper()
	module := "/usr/lib/softhsm/libsofthsm2.so"
	_, err := exec.LookPath("softhsm2-util")
	if err == nil {
		_, err = os.Stat(module)
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("SoftHSM (Debian softhsm2) is needed for this test: %v", err)
		}
		t.Skipf("no SoftHSM: %v", err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.Mkdir(filepath.Join(dir, "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nlog.level = ERROR\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "kms", "--so-pin", "5678", "--pin", "1234").CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util: %v\n%s", err, out)
	}
	return module
}

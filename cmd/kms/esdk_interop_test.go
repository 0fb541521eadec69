package main_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// requireNodePackage needs node and the npm package module installed
// under test/dir (scripts/test.sh installs it there), and returns that
// directory. It fails when CI is set and skips otherwise.
func requireNodePackage(t *testing.T, dir, module string) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("..", "..", "test", dir))
	if err != nil {
		t.Fatal(err)
	}
	_, nodeErr := exec.LookPath("node")
	_, modErr := os.Stat(filepath.Join(abs, "node_modules", filepath.FromSlash(module)))
	if nodeErr != nil || modErr != nil {
		msg := fmt.Sprintf("node and %s in test/%s/node_modules (npm install in test/%s) are needed for this test", module, dir, dir)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return abs
}

// The official AWS Encryption SDK for JavaScript decrypts what `kms
// encrypt` writes and `kms decrypt` decrypts what it writes, for both
// committing suites, several sizes and an encryption context.
func TestESDKInteropWithJavaScript(t *testing.T) {
	t.Parallel()
	jsDir := requireNodePackage(t, "esdk-js", "@aws-crypto/client-node")
	s := startDev(t, t.TempDir())
	ctx := testCtx(t)
	key, err := s.client(t).CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	arn := *key.KeyMetadata.Arn
	id, secret := devCredentials(t, s.Dir)
	env := append(baseEnv(), "AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_REGION=us-east-1",
		"AWS_ENDPOINT_URL="+s.URL, "HOME="+t.TempDir(), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	run := func(name string, args ...string) []byte {
		t.Helper()
		cmd := exec.CommandContext(context.Background(), name, args...)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
		}
		return out
	}
	dir := t.TempDir()
	for _, suite := range []string{"0478", "0578"} {
		for _, size := range []int{0, 1, 4095, 4096, 4097, 3*4096 + 17, 50 << 20} {
			t.Run(fmt.Sprintf("%s/%d", suite, size), func(t *testing.T) {
				plain := make([]byte, size)
				rand.Read(plain)
				p := filepath.Join(dir, fmt.Sprintf("%s-%d", suite, size))
				os.WriteFile(p+".plain", plain, 0o600)

				// Ours to theirs.
				args := []string{"encrypt", "--key", arn, "--context", "purpose=interop", "--context", "size=" + fmt.Sprint(size),
					"--endpoint", s.URL, "-o", p + ".ours", p + ".plain"}
				if suite == "0578" {
					args = append(args, "--signed")
				}
				run(kmsBin, args...)
				info := run("node", filepath.Join(jsDir, "esdk.js"), "decrypt", p+".ours", p+".ours.plain")
				got, _ := os.ReadFile(p + ".ours.plain")
				if !bytes.Equal(got, plain) {
					t.Fatalf("the JavaScript SDK decrypted %d bytes, want the %d written", len(got), len(plain))
				}
				var hdr struct {
					Suite             int
					EncryptionContext map[string]string
				}
				if err := json.Unmarshal(info, &hdr); err != nil {
					t.Fatalf("node output %q: %v", info, err)
				}
				if fmt.Sprintf("%04x", hdr.Suite) != suite || hdr.EncryptionContext["purpose"] != "interop" {
					t.Fatalf("the JavaScript SDK read suite %04x and context %v", hdr.Suite, hdr.EncryptionContext)
				}

				// Theirs to ours.
				run("node", filepath.Join(jsDir, "esdk.js"), "encrypt", p+".plain", p+".theirs", arn, suite, "purpose=interop")
				run(kmsBin, "decrypt", "--endpoint", s.URL, "-o", p+".theirs.plain", p+".theirs")
				got, _ = os.ReadFile(p + ".theirs.plain")
				if !bytes.Equal(got, plain) {
					t.Fatalf("kms decrypt gave %d bytes of what the JavaScript SDK encrypted, want %d", len(got), len(plain))
				}
			})
		}
	}
}

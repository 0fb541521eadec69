package main_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/openkms/kms/internal/testsupport"
)

// scrape reads url (a /metrics endpoint) with curl, as an operator's
// scraper would, and parses the Prometheus text format.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	out, err := exec.Command(requireTool(t, "curl"), "-sSf", url).Output()
	if err != nil {
		t.Fatalf("curl %s: %v", url, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(out)))
	if err != nil {
		t.Fatalf("%s is not the Prometheus text format: %v", url, err)
	}
	return families
}

// metricValue is the value of the counter, gauge or histogram count of
// name whose labels include labels; -1 if there is none.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f, ok := fams[name]
	if !ok {
		return -1
	}
next:
	for _, m := range f.Metric {
		for k, v := range labels {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// TestMetrics scrapes /metrics before and after real calls: the request
// counters, the latency histogram, the audit and store timings and the
// key cache counters move, and an operation the server does not serve is
// counted as "unknown".
func TestMetrics(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir(), baseEnv(), "--dev", "--metrics-listen", "127.0.0.1:0")
	url := s.servedURL(t, "metrics served")
	before := scrape(t, url)
	for _, name := range []string{"kms_requests_total", "kms_request_duration_seconds", "kms_audit_append_duration_seconds",
		"kms_audit_batch_records", "kms_audit_commit_duration_seconds", "kms_audit_prezero_failures_total", "kms_store_duration_seconds", "kms_key_cache_hits_total",
		"kms_key_cache_misses_total", "kms_build_info", "kms_request_body_bytes", "kms_rsa_key_pairs_waiting", "go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := before[name]; !ok && !strings.HasPrefix(name, "kms_requests") && !strings.HasPrefix(name, "kms_request_duration") {
			t.Errorf("metric %s is missing", name)
		}
	}
	if v := metricValue(before, "kms_build_info", map[string]string{"version": "(devel)"}); v != 1 {
		t.Errorf("kms_build_info{version=\"(devel)\"} = %v", v)
	}

	c := s.client(t)
	ctx := testCtx(t)
	key := aws.ToString(mustCreateKey(t, s))
	for range 5 {
		if _, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("m")}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/none")})
	if apiErrorCode(err) != "NotFoundException" {
		t.Fatalf("DescribeKey of a missing alias: %v", err)
	}
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/", strings.NewReader("{}"))
	req.Header.Set("X-Amz-Target", "TrentService.NoSuchOperation-"+strings.Repeat("x", 100))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	// A made-up query Action, and a made-up access key id, are no
	// operation's name either.
	req, _ = http.NewRequest(http.MethodPost, s.URL+"/", strings.NewReader("Action=MadeUpAction&Version=2010-05-08"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	req, _ = http.NewRequest(http.MethodPost, s.URL+"/", strings.NewReader("{}"))
	req.Header.Set("X-Amz-Target", "TrentService.Encrypt")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	// One reading of the clock for both: two could fall on either side
	// of midnight, and a scope whose date is not the request's is
	// refused with another error than the unknown key's.
	now := time.Now().UTC()
	req.Header.Set("X-Amz-Date", now.Format("20060102T150405Z"))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAMADEUPMADEUP0000/"+now.Format("20060102")+
		"/us-east-1/kms/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature="+strings.Repeat("0", 64))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}

	after := scrape(t, url)
	// No label of any series holds what a request made up.
	for name, f := range after {
		for _, m := range f.Metric {
			for _, lp := range m.Label {
				if v := lp.GetValue(); strings.Contains(v, "NoSuchOperation") || strings.Contains(v, "MadeUp") {
					t.Errorf("%s has a series labelled %s=%q, from a request", name, lp.GetName(), v)
				}
			}
		}
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"kms_requests_total", map[string]string{"operation": "Encrypt", "code": "ok"}, 5},
		{"kms_requests_total", map[string]string{"operation": "CreateKey", "code": "ok"}, 1},
		{"kms_requests_total", map[string]string{"operation": "DescribeKey", "code": "NotFoundException"}, 1},
		{"kms_requests_total", map[string]string{"operation": "unknown", "code": "UnknownOperationException"}, 1},
		{"kms_requests_total", map[string]string{"operation": "unknown", "code": "InvalidAction"}, 1},
		{"kms_requests_total", map[string]string{"operation": "Encrypt", "code": "UnrecognizedClientException"}, 1},
		{"kms_request_duration_seconds", map[string]string{"operation": "Encrypt"}, 6}, // the five and the made-up key's
	} {
		if got := metricValue(after, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	for _, name := range []string{"kms_audit_append_duration_seconds", "kms_audit_batch_records", "kms_audit_commit_duration_seconds",
		"kms_key_cache_hits_total"} {
		if metricValue(after, name, nil) <= metricValue(before, name, nil) {
			t.Errorf("%s did not move after 8 calls: %v then %v", name, metricValue(before, name, nil), metricValue(after, name, nil))
		}
	}
	if metricValue(after, "kms_store_duration_seconds", map[string]string{"kind": "update"}) < 1 {
		t.Error("kms_store_duration_seconds{kind=update} counts no transaction after CreateKey")
	}
	// Metrics on their own address are not also served beside the API.
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Error("/metrics is served on the API address too")
	}
}

// TestUnsignedFloodIsNotAllRecorded: a burst of unsigned calls against the
// built server is refused call by call, but only its budget of records
// reaches the trail; kms_audit_unrecorded_calls_total counts the rest, and
// together they account for every call.
func TestUnsignedFloodIsNotAllRecorded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, dir, baseEnv(), "--dev", "--metrics-listen", "127.0.0.1:0")
	metricsURL := s.servedURL(t, "metrics served")
	const calls = 400 // the budget refills 10 a second: 300 more than the burst leave room for a slow machine
	for range calls {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/", strings.NewReader(`{"KeyId":"alias/x"}`))
		req.Header.Set("X-Amz-Target", "TrentService.DescribeKey")
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("an unsigned call: status %d", resp.StatusCode)
		}
	}
	unrecorded := metricValue(scrape(t, metricsURL), "kms_audit_unrecorded_calls_total", nil)
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("kms server exited %d", code)
	}
	trail, err := os.ReadFile(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	recorded := strings.Count(string(trail), `"type":"Unknown"`)
	// A burst of 100 records, and 10 more each second the loop took.
	if recorded < 100 || recorded+int(unrecorded) != calls || unrecorded < 1 {
		t.Errorf("%d unsigned calls: %d recorded, %v counted unrecorded", calls, recorded, unrecorded)
	}
	// Every unrecorded call is counted by the record after it, or, after
	// the last record, in the log when the server stops.
	counted := 0
	for _, m := range regexp.MustCompile(`"unrecordedBefore":(\d+)`).FindAllStringSubmatch(string(trail), -1) {
		n, _ := strconv.Atoi(m[1])
		counted += n
	}
	logged := 0
	if m := regexp.MustCompile(`msg="unauthenticated calls over the audit record budget[^"]*" calls=(\d+)`).FindStringSubmatch(s.stderr.String()); m != nil {
		logged, _ = strconv.Atoi(m[1])
	}
	if counted+logged != int(unrecorded) {
		t.Errorf("%v calls unrecorded: %d counted by records, %d logged at the stop", unrecorded, counted, logged)
	}
}

// servedURL returns the URL s logged with msg ("metrics served",
// "profiles served") as it began to serve it. A server given
// 127.0.0.1:0 listens on a port the system chose for it: a port the test
// found free and handed over could be taken by another process before
// the server listened on it.
func (s *server) servedURL(t *testing.T, msg string) string {
	t.Helper()
	return s.waitLog(regexp.MustCompile(`msg="`+regexp.QuoteMeta(msg)+`" url=(\S+)`), startTimeout)[1]
}

// TestRequestLogs: one line per call at info level, in JSON with
// --log-format json, naming the request id, caller, operation, status and
// duration; and nothing secret in the logs: no plaintext, data key,
// signature or secret access key.
func TestRequestLogs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, dir, baseEnv(), "--dev", "--log-format", "json")
	c := s.client(t)
	ctx := testCtx(t)
	key := aws.ToString(mustCreateKey(t, s))
	plaintext := []byte("log-canary-plaintext-7f3a9c")
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: plaintext})
	if err != nil {
		t.Fatal(err)
	}
	dk, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(key), KeySpec: types.DataKeySpecAes256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: []byte("not a ciphertext at all, not at all")})
	if apiErrorCode(err) != "InvalidCiphertextException" {
		t.Fatalf("Decrypt of garbage: %v", err)
	}
	s.stop(os.Interrupt)

	logs := s.stderr.String()
	var lines []map[string]any
	for _, ln := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(ln), &m); err != nil {
			t.Fatalf("a log line is not JSON: %q", ln)
		}
		if m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	wantOps := []string{"CreateKey", "Encrypt", "GenerateDataKey", "Decrypt", "Decrypt"}
	if len(lines) != len(wantOps) {
		t.Fatalf("%d request lines, want %d:\n%s", len(lines), len(wantOps), logs)
	}
	for i, m := range lines {
		if m["operation"] != wantOps[i] || m["level"] != "INFO" || m["principal"] != "arn:aws:iam::111122223333:root" {
			t.Errorf("line %d: %v", i, m)
		}
		if id, _ := m["requestId"].(string); !regexp.MustCompile(`^[0-9a-f-]{36}$`).MatchString(id) {
			t.Errorf("line %d has no request id: %v", i, m)
		}
		if _, ok := m["duration"]; !ok {
			t.Errorf("line %d has no duration: %v", i, m)
		}
	}
	if lines[4]["status"] != 400.0 || lines[4]["code"] != "InvalidCiphertextException" {
		t.Errorf("the failed Decrypt logged as %v", lines[4])
	}

	_, secret := devCredentials(t, dir)
	secrets := map[string]string{
		"plaintext":            string(plaintext),
		"plaintext as base64":  base64.StdEncoding.EncodeToString(plaintext),
		"data key as base64":   base64.StdEncoding.EncodeToString(dk.Plaintext),
		"ciphertext as base64": base64.StdEncoding.EncodeToString(enc.CiphertextBlob),
		"secret access key":    secret,
		"signature":            "Signature=",
		"authorization":        "AWS4-HMAC-SHA256",
	}
	for what, v := range secrets {
		if strings.Contains(logs, v) {
			t.Errorf("the log holds the %s", what)
		}
	}
}

// TestRateLimit: with --rate-limit, an account past its burst gets
// ThrottlingException (which the SDK retries), and another account is not
// held back by it.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir(), baseEnv(), "--dev", "--rate-limit", "1", "--rate-burst", "5")
	c := s.client(t)
	ctx := testCtx(t)
	throttled, ok := 0, 0
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.ListKeys(ctx, &kms.ListKeysInput{})
			mu.Lock()
			defer mu.Unlock()
			switch code := apiErrorCode(err); {
			case err == nil:
				ok++
			case code == "ThrottlingException":
				throttled++
			default:
				t.Errorf("ListKeys: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok < 5 || ok > 7 || throttled < 13 {
		t.Errorf("20 calls at once with a burst of 5 at 1/s: %d answered, %d throttled", ok, throttled)
	}
	_, err := c.ListKeys(ctx, &kms.ListKeysInput{})
	var ae smithy.APIError
	if apiErrorCode(err) != "ThrottlingException" || !errors.As(err, &ae) ||
		ae.ErrorMessage() != "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls." {
		t.Errorf("a throttled call: %v", err)
	}

	// STS and IAM have buckets of their own: the account's KMS calls did
	// not use them up, and theirs do not go unlimited.
	id, secret := devCredentials(t, s.Dir)
	creds := credentials.NewStaticCredentialsProvider(id, secret, "")
	st := sts.New(sts.Options{Region: s.Region, BaseEndpoint: aws.String(s.URL), Credentials: creds, RetryMaxAttempts: 1,
		HTTPClient: testsupport.SDKHTTPClient(nil)})
	im := iam.New(iam.Options{Region: s.Region, BaseEndpoint: aws.String(s.URL), Credentials: creds, RetryMaxAttempts: 1,
		HTTPClient: testsupport.SDKHTTPClient(nil)})
	for name, call := range map[string]func() error{
		"GetCallerIdentity": func() error { _, err := st.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); return err },
		"ListUsers":         func() error { _, err := im.ListUsers(ctx, &iam.ListUsersInput{}); return err },
	} {
		ok, throttled := 0, 0
		for range 12 {
			err := call()
			switch {
			case err == nil:
				ok++
			case errors.As(err, &ae) && ae.ErrorCode() == "Throttling" && ae.ErrorMessage() == "Rate exceeded":
				throttled++
			default:
				t.Errorf("%s: %v", name, err)
			}
		}
		if ok < 5 || throttled == 0 {
			t.Errorf("%s, 12 calls with a burst of 5 at 1/s: %d answered, %d throttled", name, ok, throttled)
		}
	}
}

// TestConfigFileAndEnvironment: settings come from a YAML file and from
// KMS_* variables, flags win, --print-config says which came from where,
// and a wrong file fails the start naming the file, line and key.
func TestConfigFileAndEnvironment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "kms.yaml")
	data := filepath.Join(dir, "data")
	writeFile(t, cfg, []byte("dev: true\ndata-dir: "+data+"\nregion: eu-west-1\nread-timeout: 12s\n"))
	env := baseEnv("KMS_REGION=ap-south-1", "KMS_IDLE_TIMEOUT=45s")

	code, out, stderr := runToExit(t, env, "server", "--config", cfg, "--print-config", "--read-timeout", "9s")
	if code != 0 {
		t.Fatalf("--print-config: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"dev: true  # file", `region: "ap-south-1"  # environment`, "read-timeout: 9s  # flag",
		"idle-timeout: 45s  # environment", `listen: "127.0.0.1:8400"  # default`} {
		if !strings.Contains(out, want) {
			t.Errorf("--print-config lacks %q:\n%s", want, out)
		}
	}

	// KMS_CONFIG names the file as --config does; --config wins over it.
	code, out, stderr = runToExit(t, baseEnv("KMS_CONFIG="+cfg), "server", "--print-config")
	if code != 0 || !strings.Contains(out, "dev: true  # file") || !strings.Contains(out, `region: "eu-west-1"  # file`) {
		t.Errorf("--print-config with KMS_CONFIG: exit %d, the file's settings not in effect:\n%s%s", code, out, stderr)
	}
	other := filepath.Join(dir, "other.yaml")
	writeFile(t, other, []byte("region: eu-north-1\n"))
	code, out, stderr = runToExit(t, baseEnv("KMS_CONFIG="+cfg), "server", "--config", other, "--print-config")
	if code != 0 || !strings.Contains(out, `region: "eu-north-1"  # file`) || strings.Contains(out, "dev: true") {
		t.Errorf("--print-config with KMS_CONFIG and --config: exit %d, want --config's file alone:\n%s%s", code, out, stderr)
	}

	// The database password is masked, in a URL or a key/value string.
	for storage, want := range map[string]string{
		"postgres://kms:hunter2@db/kms":     `storage: "postgres://kms:xxxxx@db/kms"  # environment`,
		"host=db user=kms password=hunter2": `storage: "host=db user=kms password=xxxxx"  # environment`,
	} {
		code, out, stderr := runToExit(t, baseEnv("KMS_STORAGE="+storage), "server", "--print-config")
		if code != 0 || strings.Contains(out, "hunter2") || !strings.Contains(out, want) {
			t.Errorf("--print-config with KMS_STORAGE=%s: exit %d, want %s\n%s%s", storage, code, want, out, stderr)
		}
	}

	s := startServerIn(t, "", env, "server", "--config", cfg, "--listen", "127.0.0.1:0")
	if s.Region != "ap-south-1" || s.Dir != data {
		t.Errorf("the server runs in region %s on %s, want ap-south-1 on %s", s.Region, s.Dir, data)
	}

	writeFile(t, cfg, []byte("dev: true\n\nlisen: 127.0.0.1:0\n"))
	code, _, stderr = runToExit(t, baseEnv(), "server", "--config", cfg)
	if code == 0 || !strings.Contains(stderr, cfg+`:3: unknown key "lisen"`) {
		t.Errorf("an unknown key: exit %d, stderr %q", code, stderr)
	}
	writeFile(t, cfg, []byte("dev: true\nmax-connections: lots\n"))
	code, _, stderr = runToExit(t, baseEnv(), "server", "--config", cfg)
	if code == 0 || !strings.Contains(stderr, cfg+`:2: key "max-connections"`) {
		t.Errorf("a wrong type: exit %d, stderr %q", code, stderr)
	}
}

// TestSecretInReadableConfigFile: a root key or a database password
// written in a --config file that users other than its owner may read is
// warned of, as a root key file so readable is; the secret itself is not
// printed.
func TestSecretInReadableConfigFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "kms.yaml")
	const key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	writeFile(t, cfg, []byte("root-key: "+key+"\nstorage: postgres://kms:hunter2@db/kms\ndata-dir: "+filepath.Join(dir, "data")+"\n"))
	for mode, want := range map[os.FileMode]bool{0o644: true, 0o640: true, 0o600: false} {
		if err := os.Chmod(cfg, mode); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := runToExit(t, baseEnv(), "server", "--config", cfg, "--print-config")
		if code != 0 {
			t.Fatalf("mode %04o: exit %d\n%s", mode, code, stderr)
		}
		for _, what := range []string{"holds the root key (root-key)", "holds a database password (storage)"} {
			if got := strings.Contains(stderr, what); got != want {
				t.Errorf("mode %04o: warned %q: %v, want %v\n%s", mode, what, got, want, stderr)
			}
		}
		if strings.Contains(stderr, key) || strings.Contains(stderr, "hunter2") {
			t.Errorf("mode %04o: the warning prints the secret:\n%s", mode, stderr)
		}
	}
	// A PKCS#11 URI names a key in a token, and is no secret.
	writeFile(t, cfg, []byte("root-key: pkcs11:token=kms;object=root\n"))
	if err := os.Chmod(cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, stderr := runToExit(t, baseEnv(), "server", "--config", cfg, "--print-config"); strings.Contains(stderr, "warning") {
		t.Errorf("a PKCS#11 URI in a readable file is warned of:\n%s", stderr)
	}
}

// TestVersion: kms version names the version, the commit and Go's version.
func TestVersion(t *testing.T) {
	t.Parallel()
	code, out, _ := runToExit(t, baseEnv(), "version")
	if code != 0 || !regexp.MustCompile(`^kms \S+ \(commit \S+\) built with go1\.\d+`).MatchString(out) {
		t.Errorf("kms version: exit %d, %q", code, out)
	}
}

// TestReadyz: /readyz answers 200 with the JSON status when the store and
// the audit trail work.
func TestReadyz(t *testing.T) {
	t.Parallel()
	s := startDev(t, t.TempDir())
	resp, err := http.Get(s.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != `{"status":"ready"}` {
		t.Errorf("/readyz: %d %s", resp.StatusCode, b)
	}
}

// TestFailClosedWhenTheTrailCannotBeWritten: a node on PostgreSQL whose
// audit records cannot be inserted answers KMS calls with a 5xx, and
// /readyz says 503 and why; once the table is back, the node goes on with
// the first call.
func TestFailClosedWhenTheTrailCannotBeWritten(t *testing.T) {
	t.Parallel()
	nodes, dsn := startCluster(t, 1)
	s := nodes[0]
	c := s.client(t)
	ctx := testCtx(t)
	key := mustCreateKey(t, s)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	ready := func() (int, map[string]string) {
		resp, err := http.Get(s.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]string
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	if code, _ := ready(); code != http.StatusOK {
		t.Fatalf("/readyz %d before the failure", code)
	}

	if _, err := conn.Exec(ctx, "ALTER TABLE kms_audit_records RENAME TO kms_audit_records_away"); err != nil {
		t.Fatal(err)
	}
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: key, Plaintext: []byte("x")})
	var re *awshttp.ResponseError
	if err == nil || !errors.As(err, &re) || re.HTTPStatusCode() < 500 {
		t.Fatalf("Encrypt without a writable trail: %v, want a 5xx", err)
	}
	code, body := ready()
	if code != http.StatusServiceUnavailable || body["status"] != "not ready" || body["failing"] != "audit" || len(body) != 2 {
		t.Errorf("/readyz with the trail failing: %d %v (want only its status and the part failing)", code, body)
	}
	// Why is in the log, for the operator, not in the answer.
	s.waitLog(regexp.MustCompile(`msg="not ready" failing=audit .*kms_audit_records`), startTimeout)
	// A call that would change something is refused before it begins:
	// answered or not, its change would outlast the missing record.
	_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/while-failing"), TargetKeyId: key})
	if err == nil || !errors.As(err, &re) || re.HTTPStatusCode() < 500 {
		t.Fatalf("CreateAlias without a writable trail: %v, want a 5xx", err)
	}

	if _, err := conn.Exec(ctx, "ALTER TABLE kms_audit_records_away RENAME TO kms_audit_records"); err != nil {
		t.Fatal(err)
	}
	// The node is ready again with no call made (a load balancer sends
	// none to a node that is not), and the first call goes through:
	// before it begins, the node finds that the trail takes records.
	if code, body := ready(); code != http.StatusOK {
		t.Errorf("/readyz once the table is back: %d %v", code, body)
	}
	if _, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: key, Plaintext: []byte("x")}); err != nil {
		t.Fatalf("the first Encrypt once the table is back: %v", err)
	}
	aliases, err := c.ListAliases(ctx, &kms.ListAliasesInput{KeyId: key})
	if err != nil {
		t.Fatal(err)
	}
	if len(aliases.Aliases) != 0 {
		t.Errorf("a call refused for want of its record made %s", aws.ToString(aliases.Aliases[0].AliasName))
	}
	var refused int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM kms_audit_records WHERE line LIKE '%"eventName":"Encrypt"%' AND line LIKE '%"errorCode":"KMSInternalException"%'`).Scan(&refused); err != nil {
		t.Fatal(err)
	}
	if refused != 0 {
		t.Errorf("%d refusals of Encrypt recorded, want none: those made while the table was away could not be, and none came after", refused)
	}
}

// --audit-sync takes always or interval, and interval only for a trail in
// a file; anything else stops the server at start with one clear line.
func TestAuditSyncModeIsChecked(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--audit-sync=sometimes"}, `--audit-sync is always or interval, not "sometimes"`},
		{[]string{"--audit-sync=interval", "--storage", "postgres://nobody@127.0.0.1:1/none"}, "--audit-sync=interval is for a trail in a file"},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		p := startProc(t, baseEnv(), append([]string{"server", "--dev", "--listen", "127.0.0.1:0", "--data-dir", dir}, tc.args...)...)
		code := p.wait(exitTimeout)
		if stderr := p.stderr.String(); code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %q", tc.args, code, stderr, tc.want)
		}
	}
}

// --auditor-accounts names account ids and --regions region names: an
// entry that is not one stops the start with a line naming it, before the
// data directory is made, rather than a server that lets no one the
// operator meant read every account's records. So does a --pprof-listen
// off loopback.
func TestListsAndProfilesAddressAreChecked(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--auditor-accounts", "12345"}, `--auditor-accounts: "12345" is not an account id`},
		{[]string{"--auditor-accounts", "111122223333,arn:aws:iam::444455556666:root"}, `--auditor-accounts: "arn:aws:iam::444455556666:root" is not an account id`},
		{[]string{"--regions", "eu-west-1,Mars", "--region", "eu-west-1"}, `--regions: "Mars" is not a region name`},
		{[]string{"--regions", "us-east-1", "--region", "eu-west-1"}, "--region eu-west-1 is not one of --regions"},
		{[]string{"--pprof-listen", "0.0.0.0:0"}, "refusing to serve profiles on a non-loopback address"},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		p := startProc(t, baseEnv(), append([]string{"server", "--dev", "--listen", "127.0.0.1:0", "--data-dir", dir}, tc.args...)...)
		code := p.wait(exitTimeout)
		if stderr := p.stderr.String(); code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %q", tc.args, code, stderr, tc.want)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%v: the refused start made the data directory (%v)", tc.args, err)
		}
	}
}

// A time, size or count given as 0 or less is refused at start, naming
// each such setting, rather than read as the server's default: from a
// flag, the environment or the config file alike.
func TestSettingsOutOfRangeAreRefused(t *testing.T) {
	t.Parallel()
	config := filepath.Join(t.TempDir(), "kms.yaml")
	if err := os.WriteFile(config, []byte("idle-timeout: 0s\nrate-burst: -5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env, args []string
		want      []string
	}{
		{nil, []string{"--read-timeout", "0"}, []string{"--read-timeout must be more than 0, not 0s"}},
		{nil, []string{"--max-connections", "0", "--shutdown-timeout", "-1s"}, []string{
			"--max-connections must be more than 0, not 0", "--shutdown-timeout must be more than 0, not -1s"}},
		{nil, []string{"--cache-max-age", "0s", "--max-clock-skew", "-5m"}, []string{
			"--cache-max-age must be more than 0, not 0s", "--max-clock-skew must be more than 0, not -5m0s"}},
		{nil, []string{"--key-quota", "0", "--audit-segment-bytes", "-1"}, []string{
			"--key-quota must be more than 0, not 0", "--audit-segment-bytes must be more than 0, not -1"}},
		{nil, []string{"--rate-limit", "-1"}, []string{"--rate-limit must be 0 (no limit) or a number of calls a second, not -1"}},
		{nil, []string{"--rate-limit", "NaN"}, []string{"--rate-limit must be 0 (no limit) or a number of calls a second, not NaN"}},
		{nil, []string{"--rate-limit", "+Inf"}, []string{"--rate-limit must be 0 (no limit) or a number of calls a second, not +Inf"}},
		{nil, []string{"--max-connections-per-source", "-2"}, []string{"--max-connections-per-source must be -1 (no limit)"}},
		{[]string{"KMS_WRITE_TIMEOUT=0s"}, nil, []string{"--write-timeout must be more than 0, not 0s"}},
		{nil, []string{"--config", config}, []string{"--idle-timeout must be more than 0, not 0s", "--rate-burst must be more than 0, not -5"}},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		p := startProc(t, baseEnv(tc.env...), append([]string{"server", "--dev", "--listen", "127.0.0.1:0", "--data-dir", dir}, tc.args...)...)
		code := p.wait(exitTimeout)
		stderr := p.stderr.String()
		for _, w := range tc.want {
			if code == 0 || !strings.Contains(stderr, w) {
				t.Errorf("%v %v: exit %d, stderr %q; want %q", tc.env, tc.args, code, stderr, w)
			}
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%v %v: the refused start made the data directory (%v)", tc.env, tc.args, err)
		}
	}
}

// TestPprofListen: --pprof-listen serves Go's runtime profiles on its own
// loopback address, a CPU profile among them, and nothing of them beside
// the API; not the command line, and not on another address.
func TestPprofListen(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir(), baseEnv(), "--dev", "--pprof-listen", "127.0.0.1:0")
	pprofURL := s.servedURL(t, "profiles served") // http://host:port/debug/pprof/
	get := func(url string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}
	if code, body := get(pprofURL); code != http.StatusOK || !strings.Contains(string(body), "goroutine") {
		t.Fatalf("/debug/pprof/: %d %.200s", code, body)
	}
	code, body := get(pprofURL + "profile?seconds=1")
	if code != http.StatusOK || len(body) < 2 || body[0] != 0x1f || body[1] != 0x8b {
		t.Fatalf("CPU profile: %d, %d bytes, not gzip", code, len(body))
	}
	if code, _ := get(s.URL + "/debug/pprof/"); code == http.StatusOK {
		t.Error("/debug/pprof/ is served on the API address")
	}
	// The command line may hold --root-key: it is not served.
	if code, body := get(pprofURL + "cmdline"); code == http.StatusOK {
		t.Errorf("/debug/pprof/cmdline is served: %.200s", body)
	}
	// Profiles are for an operator on the machine: another address is refused.
	code, _, stderr := runToExit(t, baseEnv(), "server", "--dev", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--pprof-listen", "0.0.0.0:0")
	if code == 0 || !strings.Contains(stderr, "refusing to serve profiles on a non-loopback address") {
		t.Errorf("--pprof-listen 0.0.0.0:0: exit %d, stderr %q", code, stderr)
	}
}

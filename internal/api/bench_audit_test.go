package api_test

import (
	"encoding/base64"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/openkms/kms/internal/api"
	"github.com/openkms/kms/internal/audit"
)

// BenchmarkEncryptAudited is BenchmarkEncrypt with an audit trail in a
// temp file: every call waits for its record to be written and fsynced
// (shared with concurrent calls by group commit). Compare the two to see
// what the trail costs:
//
//	go test -run XXX -bench 'Encrypt(Audited)?$' ./internal/api
func BenchmarkEncryptAudited(b *testing.B) { benchEncryptAudited(b, 1) }

// BenchmarkEncryptAuditedManyClients runs 16 callers per CPU, as a busy
// server has many more requests in flight than CPUs: group commit then
// shares each fsync among them.
func BenchmarkEncryptAuditedManyClients(b *testing.B) { benchEncryptAudited(b, 16) }

func benchEncryptAudited(b *testing.B, parallelism int) {
	h, keyID := benchHandler(b)
	trail, err := audit.Open(filepath.Join(b.TempDir(), "audit.log"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { trail.Close() })
	var handler http.Handler = h.(*api.Handler).WithAudit(audit.NewLogRecorder(trail), "us-east-1")
	pt := base64.StdEncoding.EncodeToString(make([]byte, 32))
	payload := []byte(`{"KeyId":"` + keyID + `","Plaintext":"` + pt + `","EncryptionContext":{"purpose":"bench"}}`)
	hdr := signedHeaders(b, "Encrypt", payload)
	serve(b, handler, "Encrypt", payload, hdr) // warm the key cache
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	b.SetParallelism(parallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			serve(b, handler, "Encrypt", payload, hdr)
		}
	})
}

package policy_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/openkms/kms/internal/policy"
)

// statements is a policy document of as many statements made by stmt as
// fit in limit bytes.
func statements(limit int, stmt func(i int) string) string {
	var sts []string
	n := 0
	for i := 0; ; i++ {
		s := stmt(i)
		if n+len(s)+1 > limit {
			break
		}
		sts = append(sts, s)
		n += len(s) + 1
	}
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(sts, ",") + `]}`
}

// MemSize is at least what parsing takes for the documents that take
// the most for their size: many small statements, long lists of short
// values, many condition keys, at a key policy's 32 KiB. Caches bound
// their memory by it.
func TestMemSizeBoundsParsedPolicies(t *testing.T) {
	const limit = 32 << 10
	principal := `"Principal":{"AWS":"arn:aws:iam::111122223333:root"}`
	for _, tc := range []struct {
		name string
		doc  string
	}{
		{"small statements", statements(limit, func(int) string {
			return `{"Effect":"Allow","Principal":"*","Action":"kms:a","Resource":"*"}`
		})},
		{"one-character patterns", statements(limit, func(int) string {
			return `{"Effect":"Allow",` + principal + `,"Action":"kms:a","Resource":"*","Condition":{"StringLike":{"kms:EncryptionContext:a":["` +
				strings.Repeat(`*","`, 1000) + `x"]}}}`
		})},
		{"many condition keys", statements(limit, func(int) string {
			var ks []string
			for j := range 300 {
				ks = append(ks, fmt.Sprintf(`"kms:EncryptionContext:%d":"x"`, j))
			}
			return `{"Effect":"Allow",` + principal + `,"Action":"kms:a","Resource":"*","Condition":{"StringEquals":{` + strings.Join(ks, ",") + `}}}`
		})},
		{"many actions", statements(limit, func(int) string {
			return `{"Effect":"Allow",` + principal + `,"Action":["` + strings.Repeat(`kms:*","`, 500) + `kms:*"],"Resource":"*"}`
		})},
		// Wildcard patterns keep an element a character, and an ARN
		// pattern six parts a value: many bytes a byte of text.
		{"alternating wildcards in actions", statements(limit, func(int) string {
			return `{"Effect":"Allow",` + principal + `,"Action":"kms:` + strings.Repeat("?a", 500) + `","Resource":"*"}`
		})},
		{"alternating wildcards in a condition", statements(limit, func(int) string {
			return `{"Effect":"Allow",` + principal + `,"Action":"kms:a","Resource":"*","Condition":{"StringLike":{"kms:EncryptionContext:a":"` +
				strings.Repeat("*a", 500) + `"}}}`
		})},
		{"empty ARN parts", statements(limit, func(int) string {
			return `{"Effect":"Allow",` + principal + `,"Action":"kms:a","Resource":"*","Condition":{"ArnLike":{"aws:SourceArn":[` +
				strings.Repeat(`":::::",`, 1000) + `":::::"]}}}`
		})},
		{"wildcard ARN parts", statements(limit, func(int) string {
			return `{"Effect":"Allow",` + principal + `,"Action":"kms:a","Resource":"*","Condition":{"ArnEquals":{"aws:SourceArn":[` +
				strings.Repeat(`"?:?:?:?:?:?",`, 500) + `"?:?:?:?:?:?"]}}}`
		})},
		{"addresses", statements(limit, func(int) string {
			return `{"Effect":"Allow",` + principal + `,"Action":"kms:a","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":["` +
				strings.Repeat(`1.2.3.4","`, 500) + `1.2.3.4"]}}}`
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 20
			held := make([]*policy.Policy, n)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for i := range held {
				p, err := policy.ParseResource(tc.doc)
				if err != nil {
					t.Fatal(err)
				}
				held[i] = p
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			took := int64(after.HeapAlloc-before.HeapAlloc) / n
			if est := int64(held[0].MemSize()); took > est {
				t.Errorf("a document of %d bytes takes %d bytes parsed; MemSize says %d", len(tc.doc), took, est)
			}
			runtime.KeepAlive(held)
		})
	}
	var nilPolicy *policy.Policy
	if nilPolicy.MemSize() != 0 {
		t.Error("a nil policy takes memory")
	}
}

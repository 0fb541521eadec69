package audit

import (
	"encoding/json"
	"testing"
)

// registryRow returns the line of entry seq of chain after an entry whose
// hash is prev, as register writes it, and its hash.
func registryRow(t testing.TB, seq uint64, chain, prev string) ([]byte, string) {
	entry, err := json.Marshal(registryEntry{Sequence: seq, Chain: chain, PrevHash: prev})
	if err != nil {
		t.Fatal(err)
	}
	hash := chainHash(prev, entry)
	ln, err := json.Marshal(registryLine{Hash: hash, Entry: entry})
	if err != nil {
		t.Fatal(err)
	}
	return ln, hash
}

func TestCheckRegistryRow(t *testing.T) {
	ln, hash := registryRow(t, 1, "a", genesis)
	if got, reason := checkRegistryRow(1, "a", ln, 1, genesis); reason != "" || got != hash {
		t.Fatalf("a valid entry: %q, %q", got, reason)
	}
	ln2, _ := registryRow(t, 2, "b", hash)
	for _, c := range []struct {
		name  string
		seq   int64
		chain string
		line  []byte
		want  uint64
		prev  string
	}{
		{"not JSON", 2, "b", []byte("{"), 2, hash},
		{"a gap", 3, "b", ln2, 2, hash},
		{"another chain's row", 2, "c", ln2, 2, hash},
		{"after another entry", 2, "b", ln2, 2, genesis},
		{"edited", 2, "b", []byte(string(ln2[:len(ln2)-3]) + `x"}}`), 2, hash},
	} {
		if _, reason := checkRegistryRow(c.seq, c.chain, c.line, c.want, c.prev); reason == "" {
			t.Errorf("%s: verified", c.name)
		}
	}
}

// FuzzRegistryRow feeds the registry's check what a database could hold:
// it must not panic, and accepts a row only if it is the entry expected.
func FuzzRegistryRow(f *testing.F) {
	ln, _ := registryRow(f, 1, "a", genesis)
	f.Add(int64(1), "a", ln)
	f.Add(int64(2), "b", []byte(`{"hash":"","entry":{}}`))
	f.Fuzz(func(t *testing.T, seq int64, chain string, line []byte) {
		hash, reason := checkRegistryRow(seq, chain, line, 1, genesis)
		if reason != "" {
			return
		}
		var l registryLine
		var e registryEntry
		if json.Unmarshal(line, &l) != nil || json.Unmarshal(l.Entry, &e) != nil || seq != 1 || e.Sequence != 1 ||
			e.Chain != chain || e.PrevHash != genesis || chainHash(genesis, l.Entry) != hash {
			t.Fatalf("accepted %d %q %q", seq, chain, line)
		}
	})
}

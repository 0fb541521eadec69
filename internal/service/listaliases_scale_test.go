package service_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/openkms/kms/internal/kmsapi"
)

// reads is how many records the store read in read-only transactions
// while fn ran.
func (e *env) reads(t *testing.T, fn func()) int64 {
	t.Helper()
	before := e.st.viewReads.Load()
	fn()
	return e.st.viewReads.Load() - before
}

// ListAliases of one key reads that key's aliases, not every alias of
// the account: an account with tens of thousands of aliases would
// otherwise pay for all of them on each call, a page at a time too.
func TestListAliasesOfOneKeyReadsItsAliasesOnly(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mine := e.createKey(t)
	const others = 300
	var other string
	for i := range others {
		if i%50 == 0 { // a key has at most 50 aliases
			other = e.createKey(t)
		}
		name := fmt.Sprintf("alias/other-%04d", i)
		if _, err := e.svc.CreateAlias(ctx, root, &kmsapi.AliasInput{AliasName: name, TargetKeyID: other}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"alias/a-mine", "alias/other-0150x", "alias/z-mine"} {
		if _, err := e.svc.CreateAlias(ctx, root, &kmsapi.AliasInput{AliasName: name, TargetKeyID: mine}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	n := e.reads(t, func() {
		var marker *string
		for {
			out, err := e.svc.ListAliases(ctx, root, &kmsapi.ListAliasesInput{KeyID: &mine, Limit: i32(2), Marker: marker})
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range out.Aliases {
				if a.TargetKeyID != mine {
					t.Errorf("alias %s targets %s, want %s", a.AliasName, a.TargetKeyID, mine)
				}
				got = append(got, a.AliasName)
			}
			if !out.Truncated {
				break
			}
			marker = &out.NextMarker
		}
	})
	if want := "[alias/a-mine alias/other-0150x alias/z-mine]"; fmt.Sprint(got) != want {
		t.Errorf("ListAliases of the key = %v, want %v", got, want)
	}
	// Two pages of a three-alias key: its index entries, their alias
	// and key records, and the key itself; far from the 303 aliases.
	if n > 40 {
		t.Errorf("listing a key's 3 aliases read %d records of an account with %d aliases", n, others+3)
	}
}

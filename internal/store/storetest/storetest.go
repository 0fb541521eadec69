// Package storetest is the conformance suite for store.Store: every
// implementation runs Run against a fresh, empty store.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/openkms/kms/internal/store"
)

// Run checks the store.Store contract. open must return a new, empty store;
// Run closes it.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	cases := map[string]func(t *testing.T, s store.Store){
		"GetMissing": func(t *testing.T, s store.Store) {
			err := s.View(ctx, func(tx store.Tx) error {
				_, err := tx.Get([]byte("nope"))
				return err
			})
			if !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("Get of a missing key: got %v, want ErrNotFound", err)
			}
		},
		"PutGetDelete": func(t *testing.T, s store.Store) {
			mustUpdate(t, s, func(tx store.Tx) error { return tx.Put([]byte("a"), []byte("1")) })
			if got := get(t, s, "a"); got != "1" {
				t.Fatalf("Get after Put = %q, want 1", got)
			}
			mustUpdate(t, s, func(tx store.Tx) error { return tx.Put([]byte("a"), []byte("2")) })
			if got := get(t, s, "a"); got != "2" {
				t.Fatalf("Get after overwrite = %q, want 2", got)
			}
			mustUpdate(t, s, func(tx store.Tx) error { return tx.Delete([]byte("a")) })
			mustUpdate(t, s, func(tx store.Tx) error { return tx.Delete([]byte("never-there")) })
			err := s.View(ctx, func(tx store.Tx) error { _, err := tx.Get([]byte("a")); return err })
			if !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
			}
		},
		"EmptyValue": func(t *testing.T, s store.Store) {
			mustUpdate(t, s, func(tx store.Tx) error { return tx.Put([]byte("e"), nil) })
			err := s.View(ctx, func(tx store.Tx) error {
				v, err := tx.Get([]byte("e"))
				if err != nil {
					return err
				}
				if len(v) != 0 {
					return fmt.Errorf("value %q, want empty", v)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		},
		"GetReturnsCopy": func(t *testing.T, s store.Store) {
			mustUpdate(t, s, func(tx store.Tx) error { return tx.Put([]byte("c"), []byte("abc")) })
			var v []byte
			s.View(ctx, func(tx store.Tx) error { v, _ = tx.Get([]byte("c")); return nil })
			v[0] = 'X'
			if got := get(t, s, "c"); got != "abc" {
				t.Fatalf("store changed through a returned slice: %q", got)
			}
		},
		"RollbackOnError": func(t *testing.T, s store.Store) {
			boom := errors.New("boom")
			err := s.Update(ctx, func(tx store.Tx) error {
				if err := tx.Put([]byte("r1"), []byte("x")); err != nil {
					return err
				}
				if err := tx.Put([]byte("r2"), []byte("y")); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("Update returned %v, want the function's error", err)
			}
			for _, k := range []string{"r1", "r2"} {
				err := s.View(ctx, func(tx store.Tx) error { _, err := tx.Get([]byte(k)); return err })
				if !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("%s survived a rolled-back transaction", k)
				}
			}
		},
		"ViewIsReadOnly": func(t *testing.T, s store.Store) {
			err := s.View(ctx, func(tx store.Tx) error { return tx.Put([]byte("w"), []byte("x")) })
			if err == nil {
				t.Fatal("Put inside View succeeded")
			}
		},
		"ScanPrefixOrderAfter": func(t *testing.T, s store.Store) {
			mustUpdate(t, s, func(tx store.Tx) error {
				for _, k := range []string{"p/3", "p/1", "q/1", "o/9", "p/2", "p", "p/10"} {
					if err := tx.Put([]byte(k), []byte("v"+k)); err != nil {
						return err
					}
				}
				return nil
			})
			check := func(prefix, after string, limit int, want ...string) {
				t.Helper()
				var got []string
				var a []byte
				if after != "" {
					a = []byte(after)
				}
				err := s.View(ctx, func(tx store.Tx) error {
					return tx.Scan([]byte(prefix), a, func(k, v []byte) (bool, error) {
						if string(v) != "v"+string(k) {
							return false, fmt.Errorf("value of %s is %s", k, v)
						}
						got = append(got, string(k))
						return len(got) < limit, nil
					})
				})
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("Scan(%q, after %q, limit %d) = %v, want %v", prefix, after, limit, got, want)
				}
			}
			check("p/", "", 100, "p/1", "p/10", "p/2", "p/3")
			check("p/", "p/10", 100, "p/2", "p/3")
			check("p/", "p/15", 100, "p/2", "p/3")
			check("p/", "", 2, "p/1", "p/10")
			check("p/", "p/3", 100)
			check("p/", "a", 100, "p/1", "p/10", "p/2", "p/3")
			check("z/", "", 100)
		},
		"ScanPrefixEdges": func(t *testing.T, s store.Store) {
			keys := []string{"a", "b/1", "\xfe\xff", "\xff", "\xff\xff", "\xff\xff\x01"}
			mustUpdate(t, s, func(tx store.Tx) error {
				for _, k := range keys {
					if err := tx.Put([]byte(k), []byte("v")); err != nil {
						return err
					}
				}
				return nil
			})
			for _, c := range []struct {
				prefix, after string
				want          []string
			}{
				{"", "", keys},
				{"", "b/1", keys[2:]},
				{"\xff", "", keys[3:]},
				{"\xff\xff", "", keys[4:]},
				{"\xff", "\xff\xff", keys[5:]},
				{"\xfe", "", keys[2:3]},
				{"\xfe", "\xff", nil},
				{"a", "b", nil},
				{"b/", "\xff", nil},
			} {
				if got := scanAll(t, s, c.prefix, c.after); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", c.want) {
					t.Errorf("Scan(%q, after %q) = %q, want %q", c.prefix, c.after, got, c.want)
				}
			}
		},
		"ScanManyKeys": func(t *testing.T, s store.Store) {
			// More than one batch of an implementation that reads in batches.
			const n = 600
			var want []string
			mustUpdate(t, s, func(tx store.Tx) error {
				tx.Put([]byte("m"), nil)
				tx.Put([]byte("n/1"), nil)
				for i := range n {
					k := fmt.Sprintf("m/%04d", i)
					want = append(want, k)
					if err := tx.Put([]byte(k), []byte(k)); err != nil {
						return err
					}
				}
				return nil
			})
			if got := scanAll(t, s, "m/", ""); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("Scan of %d keys returned %d, first %q", n, len(got), got[:min(3, len(got))])
			}
			if got := scanAll(t, s, "m/", "m/0299"); fmt.Sprint(got) != fmt.Sprint(want[300:]) {
				t.Fatalf("Scan after m/0299 returned %d keys, want %d", len(got), n-300)
			}
			calls := 0
			s.View(ctx, func(tx store.Tx) error {
				return tx.Scan([]byte("m/"), nil, func(k, v []byte) (bool, error) { calls++; return calls < 300, nil })
			})
			if calls != 300 {
				t.Fatalf("Scan called fn %d times after it returned false at 300", calls)
			}
		},
		"GetInsideScan": func(t *testing.T, s store.Store) {
			mustUpdate(t, s, func(tx store.Tx) error {
				for i := range 3 {
					tx.Put(fmt.Appendf(nil, "g/%d", i), fmt.Appendf(nil, "v%d", i))
					tx.Put(fmt.Appendf(nil, "h/%d", i), fmt.Appendf(nil, "w%d", i))
				}
				return nil
			})
			for _, update := range []bool{false, true} {
				var got []string
				fn := func(tx store.Tx) error {
					got = nil
					return tx.Scan([]byte("g/"), nil, func(k, v []byte) (bool, error) {
						other, err := tx.Get([]byte("h/" + string(k[2:])))
						got = append(got, string(v)+string(other))
						return true, err
					})
				}
				var err error
				if update {
					err = s.Update(ctx, fn)
				} else {
					err = s.View(ctx, fn)
				}
				if err != nil || fmt.Sprint(got) != "[v0w0 v1w1 v2w2]" {
					t.Fatalf("Get inside Scan (update %v): %v, %v", update, got, err)
				}
			}
		},
		"EmptyKey": func(t *testing.T, s store.Store) {
			if err := s.Update(ctx, func(tx store.Tx) error { return tx.Put(nil, []byte("x")) }); err == nil {
				t.Fatal("Put with an empty key succeeded")
			}
		},
		"ScanStopsOnError": func(t *testing.T, s store.Store) {
			mustUpdate(t, s, func(tx store.Tx) error {
				tx.Put([]byte("s/1"), nil)
				return tx.Put([]byte("s/2"), nil)
			})
			boom := errors.New("boom")
			n := 0
			err := s.View(ctx, func(tx store.Tx) error {
				return tx.Scan([]byte("s/"), nil, func(k, v []byte) (bool, error) { n++; return true, boom })
			})
			if !errors.Is(err, boom) || n != 1 {
				t.Fatalf("Scan error = %v after %d calls, want boom after 1", err, n)
			}
		},
		"ConcurrentUpdatesAreSerializable": func(t *testing.T, s store.Store) {
			mustUpdate(t, s, func(tx store.Tx) error { return tx.Put([]byte("n"), []byte("0")) })
			var wg sync.WaitGroup
			const workers, each = 8, 25
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range each {
						err := s.Update(ctx, func(tx store.Tx) error {
							v, err := tx.Get([]byte("n"))
							if err != nil {
								return err
							}
							var n int
							fmt.Sscan(string(v), &n)
							return tx.Put([]byte("n"), []byte(fmt.Sprint(n+1)))
						})
						if err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			if got := get(t, s, "n"); got != fmt.Sprint(workers*each) {
				t.Fatalf("counter = %s after %d increments: lost updates", got, workers*each)
			}
		},
		"CanceledContext": func(t *testing.T, s store.Store) {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			called := false
			err := s.Update(cctx, func(tx store.Tx) error { called = true; return nil })
			if err == nil || called {
				t.Fatalf("Update with a canceled context: err=%v called=%v", err, called)
			}
		},
	}
	for name, fn := range cases {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			defer s.Close()
			fn(t, s)
		})
	}
	t.Run("ClosedStore", func(t *testing.T) {
		s := open(t)
		s.Close()
		err := s.View(ctx, func(tx store.Tx) error { return nil })
		if !errors.Is(err, store.ErrClosed) {
			t.Fatalf("View after Close = %v, want ErrClosed", err)
		}
	})
}

func mustUpdate(t *testing.T, s store.Store, fn func(store.Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, s store.Store, key string) string {
	t.Helper()
	var out string
	err := s.View(context.Background(), func(tx store.Tx) error {
		v, err := tx.Get([]byte(key))
		out = string(v)
		return err
	})
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	return out
}

func scanAll(t *testing.T, s store.Store, prefix, after string) []string {
	t.Helper()
	var a []byte
	if after != "" {
		a = []byte(after)
	}
	var got []string
	err := s.View(context.Background(), func(tx store.Tx) error {
		return tx.Scan([]byte(prefix), a, func(k, _ []byte) (bool, error) {
			got = append(got, string(k))
			return true, nil
		})
	})
	if err != nil {
		t.Fatalf("Scan(%q, after %q): %v", prefix, after, err)
	}
	return got
}

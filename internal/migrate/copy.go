package migrate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"

	"github.com/openkms/kms/internal/store"
)

// maxBatchBytes bounds the keys and values one batch holds, so that a
// batch of large records stays a modest transaction.
const maxBatchBytes = 8 << 20

type record struct{ key, value []byte }

// readPage returns the next records of st under prefix after the key after
// (nil: from the first), in key order: at most limit records, and no more
// than maxBatchBytes of them unless the first alone is larger. Each page is
// its own read transaction; an empty page means there are no more.
func readPage(ctx context.Context, st store.Store, prefix, after []byte, limit int) ([]record, error) {
	var page []record
	err := st.View(ctx, func(tx store.Tx) error {
		page = page[:0]
		size := 0
		return tx.Scan(prefix, after, func(k, v []byte) (bool, error) {
			if len(page) > 0 && size+len(k)+len(v) > maxBatchBytes {
				return false, nil
			}
			page = append(page, record{bytes.Clone(k), bytes.Clone(v)})
			size += len(k) + len(v)
			return len(page) < limit, nil
		})
	})
	return page, err
}

// Copy copies every record of src to dst in key order, with one Update of
// dst per batch of at most batch records, and returns how many it copied.
// progress, if not nil, is called after each batch with the running total.
// Records already in dst under other keys stay; Run makes sure there are
// none.
func Copy(ctx context.Context, src, dst store.Store, batch int, progress func(copied int)) (int, error) {
	var after []byte
	n := 0
	for {
		page, err := readPage(ctx, src, nil, after, batch)
		if err != nil {
			return n, err
		}
		if len(page) == 0 {
			return n, nil
		}
		err = dst.Update(ctx, func(tx store.Tx) error {
			for _, r := range page {
				if err := tx.Put(r.key, r.value); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return n, err
		}
		n += len(page)
		after = page[len(page)-1].key
		if progress != nil {
			progress(n)
		}
	}
}

// Digest reads every record of st in key order and returns their number
// and a SHA-256 over them: for each record its key and its value, each
// preceded by its length as 8 bytes big-endian, so that no two different
// stores hash alike by shifting bytes between key and value. The record
// that marks a copy under way (store.UnfinishedCopyRecord) is left out.
func Digest(ctx context.Context, st store.Store, batch int) (n int, sum [sha256.Size]byte, err error) {
	h := sha256.New()
	var after []byte
	var length [8]byte
	for {
		page, err := readPage(ctx, st, nil, after, batch)
		if err != nil {
			return 0, sum, err
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			if bytes.Equal(r.key, store.UnfinishedCopyRecord) {
				n-- // a mark of the copy under way, not part of what it copies
				continue
			}
			binary.BigEndian.PutUint64(length[:], uint64(len(r.key)))
			h.Write(length[:])
			h.Write(r.key)
			binary.BigEndian.PutUint64(length[:], uint64(len(r.value)))
			h.Write(length[:])
			h.Write(r.value)
		}
		n += len(page)
		after = page[len(page)-1].key
	}
	h.Sum(sum[:0])
	return n, sum, nil
}

// isEmpty reports whether st holds no record.
func isEmpty(ctx context.Context, st store.Store) (bool, error) {
	page, err := readPage(ctx, st, nil, nil, 1)
	return len(page) == 0, err
}

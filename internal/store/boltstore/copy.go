package boltstore

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// copyRecords copies every record of src into dst, as bolt.Compact does
// (each bucket's pages filled, a commit every txMaxSize bytes), but
// checks ctx before each record and stops with its error once it ends:
// the copy of a large store takes seconds, and a server shutting down
// must not wait for it. What it committed to dst by then stays there;
// the caller removes dst. The store's file holds one level of buckets (a
// nested one is an error, not copied).
func copyRecords(ctx context.Context, dst, src *bolt.DB, txMaxSize int) error {
	return src.View(func(stx *bolt.Tx) error {
		return stx.ForEach(func(name []byte, from *bolt.Bucket) error {
			c := from.Cursor()
			k, v := c.First()
			for {
				err := dst.Update(func(dtx *bolt.Tx) error {
					to := dtx.Bucket(name)
					if to == nil {
						var err error
						if to, err = dtx.CreateBucket(name); err != nil {
							return err
						}
						if err := to.SetSequence(from.Sequence()); err != nil {
							return err
						}
					}
					to.FillPercent = 1
					for size := 0; k != nil && size < txMaxSize; k, v = c.Next() {
						if err := ctx.Err(); err != nil {
							return err
						}
						if v == nil {
							return fmt.Errorf("bucket %q holds a bucket, %q", name, k)
						}
						if err := to.Put(k, v); err != nil {
							return err
						}
						size += len(k) + len(v)
					}
					return nil
				})
				if err != nil || k == nil {
					return err
				}
			}
		})
	})
}

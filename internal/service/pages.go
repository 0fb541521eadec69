package service

import (
	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/store"
)

// Listings page through records in key order. A marker is opaque to
// clients: base64url of a version tag and the key suffix of the last item
// returned.

func pageLimit(limit *int32, def, max int) int {
	if limit == nil {
		return def
	}
	return min(int(*limit), max)
}

var errBadMarker = newErr(fault.InvalidMarker, "The marker is not valid. Pass the NextMarker of a previous response unchanged.")

func encodeMarker(last string) string { return base64URL.EncodeToString([]byte("m1:" + last)) }

func decodeMarker(m *string) (string, error) {
	if m == nil {
		return "", nil
	}
	b, err := base64URL.DecodeString(*m)
	if err != nil || len(b) < 4 || string(b[:3]) != "m1:" {
		return "", errBadMarker
	}
	return string(b[3:]), nil
}

// scanPage reads one page of a listing: the records under prefix after
// the marker position after (a key suffix, "" for the first page). decode
// turns a record into an item, or reports that it does not belong to the
// listing. It returns at most limit items and, when more belong after them,
// the marker of the next page.
func scanPage[T any](tx store.Tx, prefix []byte, after string, limit int, decode func(suffix string, v []byte) (T, bool, error)) (items []T, next string, err error) {
	var start []byte
	if after != "" {
		start = append(append([]byte(nil), prefix...), after...)
	}
	items = []T{}
	var last string
	err = tx.Scan(prefix, start, func(k, v []byte) (bool, error) {
		suffix := string(k[len(prefix):])
		item, ok, err := decode(suffix, v)
		if err != nil || !ok {
			return err == nil, err
		}
		if len(items) == limit {
			next = encodeMarker(last)
			return false, nil
		}
		items = append(items, item)
		last = suffix
		return true, nil
	})
	return items, next, err
}

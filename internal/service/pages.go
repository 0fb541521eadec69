package service

import (
	"bytes"
	"crypto/sha256"
	"strings"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/store"
)

// Listings page through records in key order. A marker is opaque to
// clients: base64url of a version tag, the key suffix of the last item
// returned, and a check that binds that position to the listing that gave
// it (the operation, and what it lists: an account's keys, one key's
// grants). A marker cut short, or given to another operation or to the
// same operation on another key, fails the check and is refused
// (InvalidMarkerException), not read as a position in this listing, where
// it would repeat or skip items. Markers of the form before the check
// ("m1:") are refused too: a client paging across an upgrade starts over.

func pageLimit(limit *int32, def, max int) int {
	if limit == nil {
		return def
	}
	return min(int(*limit), max)
}

var errBadMarker = newErr(fault.InvalidMarker, "The marker is not valid. Pass the NextMarker of a previous response unchanged.")

// listing names what a marker is a position in: an operation and the
// scope it lists (account, region, key...).
type listing string

func newListing(op string, scope ...string) listing {
	return listing(op + "\x00" + strings.Join(scope, "\x00"))
}

const (
	markerTag     = "m2:"
	markerSumSize = 8
)

func (l listing) sum(last string) []byte {
	h := sha256.New()
	h.Write([]byte(l))
	h.Write([]byte{0})
	h.Write([]byte(last))
	return h.Sum(nil)[:markerSumSize]
}

func encodeMarker(l listing, last string) string {
	return base64URL.EncodeToString(append([]byte(markerTag+last), l.sum(last)...))
}

// pageMarker is a Marker checked for its form only: which listing it
// belongs to is checked by position, once the listing's scope is known
// (a key's, after the key is resolved).
type pageMarker struct {
	given bool
	last  string
	sum   []byte
}

// parseMarker checks the form of the Marker a request gave, if any.
func parseMarker(m *string) (pageMarker, error) {
	if m == nil {
		return pageMarker{}, nil
	}
	b, err := base64URL.DecodeString(*m)
	if err != nil || len(b) < len(markerTag)+1+markerSumSize || string(b[:len(markerTag)]) != markerTag {
		return pageMarker{}, errBadMarker
	}
	return pageMarker{given: true, last: string(b[len(markerTag) : len(b)-markerSumSize]), sum: b[len(b)-markerSumSize:]}, nil
}

// position is the key suffix after which the page begins in l: "" for
// the first page, errBadMarker for a marker another listing gave.
func (m pageMarker) position(l listing) (string, error) {
	if !m.given {
		return "", nil
	}
	if !bytes.Equal(m.sum, l.sum(m.last)) {
		return "", errBadMarker
	}
	return m.last, nil
}

// decodeMarker is parseMarker and position at once, for a listing whose
// scope is known before anything is resolved.
func decodeMarker(m *string, l listing) (string, error) {
	pm, err := parseMarker(m)
	if err != nil {
		return "", err
	}
	return pm.position(l)
}

// scanPage reads one page of listing l: the records under prefix after
// the marker position after (a key suffix, "" for the first page). decode
// turns a record into an item, or reports that it does not belong to the
// listing. It returns at most limit items and, when more belong after them,
// the marker of the next page.
func scanPage[T any](tx store.Tx, l listing, prefix []byte, after string, limit int, decode func(suffix string, v []byte) (T, bool, error)) (items []T, next string, err error) {
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
			next = encodeMarker(l, last)
			return false, nil
		}
		items = append(items, item)
		last = suffix
		return true, nil
	})
	return items, next, err
}

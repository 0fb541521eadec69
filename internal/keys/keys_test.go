package keys_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/openkms/kms/internal/keys"
)

var canonicalID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewIDIsVersion4(t *testing.T) {
	seen := make(map[keys.ID]bool)
	for i := 0; i < 1000; i++ {
		id := keys.NewID()
		if v := id[6] >> 4; v != 4 {
			t.Fatalf("%s: version nibble %x, want 4", id, v)
		}
		if variant := id[8] >> 6; variant != 0b10 {
			t.Fatalf("%s: variant bits %02b, want 10", id, variant)
		}
		if seen[id] {
			t.Fatalf("NewID repeated %s", id)
		}
		seen[id] = true
	}
}

func TestIDStringCanonical(t *testing.T) {
	for i := 0; i < 100; i++ {
		id := keys.NewID()
		s := id.String()
		if !canonicalID.MatchString(s) {
			t.Fatalf("String() = %q, not lowercase 8-4-4-4-12 version 4", s)
		}
	}

	id := keys.ID{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10}
	if got, want := id.String(), "01234567-89ab-cdef-fedc-ba9876543210"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}

// A multi-Region key id is told from a UUID by its 16 bytes alone (a
// ciphertext blob holds nothing else), and both forms round-trip.
func TestMultiRegionID(t *testing.T) {
	mrk := regexp.MustCompile(`^mrk-[0-9a-f]{12}0[0-9a-f]{19}$`)
	for i := 0; i < 100; i++ {
		id := keys.NewMultiRegionID()
		s := id.String()
		if !id.MultiRegion() || !mrk.MatchString(s) {
			t.Fatalf("NewMultiRegionID().String() = %q", s)
		}
		back, ok := keys.ParseID(s)
		if !ok || back != id {
			t.Fatalf("ParseID(%q) = %v, %v", s, back, ok)
		}
		if keys.NewID().MultiRegion() {
			t.Fatal("a UUID key id reads as multi-Region")
		}
	}
	for _, bad := range []string{
		"mrk-0123456789ab4def0123456789abcdef", // a UUID's version 4 where 0 must be
		"mrk-0123456789AB0DEF0123456789ABCDEF", // upper case
		"mrk-0123456789ab0def0123456789abcde",  // short
		"mrk-0123456789ab0def0123456789abcdeg", // not hex
	} {
		if _, ok := keys.ParseID(bad); ok {
			t.Errorf("ParseID(%q) succeeded", bad)
		}
	}
}

func TestParseIDRoundTrip(t *testing.T) {
	for i := 0; i < 100; i++ {
		id := keys.NewID()
		got, ok := keys.ParseID(id.String())
		if !ok || got != id {
			t.Fatalf("ParseID(%q) = %v, %v; want %v, true", id.String(), got, ok, id)
		}
	}
}

func TestParseIDUppercase(t *testing.T) {
	const lower = "1234abcd-ef01-4a2b-9c3d-abcdef012345"
	want, ok := keys.ParseID(lower)
	if !ok {
		t.Fatalf("ParseID(%q) failed", lower)
	}
	for _, s := range []string{strings.ToUpper(lower), "1234ABCD-ef01-4A2b-9C3d-AbCdEf012345"} {
		got, ok := keys.ParseID(s)
		if !ok || got != want {
			t.Errorf("ParseID(%q) = %v, %v; want %v, true", s, got, ok, want)
		}
		if got.String() != lower {
			t.Errorf("ParseID(%q).String() = %q, want %q", s, got.String(), lower)
		}
	}
}

func TestParseIDRejects(t *testing.T) {
	const good = "1234abcd-ef01-4a2b-9c3d-abcdef012345"
	if _, ok := keys.ParseID(good); !ok {
		t.Fatalf("ParseID(%q) rejected a valid id", good)
	}
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"no dashes", "1234abcdef014a2b9c3dabcdef012345"},
		{"one char short", good[:35]},
		{"one char long", good + "0"},
		{"trailing space", good + " "},
		{"leading space", " " + good},
		{"braces", "{" + good + "}"},
		{"urn prefix", "urn:uuid:" + good},
		{"non-hex letter", "1234abcg-ef01-4a2b-9c3d-abcdef012345"},
		{"non-hex last", "1234abcd-ef01-4a2b-9c3d-abcdef01234z"},
		{"space inside", "1234abcd-ef01-4a2b-9c3d-abcdef 12345"},
		{"dash in group", "1234abc--ef01-4a2b-9c3d-abcdef012345"},
		{"dash shifted left", "1234abc-def01-4a2b-9c3d-abcdef012345"},
		{"dash shifted right", "1234abcde-f01-4a2b-9c3d-abcdef012345"},
		{"dashes misplaced", "1234-abcd-ef01-4a2b9c3d-abcdef012345"},
		{"colon separators", "1234abcd:ef01:4a2b:9c3d:abcdef012345"},
		{"plus sign", "+234abcd-ef01-4a2b-9c3d-abcdef012345"},
		{"non-ascii", "1234abcd-ef01-4a2b-9c3d-abcdef0123\u00e9"},
		{"arn", "arn:aws:kms:us-east-1:111122223333:key/" + good},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if id, ok := keys.ParseID(tc.in); ok {
				t.Fatalf("ParseID(%q) = %v, true; want rejection", tc.in, id)
			}
		})
	}
}

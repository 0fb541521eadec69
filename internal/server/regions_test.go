package server

import (
	"slices"
	"strings"
	"testing"
)

func TestParseRegions(t *testing.T) {
	all, err := ParseRegions("", "us-east-1")
	if err != nil || !slices.Equal(all, PublicRegions) {
		t.Fatalf("no --regions = %v, %v; want every public region", all, err)
	}
	got, err := ParseRegions(" eu-west-1, us-east-1 ,eu-west-1", "eu-west-1")
	if err != nil || !slices.Equal(got, []string{"eu-west-1", "us-east-1"}) {
		t.Fatalf("a list with spaces and a repeat = %v, %v", got, err)
	}
	for _, tc := range []struct{ list, def, want string }{
		{"eu-west-1", "us-east-1", "--region us-east-1 is not one of --regions (eu-west-1)"},
		{"eu-west-1,Mars", "eu-west-1", `--regions: "Mars" is not a region name`},
		{"eu-west-1,", "eu-west-1", `--regions: "" is not a region name`},
		{"", "us_east_1", `--region: "us_east_1" is not a region name`},
	} {
		if _, err := ParseRegions(tc.list, tc.def); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseRegions(%q, %q) = %v; want an error containing %q", tc.list, tc.def, err, tc.want)
		}
	}
}

package server

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// PublicRegions are the regions of AWS's commercial partition ("aws"), as
// botocore's endpoints list them: what a server answers for unless
// --regions says otherwise.
var PublicRegions = []string{
	"af-south-1", "ap-east-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
	"ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4",
	"ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "ca-central-1", "ca-west-1", "eu-central-1",
	"eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1", "eu-west-2", "eu-west-3",
	"il-central-1", "me-central-1", "me-south-1", "mx-central-1", "sa-east-1", "us-east-1", "us-east-2",
	"us-west-1", "us-west-2",
}

var regionName = regexp.MustCompile(`^([a-z]+-){2,3}\d+$`)

// ParseRegions reads --regions: region names separated by commas; empty
// means PublicRegions. The default region must be one of them.
func ParseRegions(list, defaultRegion string) ([]string, error) {
	regions := PublicRegions
	if strings.TrimSpace(list) != "" {
		regions = nil
		for _, r := range strings.Split(list, ",") {
			r = strings.TrimSpace(r)
			if !regionName.MatchString(r) {
				return nil, fmt.Errorf("--regions: %q is not a region name (like us-east-1)", r)
			}
			if !slices.Contains(regions, r) {
				regions = append(regions, r)
			}
		}
	}
	if !regionName.MatchString(defaultRegion) {
		return nil, fmt.Errorf("--region: %q is not a region name (like us-east-1)", defaultRegion)
	}
	if !slices.Contains(regions, defaultRegion) {
		return nil, fmt.Errorf("--region %s is not one of --regions (%s)", defaultRegion, strings.Join(regions, ","))
	}
	return regions, nil
}

package e2e_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// TestE2EMarkerOfAnotherListing gives each paginated operation a
// NextMarker that it did not give: one cut short, one of another
// operation, one of the same operation on another key. Markers are
// opaque (reference §4.15): each is refused with InvalidMarkerException,
// never read as a position in this listing, which would repeat or skip
// items without a word.
func TestE2EMarkerOfAnotherListing(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := "arn:aws:iam::" + e2eAccount + ":root"
	k1, k2 := e.newKey(t), e.newKey(t)
	e.newKey(t)
	for _, k := range []string{k1, k2} {
		e.createAlias(t, "alias/"+k+"-a", k)
		e.createAlias(t, "alias/"+k+"-b", k)
		if _, err := e.client.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(k), Tags: []types.Tag{
			{TagKey: aws.String("a"), TagValue: aws.String("1")}, {TagKey: aws.String("b"), TagValue: aws.String("2")},
		}}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(root),
				RetiringPrincipal: aws.String(root), Operations: []types.GrantOperation{types.GrantOperationEncrypt}}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.client.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(k)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	one := aws.Int32(1)
	// list calls an operation with a marker and a page of one, and
	// returns its error and its NextMarker.
	type list func(marker *string) (*string, error)
	lists := map[string]list{
		"ListKeys": func(m *string) (*string, error) {
			out, err := e.client.ListKeys(ctx, &kms.ListKeysInput{Limit: one, Marker: m})
			return nextOf(out, err, func() *string { return out.NextMarker })
		},
		"ListAliases": func(m *string) (*string, error) {
			out, err := e.client.ListAliases(ctx, &kms.ListAliasesInput{Limit: one, Marker: m})
			return nextOf(out, err, func() *string { return out.NextMarker })
		},
		"ListRetirableGrants": func(m *string) (*string, error) {
			out, err := e.client.ListRetirableGrants(ctx, &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String(root), Limit: one, Marker: m})
			return nextOf(out, err, func() *string { return out.NextMarker })
		},
	}
	for name, k := range map[string]string{"1": k1, "2": k2} {
		lists["ListAliases/"+name] = func(m *string) (*string, error) {
			out, err := e.client.ListAliases(ctx, &kms.ListAliasesInput{KeyId: aws.String(k), Limit: one, Marker: m})
			return nextOf(out, err, func() *string { return out.NextMarker })
		}
		lists["ListGrants/"+name] = func(m *string) (*string, error) {
			out, err := e.client.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(k), Limit: one, Marker: m})
			return nextOf(out, err, func() *string { return out.NextMarker })
		}
		lists["ListResourceTags/"+name] = func(m *string) (*string, error) {
			out, err := e.client.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(k), Limit: one, Marker: m})
			return nextOf(out, err, func() *string { return out.NextMarker })
		}
		lists["ListKeyRotations/"+name] = func(m *string) (*string, error) {
			out, err := e.client.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(k), Limit: one, Marker: m})
			return nextOf(out, err, func() *string { return out.NextMarker })
		}
		lists["ListKeyPolicies/"+name] = func(m *string) (*string, error) {
			out, err := e.client.ListKeyPolicies(ctx, &kms.ListKeyPoliciesInput{KeyId: aws.String(k), Limit: one, Marker: m})
			return nextOf(out, err, func() *string { return out.NextMarker })
		}
	}
	markers := map[string]string{}
	for name, l := range lists {
		next, err := l(nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if next == nil {
			continue // ListKeyPolicies has one page
		}
		markers[name] = *next
		// Its own marker is taken.
		if _, err := l(next); err != nil {
			t.Fatalf("%s with its own marker: %v", name, err)
		}
	}
	for _, c := range []struct{ op, markerOf, cut string }{
		{"ListKeys", "ListKeys", "cut"},
		{"ListAliases", "ListAliases", "cut"},
		{"ListGrants/1", "ListGrants/1", "cut"},
		{"ListKeyRotations/1", "ListKeyRotations/1", "cut"},
		{"ListRetirableGrants", "ListRetirableGrants", "cut"},
		{"ListKeys", "ListAliases", ""},
		{"ListKeys", "ListKeyRotations/1", ""},
		{"ListAliases", "ListKeys", ""},
		{"ListAliases", "ListAliases/1", ""},
		{"ListAliases/2", "ListAliases/1", ""},
		{"ListGrants/2", "ListGrants/1", ""},
		{"ListGrants/1", "ListRetirableGrants", ""},
		{"ListRetirableGrants", "ListGrants/1", ""},
		{"ListResourceTags/2", "ListResourceTags/1", ""},
		{"ListKeyRotations/2", "ListKeyRotations/1", ""},
		{"ListKeyPolicies/1", "ListKeys", ""},
		{"ListKeyPolicies/1", "ListGrants/1", ""},
	} {
		m, ok := markers[c.markerOf]
		if !ok {
			t.Fatalf("%s gave no marker", c.markerOf)
		}
		if c.cut != "" {
			m = m[:len(m)-4] // still base64: three bytes fewer
		}
		_, err := lists[c.op](&m)
		if err == nil {
			t.Errorf("%s took the marker of %s %s", c.op, c.markerOf, c.cut)
			continue
		}
		expectAPIError(t, err, "InvalidMarkerException", "The marker is not valid. Pass the NextMarker of a previous response unchanged.")
		expectTyped[*types.InvalidMarkerException](t, err)
	}
}

// nextOf is the NextMarker of a listing's answer, or its error.
func nextOf[T any](out *T, err error, next func() *string) (*string, error) {
	if err != nil {
		return nil, err
	}
	return next(), nil
}

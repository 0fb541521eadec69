package e2e_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// ListAccessKeys, ListUserPolicies and ListRolePolicies answer a page at
// a time too, as AWS does: at most MaxItems, with IsTruncated and the
// Marker of the next page, which the SDKs' paginators follow.
func TestE2EIAMKeyAndPolicyListingsArePaged(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	if _, err := root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("alice")}); err != nil {
		t.Fatal(err)
	}
	var wantKeys []string
	for range 2 {
		out, err := root.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("alice")})
		if err != nil {
			t.Fatal(err)
		}
		wantKeys = append(wantKeys, aws.ToString(out.AccessKey.AccessKeyId))
	}
	slices.Sort(wantKeys)
	e.createRole(t, "ops", trustAccount)
	var wantPolicies []string
	for i := range 5 {
		name := fmt.Sprintf("p%d", i)
		doc := allowDoc("*", "kms:Decrypt")
		e.putUserPolicy(t, "alice", name, doc)
		if _, err := root.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("ops"), PolicyName: aws.String(name), PolicyDocument: aws.String(doc)}); err != nil {
			t.Fatal(err)
		}
		wantPolicies = append(wantPolicies, name)
	}

	first, err := root.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("alice"), MaxItems: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.AccessKeyMetadata) != 1 || !first.IsTruncated || first.Marker == nil {
		t.Fatalf("ListAccessKeys of MaxItems 1 over 2 keys: %d keys, IsTruncated %v, Marker %v; want 1, truncated, a marker",
			len(first.AccessKeyMetadata), first.IsTruncated, aws.ToString(first.Marker))
	}
	var gotKeys []string
	pages := 0
	for p := iam.NewListAccessKeysPaginator(root, &iam.ListAccessKeysInput{UserName: aws.String("alice"), MaxItems: aws.Int32(1)}); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, k := range out.AccessKeyMetadata {
			gotKeys = append(gotKeys, aws.ToString(k.AccessKeyId))
		}
	}
	if !slices.Equal(gotKeys, wantKeys) || pages != 2 {
		t.Errorf("ListAccessKeys pages of 1: %d pages, keys %v; want 2 pages, %v", pages, gotKeys, wantKeys)
	}

	var gotUser, gotRole []string
	pages = 0
	for p := iam.NewListUserPoliciesPaginator(root, &iam.ListUserPoliciesInput{UserName: aws.String("alice"), MaxItems: aws.Int32(2)}); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(out.PolicyNames) > 2 {
			t.Fatalf("a page of MaxItems 2 held %v", out.PolicyNames)
		}
		gotUser = append(gotUser, out.PolicyNames...)
	}
	if !slices.Equal(gotUser, wantPolicies) || pages != 3 {
		t.Errorf("ListUserPolicies pages of 2: %d pages, %v; want 3 pages, %v", pages, gotUser, wantPolicies)
	}
	for p := iam.NewListRolePoliciesPaginator(root, &iam.ListRolePoliciesInput{RoleName: aws.String("ops"), MaxItems: aws.Int32(3)}); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.PolicyNames) > 3 {
			t.Fatalf("a page of MaxItems 3 held %v", out.PolicyNames)
		}
		gotRole = append(gotRole, out.PolicyNames...)
	}
	if !slices.Equal(gotRole, wantPolicies) {
		t.Errorf("ListRolePolicies pages of 3: %v; want %v", gotRole, wantPolicies)
	}
	all, err := root.ListUserPolicies(ctx, &iam.ListUserPoliciesInput{UserName: aws.String("alice")})
	if err != nil || len(all.PolicyNames) != 5 || all.IsTruncated || all.Marker != nil {
		t.Errorf("ListUserPolicies without MaxItems: %+v, %v; want all 5, no marker", all, err)
	}
}

package e2e_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// ListUsers and ListRoles answer a page at a time, MaxItems (AWS's
// default 100) with IsTruncated and the Marker of the next, as AWS
// does: an account with thousands of users is not read and sent whole
// on each call, and the SDK's paginators walk every page in name order.
func TestE2EIAMListingsArePaged(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	const users, roles = 105, 12
	var wantUsers, wantRoles []string
	for i := range users {
		name := fmt.Sprintf("u%03d", i)
		if _, err := root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
		wantUsers = append(wantUsers, name)
	}
	for i := range roles {
		name := fmt.Sprintf("R%02d", i)
		if _, err := root.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trustAccount)}); err != nil {
			t.Fatal(err)
		}
		wantRoles = append(wantRoles, name)
	}

	first, err := root.ListUsers(ctx, &iam.ListUsersInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Users) != 100 || !first.IsTruncated || aws.ToString(first.Marker) == "" {
		t.Fatalf("ListUsers without MaxItems: %d users, IsTruncated %v, Marker %q; want AWS's page of 100, truncated, with a marker",
			len(first.Users), first.IsTruncated, aws.ToString(first.Marker))
	}
	var gotUsers []string
	pages := 0
	for p := iam.NewListUsersPaginator(root, &iam.ListUsersInput{MaxItems: aws.Int32(40)}); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(out.Users) > 40 {
			t.Fatalf("a page of MaxItems 40 held %d users", len(out.Users))
		}
		for _, u := range out.Users {
			gotUsers = append(gotUsers, aws.ToString(u.UserName))
		}
	}
	if !slices.Equal(gotUsers, wantUsers) || pages != 3 {
		t.Errorf("ListUsers pages of 40: %d pages, users %s\nwant 3 pages, %s", pages, strings.Join(gotUsers, ","), strings.Join(wantUsers, ","))
	}

	var gotRoles []string
	pages = 0
	for p := iam.NewListRolesPaginator(root, &iam.ListRolesInput{MaxItems: aws.Int32(5)}); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range out.Roles {
			gotRoles = append(gotRoles, aws.ToString(r.RoleName))
		}
	}
	if !slices.Equal(gotRoles, wantRoles) || pages != 3 {
		t.Errorf("ListRoles pages of 5: %d pages, roles %s\nwant 3 pages, %s", pages, strings.Join(gotRoles, ","), strings.Join(wantRoles, ","))
	}
	last, err := root.ListRoles(ctx, &iam.ListRolesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(last.Roles) != roles || last.IsTruncated || last.Marker != nil {
		t.Errorf("ListRoles of %d roles: %d roles, IsTruncated %v, Marker %v; want them all, no marker", roles, len(last.Roles), last.IsTruncated, last.Marker)
	}
}

// ListUsers and ListRoles with a PathPrefix list those whose path begins
// with it, a page at a time, as IAM does; "/" lists all.
func TestE2EIAMListingsByPathPrefix(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	var wantUsers, wantRoles []string
	for i := range 30 {
		name, path := fmt.Sprintf("u%02d", i), "/"
		if i%3 == 0 {
			name, path = fmt.Sprintf("u%02d-ops", i), "/division/ops/"
			wantUsers = append(wantUsers, name)
		}
		if _, err := root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name), Path: aws.String(path)}); err != nil {
			t.Fatal(err)
		}
		role, rpath := fmt.Sprintf("R%02d", i), "/service/"
		if i%2 == 0 {
			rpath = "/division/ops/"
			wantRoles = append(wantRoles, role)
		}
		if _, err := root.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(role), Path: aws.String(rpath), AssumeRolePolicyDocument: aws.String(trustAccount)}); err != nil {
			t.Fatal(err)
		}
	}
	var gotUsers, gotRoles []string
	for p := iam.NewListUsersPaginator(root, &iam.ListUsersInput{PathPrefix: aws.String("/division/"), MaxItems: aws.Int32(4)}); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range out.Users {
			gotUsers = append(gotUsers, aws.ToString(u.UserName))
		}
	}
	for p := iam.NewListRolesPaginator(root, &iam.ListRolesInput{PathPrefix: aws.String("/division/ops"), MaxItems: aws.Int32(4)}); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range out.Roles {
			gotRoles = append(gotRoles, aws.ToString(r.RoleName))
		}
	}
	if !slices.Equal(gotUsers, wantUsers) || !slices.Equal(gotRoles, wantRoles) {
		t.Errorf("by path prefix: users %v, want %v; roles %v, want %v", gotUsers, wantUsers, gotRoles, wantRoles)
	}
	all, err := root.ListUsers(ctx, &iam.ListUsersInput{PathPrefix: aws.String("/")})
	if err != nil || len(all.Users) < 30 {
		t.Fatalf("PathPrefix /: %v users, %v", len(all.Users), err)
	}
}

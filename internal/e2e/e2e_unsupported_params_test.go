package e2e_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
)

// TestUnsupportedRestrictionsAreRefused: a parameter that would narrow or
// bind what a session or an entity may do, and that the server does not
// implement, is refused, never dropped: a session asked for with
// PolicyArns must not come back with the role's full rights. Nothing is
// made by a refused call.
func TestUnsupportedRestrictionsAreRefused(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	e.createRole(t, "app", trustAccount)
	arn := aws.String(roleARNOf("app"))
	assumer := e.assumerSTS(t)
	const readOnly = "arn:aws:iam::aws:policy/ReadOnlyAccess"
	for _, tc := range []struct {
		name string
		in   sts.AssumeRoleInput
		msg  string
	}{
		{"Policy", sts.AssumeRoleInput{Policy: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}]}`)},
			"Session policies are not supported by this server."},
		{"PolicyArns", sts.AssumeRoleInput{PolicyArns: []ststypes.PolicyDescriptorType{{Arn: aws.String(readOnly)}}},
			"Session policies are not supported by this server."},
		{"Tags", sts.AssumeRoleInput{Tags: []ststypes.Tag{{Key: aws.String("team"), Value: aws.String("blue")}}},
			"Session tags are not supported by this server."},
		{"TransitiveTagKeys", sts.AssumeRoleInput{TransitiveTagKeys: []string{"team"}},
			"Session tags are not supported by this server."},
		{"ExternalId", sts.AssumeRoleInput{ExternalId: aws.String("partner-1234")},
			"External ids are not supported by this server."},
		{"SerialNumber and TokenCode", sts.AssumeRoleInput{SerialNumber: aws.String("arn:aws:iam::111122223333:mfa/alice"), TokenCode: aws.String("123456")},
			"MFA is not supported by this server."},
		{"TokenCode", sts.AssumeRoleInput{TokenCode: aws.String("123456")},
			"MFA is not supported by this server."},
		{"SourceIdentity", sts.AssumeRoleInput{SourceIdentity: aws.String("alice")},
			"Source identities are not supported by this server."},
		{"ProvidedContexts", sts.AssumeRoleInput{ProvidedContexts: []ststypes.ProvidedContext{{ProviderArn: aws.String("arn:aws:iam::aws:contextProvider/IdentityCenter"), ContextAssertion: aws.String("abcdefghijklmnopqrstuvwxyz")}}},
			"Context assertions are not supported by this server."},
	} {
		t.Run("AssumeRole "+tc.name, func(t *testing.T) {
			in := tc.in
			in.RoleArn, in.RoleSessionName = arn, aws.String("narrowed")
			out, err := assumer.AssumeRole(ctx, &in)
			expectIAMError(t, err, http.StatusBadRequest, "ValidationError", tc.msg)
			if err == nil {
				t.Errorf("a session was made, with the role's full rights: %s", aws.ToString(out.AssumedRoleUser.Arn))
			}
		})
	}
	// An empty list asks for nothing.
	if _, err := assumer.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: arn, RoleSessionName: aws.String("plain"),
		PolicyArns: []ststypes.PolicyDescriptorType{}, Tags: []ststypes.Tag{}}); err != nil {
		t.Errorf("AssumeRole with empty lists: %v", err)
	}

	root := e.rootIAM()
	boundary := aws.String("arn:aws:iam::aws:policy/ReadOnlyAccess")
	tags := []iamtypes.Tag{{Key: aws.String("team"), Value: aws.String("blue")}}
	const noBoundaries = "Permissions boundaries are not supported by this server."
	const noTags = "Tags on users and roles are not supported by this server."
	_, err := root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("bounded"), PermissionsBoundary: boundary})
	expectIAMError(t, err, http.StatusBadRequest, "ValidationError", noBoundaries)
	_, err = root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("bounded"), Tags: tags})
	expectIAMError(t, err, http.StatusBadRequest, "ValidationError", noTags)
	_, err = root.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("bounded")})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "")
	_, err = root.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("bounded"), AssumeRolePolicyDocument: aws.String(trustAccount), PermissionsBoundary: boundary})
	expectIAMError(t, err, http.StatusBadRequest, "ValidationError", noBoundaries)
	_, err = root.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("bounded"), AssumeRolePolicyDocument: aws.String(trustAccount), Tags: tags})
	expectIAMError(t, err, http.StatusBadRequest, "ValidationError", noTags)
	_, err = root.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("bounded")})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "")
}

package e2e_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// A role ARN names its role only as IAM writes it: with no region. One
// with a region, which IAM never gives, names no role, as it names no one
// in a policy: AssumeRole refuses it as it refuses a role that does not
// exist, whatever the role's trust policy says; the role's own ARN still
// works.
func TestSTSRoleARNWithARegionNamesNoRole(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	u := e.newUser(t, "assumer", allowDoc("*", "sts:AssumeRole"))
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + userARNOf("assumer") + `"},"Action":"sts:AssumeRole"}]}`
	if _, err := e.rootIAM().CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("ops"), AssumeRolePolicyDocument: aws.String(trust)}); err != nil {
		t.Fatal(err)
	}
	regional := "arn:aws:iam:" + e2eRegion + ":" + e2eAccount + ":role/ops"
	_, err := u.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(regional), RoleSessionName: aws.String("s1")})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "User: "+userARNOf("assumer")+" is not authorized to perform: sts:AssumeRole on resource: "+regional)
	if _, err := u.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARNOf("ops")), RoleSessionName: aws.String("s2")}); err != nil {
		t.Fatalf("AssumeRole by the role's own ARN: %v", err)
	}
}

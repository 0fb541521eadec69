package main_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/chromedp/chromedp"

	"github.com/openkms/kms/internal/testsupport"
)

// TestConsoleIAMPage creates a user on the IAM page, gives it a password,
// an access key (whose secret is shown once, and which it deactivates) and
// an inline policy, and checks each through aws-sdk-go-v2.
func TestConsoleIAMPage(t *testing.T) {
	ctx := newBrowser(t, 3*time.Minute)
	dir := t.TempDir()
	s := startDev(t, dir)
	id, secret := devCredentials(t, dir)
	sdk := testCtx(t)
	rootIAM := iam.New(iam.Options{Region: s.Region, BaseEndpoint: aws.String(s.URL),
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""), RetryMaxAttempts: 1, HTTPClient: testsupport.SDKHTTPClient(nil)})

	const doc = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:ListKeys","Resource":"*"}]}`
	browse(t, ctx, "the IAM page",
		chromedp.Navigate(s.URL+"/console/"),
		signInWithKey(id, secret),
		visible(heading("Customer managed keys")),
		click(`//nav//a[normalize-space()="IAM"]`),
		visible(heading("IAM")),
		// The page is drawn once its lists have loaded: typing before that
		// could go to a field about to be replaced (CI once created "c").
		visible(`//p[normalize-space()="No roles."]`),
		typeInto(labelled("User name"), "carol"),
		click(button("Create user")),
		click(`//summary[normalize-space()="carol"]`),
		typeInto(labelled("New password for carol"), "Short1"),
		click(button("Set password")),
		visible(`//details[summary[normalize-space()="carol"]]//div[@role="alert"][contains(., "PasswordPolicyViolation")]`),
		chromedp.SetValue(labelled("New password for carol"), "Carol-Password-1"),
		click(button("Set password")),
		visible(`//div[@role="status"][normalize-space()="Password set for carol."]`),
		click(button("Create access key")),
		chromedp.WaitVisible(chromedp.CSS(`.secret`)),
		visible(`//details[summary[normalize-space()="carol"]]//li[starts-with(normalize-space(), "AKIA")][contains(., "(Active)")]`),
		click(`//details[summary[normalize-space()="carol"]]//button[starts-with(normalize-space(), "Deactivate AKIA")]`),
		visible(`//details[summary[normalize-space()="carol"]]//li[starts-with(normalize-space(), "AKIA")][contains(., "(Inactive)")]`),
		visible(`//details[summary[normalize-space()="carol"]]//button[starts-with(normalize-space(), "Activate AKIA")]`),
		typeInto(labelled("Policy name (carol)"), "list-keys"),
		chromedp.SetValue(labelled("Policy document (carol)"), doc),
		click(button("Put policy")),
		visible(button("Show list-keys")),
	)
	shown := read(t, ctx, "the new secret", chromedp.Text(chromedp.CSS(`.secret`)))

	if _, err := rootIAM.GetLoginProfile(sdk, &iam.GetLoginProfileInput{UserName: aws.String("carol")}); err != nil {
		t.Fatalf("GetLoginProfile: %v", err)
	}
	keys, err := rootIAM.ListAccessKeys(sdk, &iam.ListAccessKeysInput{UserName: aws.String("carol")})
	noErr(t, err, "ListAccessKeys")
	if len(keys.AccessKeyMetadata) != 1 || !strings.Contains(shown, aws.ToString(keys.AccessKeyMetadata[0].AccessKeyId)) || !strings.Contains(shown, "shown once") ||
		keys.AccessKeyMetadata[0].Status != "Inactive" {
		t.Fatalf("access keys %+v, the page showed %q", keys.AccessKeyMetadata, shown)
	}
	p, err := rootIAM.GetUserPolicy(sdk, &iam.GetUserPolicyInput{UserName: aws.String("carol"), PolicyName: aws.String("list-keys")})
	noErr(t, err, "GetUserPolicy")
	if !strings.Contains(aws.ToString(p.PolicyDocument), "kms%3AListKeys") && !strings.Contains(aws.ToString(p.PolicyDocument), "kms:ListKeys") {
		t.Fatalf("the policy is %s", aws.ToString(p.PolicyDocument))
	}
	// The secret is not shown again once the page is left.
	browse(t, ctx, "the IAM page again", goTo("#/keys"), visible(heading("Customer managed keys")), goTo("#/iam"), visible(heading("IAM")))
	if n := read(t, ctx, "secrets on the page", chromedp.Evaluate[int](`document.querySelectorAll(".secret").length`)); n != 0 {
		t.Fatalf("%d secrets shown after leaving the page", n)
	}
}

// TestConsoleIAMPageListsEveryPage: IAM lists users a page at a time (100
// by default, as AWS does); the IAM page follows the markers and shows
// the users past the first page too. A user's access keys and policies are
// read when the user is opened, not for every user whenever the page is
// shown (102 users made 204 calls, each in the audit trail).
func TestConsoleIAMPageListsEveryPage(t *testing.T) {
	ctx := newBrowser(t, 3*time.Minute)
	dir := t.TempDir()
	s := startDev(t, dir)
	id, secret := devCredentials(t, dir)
	sdk := testCtx(t)
	rootIAM := iam.New(iam.Options{Region: s.Region, BaseEndpoint: aws.String(s.URL),
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""), RetryMaxAttempts: 1, HTTPClient: testsupport.SDKHTTPClient(nil)})
	for i := range 102 {
		if _, err := rootIAM.CreateUser(sdk, &iam.CreateUserInput{UserName: aws.String(fmt.Sprintf("user%03d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	// More inline policies than a page of ListUserPolicies holds.
	const doc = `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"kms:X","Resource":"*"}]}`
	for i := range 101 {
		if _, err := rootIAM.PutUserPolicy(sdk, &iam.PutUserPolicyInput{UserName: aws.String("user051"),
			PolicyName: aws.String(fmt.Sprintf("p%03d", i)), PolicyDocument: aws.String(doc)}); err != nil {
			t.Fatal(err)
		}
	}
	browse(t, ctx, "the IAM page of 102 users",
		chromedp.Navigate(s.URL+"/console/"),
		signInWithKey(id, secret),
		visible(heading("Customer managed keys")),
		click(`//nav//a[normalize-space()="IAM"]`),
		visible(heading("IAM")),
		visible(`//summary[normalize-space()="user000"]`),
		visible(`//summary[normalize-space()="user101"]`),
		click(`//summary[normalize-space()="user050"]`),
		visible(`//details[summary[normalize-space()="user050"]]//li[normalize-space()="No access keys."]`),
		visible(`//details[summary[normalize-space()="user050"]]//li[normalize-space()="No inline policies."]`),
		click(`//summary[normalize-space()="user051"]`),
		visible(`//details[summary[normalize-space()="user051"]]//li[starts-with(normalize-space(), "p000")]`),
		visible(`//details[summary[normalize-space()="user051"]]//li[starts-with(normalize-space(), "p100")]`),
	)
	// Every call the console makes is logged as the API's are, one line
	// each, once it is answered.
	s.waitLog(regexp.MustCompile(`(?s)operation=ListAccessKeys .*operation=ListAccessKeys `), startTimeout)
	s.waitLog(regexp.MustCompile(`(?s)operation=ListUserPolicies .*operation=ListUserPolicies `), startTimeout)
	log := s.stderr.String()
	for _, op := range []string{"ListAccessKeys", "ListUserPolicies"} {
		if n := strings.Count(log, "operation="+op+" "); n != 2 {
			t.Errorf("%d %s calls for a page of 102 users with two opened, want 2", n, op)
		}
	}
}

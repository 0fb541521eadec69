package main_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/chromedp/chromedp"

	"github.com/openkms/kms/internal/testsupport"
)

// TestConsoleScreenshots writes screenshots of the console's main screens
// into the directory $KMS_CONSOLE_SCREENSHOTS; scripts/console-screenshots.sh
// runs it to regenerate those in docs/console/. It is a generator, not a
// check: without the variable it does nothing.
func TestConsoleScreenshots(t *testing.T) {
	out := os.Getenv("KMS_CONSOLE_SCREENSHOTS")
	if out == "" {
		t.Skip("KMS_CONSOLE_SCREENSHOTS names no directory to write screenshots into")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := newBrowser(t, 3*time.Minute)
	dir := t.TempDir()
	s := startDev(t, dir)
	consoleURL := s.URL + "/console/"
	id, secret := devCredentials(t, dir)
	sdk := testCtx(t)
	rootKMS := s.client(t)
	rootIAM := iam.New(iam.Options{Region: s.Region, BaseEndpoint: aws.String(s.URL),
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""), RetryMaxAttempts: 1, HTTPClient: testsupport.SDKHTTPClient(nil)})
	for _, name := range []string{"alice-admin", "bob-app"} {
		_, err := rootIAM.CreateUser(sdk, &iam.CreateUserInput{UserName: aws.String(name)})
		noErr(t, err, "CreateUser")
	}
	_, err := rootIAM.CreateRole(sdk, &iam.CreateRoleInput{RoleName: aws.String("batch-jobs"),
		AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}`)})
	noErr(t, err, "CreateRole")
	for _, k := range []struct {
		alias string
		spec  types.KeySpec
		usage types.KeyUsageType
	}{
		{"alias/orders", types.KeySpecSymmetricDefault, types.KeyUsageTypeEncryptDecrypt},
		{"alias/release-signing", types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify},
		{"alias/webhooks", types.KeySpecHmac256, types.KeyUsageTypeGenerateVerifyMac},
	} {
		c, err := rootKMS.CreateKey(sdk, &kms.CreateKeyInput{KeySpec: k.spec, KeyUsage: k.usage, Description: aws.String("example key")})
		noErr(t, err, "CreateKey")
		_, err = rootKMS.CreateAlias(sdk, &kms.CreateAliasInput{AliasName: aws.String(k.alias), TargetKeyId: c.KeyMetadata.KeyId})
		noErr(t, err, "CreateAlias")
	}

	shot := func(name string) step {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			b, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(out, name+".png"), b, 0o644)
		})
	}
	browse(t, ctx, "screens",
		chromedp.Navigate(consoleURL),
		visible(heading("Sign in")),
		shot("sign-in"),
		signInWithKey(id, secret),
		visible(`//td[normalize-space()="alias/webhooks"]`),
		shot("keys"),
		click(button("Create key")),
		click(button("Next")),
		typeInto(labelled("Alias"), "payments"),
		typeInto(labelled("Description"), "Card payment tokens"),
		click(button("Next")),
		click(choice("alice-admin (user)")),
		click(button("Next")),
		click(choice("bob-app (user)")),
		click(choice("batch-jobs (role)")),
		click(button("Next")),
		visible(labelled("Key policy")),
		shot("wizard-review"),
		click(button("Finish")),
		visible(heading("alias/payments")),
		visible(`//dt[normalize-space()="ARN"]`),
		shot("key-general"),
		click(`//button[@role="tab"][normalize-space()="Key policy"]`),
		visible(`//h2[normalize-space()="Key users"]`),
		shot("key-policy"),
		click(`//button[@role="tab"][normalize-space()="Key rotation"]`),
		click(button("Rotate now")),
		visible(`//button[@role="tab"][@aria-selected="true"][normalize-space()="Key rotation"]`),
		visible(`//td[normalize-space()="ON_DEMAND"]`),
		shot("key-rotation"),
		goTo("#/audit"),
		chromedp.WaitVisible(chromedp.CSS(`#chain-banner.banner-ok`)),
		shot("audit"),
		goTo("#/iam"),
		visible(`//summary[normalize-space()="alice-admin"]`),
		shot("iam"),
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		goTo("#/keys"),
		visible(`//td//a[normalize-space()="alias/payments"]`),
		shot("keys-phone"),
	)
}

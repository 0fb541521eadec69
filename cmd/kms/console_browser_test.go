package main_test

// The web console in a real browser: headless Chromium driven by chromedp
// against the built binary in --dev mode. A missing browser fails the
// test: the console is only tested where a browser runs it.

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
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

// browserPath finds Chromium or Chrome.
func browserPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium or Chrome on PATH: the console's browser tests need one (Debian package chromium; .ci/run installs it)")
	return ""
}

// newBrowser starts a headless browser for the test and returns its
// context, bounded by timeout.
func newBrowser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	// Chromium leaves files of its own in TMPDIR (org.chromium.Chromium.*)
	// when it is stopped; they go in a directory of the test's, removed
	// after the browser (a file a late child process still writes there
	// only outlives the removal).
	tmp, err := os.MkdirTemp("", "kms-browser-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browserPath(t)),
		chromedp.NoSandbox, // containers run the tests as root
		chromedp.WindowSize(1280, 800),
		chromedp.Env("TMPDIR="+tmp),
		chromedp.UserDataDir(filepath.Join(tmp, "profile")),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(cancelTimeout)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting the browser: %v", err)
	}
	return ctx
}

// XPath selectors by visible text.
func button(text string) string { return `//button[normalize-space()="` + text + `"]` }
func heading(text string) string {
	return `//h1[normalize-space()="` + text + `"]`
}

// labelled is the form control whose label reads text.
func labelled(text string) string { return `//*[@id=(//label[normalize-space()="` + text + `"]/@for)]` }

// choice is the checkbox or radio button inside the label reading text.
func choice(text string) string { return `//label[contains(normalize-space(), "` + text + `")]/input` }

// step is one browser action; a Search selector (a plain string) matches
// by XPath, CSS or text.
type step = chromedp.Action[chromedp.Void]

// stepTimeout bounds each step, so that a step waiting for something that
// never comes fails with its own name.
const stepTimeout = 20 * time.Second

func browse(t *testing.T, ctx context.Context, what string, steps ...step) {
	t.Helper()
	browseWithin(t, ctx, stepTimeout, what, steps...)
}

// browseWithin is browse with another bound on each step, for a page whose
// loading is itself the work under test (tens of MiB of records, on a
// machine loaded by the other tests).
func browseWithin(t *testing.T, ctx context.Context, within time.Duration, what string, steps ...step) {
	t.Helper()
	for i, s := range steps {
		sctx, cancel := context.WithTimeout(ctx, within)
		err := chromedp.Do(sctx, s)
		cancel()
		if err != nil {
			t.Fatalf("%s, step %d: %v\npage:\n%s", what, i+1, err, pageText(ctx))
		}
	}
}

// read runs an action that reads a value from the page.
func read[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		t.Fatalf("%s: %v\npage:\n%s", what, err, pageText(ctx))
	}
	return v
}

func pageText(ctx context.Context) string {
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, _ := chromedp.Run(short, chromedp.Text(chromedp.CSS("main")))
	return s
}

// goTo moves the page to another of its views by its fragment: a
// same-document navigation, which fires no load event to wait for.
func goTo(fragment string) step {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[string](`location.hash = "`+fragment+`"`)(ctx, tg)
		return err
	})
}

// setField sets the value of the control labelled label as a user's
// input would, with an input event.
func setField(label, value string) step {
	js, _ := json.Marshal([]string{label, value})
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](`((a) => {
			const l = [...document.querySelectorAll("label")].find((l) => l.textContent.trim() === a[0]);
			const e = document.getElementById(l.htmlFor);
			e.value = a[1];
			e.dispatchEvent(new Event("input", { bubbles: true }));
			return true;
		})(`+string(js)+`)`)(ctx, tg)
		return err
	})
}

func click(sel string) step          { return chromedp.Click(sel) }
func typeInto(sel, text string) step { return chromedp.SendKeys(sel, text) }
func visible(sel string) step        { return chromedp.WaitVisible(sel) }

func signInWithKey(id, secret string) step {
	return chromedp.Steps(
		visible(heading("Sign in")),
		click(choice("Access key")),
		typeInto(labelled("Access key ID"), id),
		typeInto(labelled("Secret access key"), secret),
		click(button("Sign in")),
	)
}

func signInWithPassword(account, user, password string) step {
	return chromedp.Steps(
		visible(heading("Sign in")),
		typeInto(labelled("Account ID"), account),
		typeInto(labelled("IAM user name"), user),
		typeInto(labelled("Password"), password),
		click(button("Sign in")),
	)
}

func TestConsoleInBrowser(t *testing.T) {
	ctx := newBrowser(t, 3*time.Minute)
	dir := t.TempDir()
	s := startDev(t, dir)
	consoleURL := s.URL + "/console/"
	if m := s.waitOutput(regexp.MustCompile(`web console at (\S+)\n`), startTimeout); m[1] != consoleURL {
		t.Fatalf("--dev prints the console's URL as %s, want %s", m[1], consoleURL)
	}
	id, secret := devCredentials(t, dir)
	sdk := testCtx(t)
	rootKMS := s.client(t)
	rootIAM := iam.New(iam.Options{Region: s.Region, BaseEndpoint: aws.String(s.URL),
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""), RetryMaxAttempts: 1, HTTPClient: testsupport.SDKHTTPClient(nil)})
	caller, err := rootIAM.GetUser(sdk, &iam.GetUserInput{})
	noErr(t, err, "GetUser")
	account := strings.Split(aws.ToString(caller.User.Arn), ":")[4]

	// Two users with passwords: the key's administrator, who may list the
	// account's keys, and its user, with an access key for the SDK.
	const password = "Console-Test-Pass-1"
	userARN := map[string]string{}
	for _, name := range []string{"key-admin", "key-user"} {
		u, err := rootIAM.CreateUser(sdk, &iam.CreateUserInput{UserName: aws.String(name)})
		noErr(t, err, "CreateUser %s", name)
		userARN[name] = aws.ToString(u.User.Arn)
		_, err = rootIAM.CreateLoginProfile(sdk, &iam.CreateLoginProfileInput{UserName: aws.String(name), Password: aws.String(password)})
		noErr(t, err, "CreateLoginProfile %s", name)
	}
	_, err = rootIAM.PutUserPolicy(sdk, &iam.PutUserPolicyInput{UserName: aws.String("key-admin"), PolicyName: aws.String("list-keys"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:ListKeys","kms:ListAliases"],"Resource":"*"}]}`)})
	noErr(t, err, "PutUserPolicy")
	userKey, err := rootIAM.CreateAccessKey(sdk, &iam.CreateAccessKeyInput{UserName: aws.String("key-user")})
	noErr(t, err, "CreateAccessKey")
	adminKey, err := rootIAM.CreateAccessKey(sdk, &iam.CreateAccessKeyInput{UserName: aws.String("key-admin")})
	noErr(t, err, "CreateAccessKey")
	clientOf := func(k *iam.CreateAccessKeyOutput) *kms.Client {
		return kms.New(kms.Options{Region: s.Region, BaseEndpoint: aws.String(s.URL), RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider(aws.ToString(k.AccessKey.AccessKeyId), aws.ToString(k.AccessKey.SecretAccessKey), ""), HTTPClient: testsupport.SDKHTTPClient(nil)})
	}

	// Sign in as the root and create a key through the wizard.
	browse(t, ctx, "sign in as the root",
		chromedp.Navigate(consoleURL),
		signInWithKey(id, secret),
		visible(heading("Customer managed keys")),
		visible(button("Create key")),
		visible(labelled("Filter keys")),
	)
	browse(t, ctx, "the wizard",
		click(button("Create key")),
		visible(heading("Create key")),
		visible(choice("Symmetric")), visible(choice("Asymmetric")), visible(choice("HMAC")),
		click(choice("Symmetric")),
		click(button("Next")),
		typeInto(labelled("Alias"), "payments"),
		typeInto(labelled("Description"), "made in the browser"),
		click(button("Add tag")),
		typeInto(labelled("Tag key 1"), "team"),
		typeInto(labelled("Tag value 1"), "billing"),
		click(button("Next")),
		visible(`//legend[normalize-space()="Key administrators"]`),
		click(choice("key-admin (user)")),
		click(button("Next")),
		visible(`//legend[normalize-space()="Key users"]`),
		click(choice("key-user (user)")),
		click(button("Next")),
		visible(labelled("Key policy")),
	)
	policyReview := read(t, ctx, "the reviewed policy", chromedp.Value(labelled("Key policy")))
	browse(t, ctx, "finish the wizard",
		click(button("Finish")),
		visible(heading("alias/payments")),
	)
	hash := read(t, ctx, "the key's address", chromedp.Evaluate[string](`location.hash`))
	keyID := strings.TrimPrefix(hash, "#/keys/")
	if !regexp.MustCompile(`^[0-9a-f-]{36}$`).MatchString(keyID) {
		t.Fatalf("the wizard ended at %q", hash)
	}

	// The key policy grants exactly what the wizard was told.
	got, err := rootKMS.GetKeyPolicy(sdk, &kms.GetKeyPolicyInput{KeyId: aws.String(keyID), PolicyName: aws.String("default")})
	noErr(t, err, "GetKeyPolicy")
	policy := aws.ToString(got.Policy)
	if !sameJSON(policy, policyReview) {
		t.Fatalf("the key's policy is not the one reviewed:\n%s\nreviewed:\n%s", policy, policyReview)
	}
	checkConsolePolicy(t, policy, "arn:aws:iam::"+account+":root", userARN["key-admin"], userARN["key-user"])
	desc, err := rootKMS.DescribeKey(sdk, &kms.DescribeKeyInput{KeyId: aws.String("alias/payments")})
	noErr(t, err, "DescribeKey alias/payments")
	if aws.ToString(desc.KeyMetadata.KeyId) != keyID || aws.ToString(desc.KeyMetadata.Description) != "made in the browser" {
		t.Fatalf("alias/payments is %+v", desc.KeyMetadata)
	}
	tags, err := rootKMS.ListResourceTags(sdk, &kms.ListResourceTagsInput{KeyId: aws.String(keyID)})
	noErr(t, err, "ListResourceTags")
	if len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].TagKey) != "team" || aws.ToString(tags.Tags[0].TagValue) != "billing" {
		t.Fatalf("tags %+v", tags.Tags)
	}
	// The user may use the key and not manage it; the administrator the reverse.
	_, err = clientOf(userKey).Encrypt(sdk, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("hi")})
	noErr(t, err, "Encrypt as the key user")
	_, err = clientOf(userKey).PutKeyPolicy(sdk, &kms.PutKeyPolicyInput{KeyId: aws.String(keyID), PolicyName: aws.String("default"), Policy: aws.String(policy)})
	if apiErrorCode(err) != "AccessDeniedException" {
		t.Fatalf("PutKeyPolicy as the key user: %v", err)
	}
	_, err = clientOf(adminKey).Encrypt(sdk, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("hi")})
	if apiErrorCode(err) != "AccessDeniedException" {
		t.Fatalf("Encrypt as the key administrator: %v", err)
	}

	// The description, from the General configuration tab.
	browse(t, ctx, "update the description",
		setField("New description", "payments, v2"),
		click(button("Update description")),
		visible(`//dd[normalize-space()="payments, v2"]`),
	)
	desc, err = rootKMS.DescribeKey(sdk, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
	noErr(t, err, "DescribeKey")
	if aws.ToString(desc.KeyMetadata.Description) != "payments, v2" {
		t.Fatalf("the description is %q", aws.ToString(desc.KeyMetadata.Description))
	}

	// Aliases and tags, from their tabs.
	browse(t, ctx, "aliases and tags",
		click(`//button[@role="tab"][normalize-space()="Aliases"]`),
		visible(`//li[starts-with(normalize-space(), "alias/payments")]`),
		typeInto(labelled("New alias"), "payments-v2"),
		click(button("Create alias")),
		visible(button("Delete alias/payments-v2")),
		click(button("Delete alias/payments")),
		chromedp.WaitNotPresent(button("Delete alias/payments")),
		click(`//button[@role="tab"][normalize-space()="Tags"]`),
		visible(`//td[normalize-space()="billing"]`),
		typeInto(labelled("Tag key"), "env"),
		typeInto(labelled("Tag value"), "prod"),
		click(button("Add tag")),
		visible(`//td[normalize-space()="prod"]`),
		click(button("Remove team")),
		chromedp.WaitNotPresent(`//td[normalize-space()="billing"]`),
	)
	aliases, err := rootKMS.ListAliases(sdk, &kms.ListAliasesInput{KeyId: aws.String(keyID)})
	noErr(t, err, "ListAliases")
	if len(aliases.Aliases) != 1 || aws.ToString(aliases.Aliases[0].AliasName) != "alias/payments-v2" {
		t.Fatalf("aliases after the tab: %+v", aliases.Aliases)
	}
	tags, err = rootKMS.ListResourceTags(sdk, &kms.ListResourceTagsInput{KeyId: aws.String(keyID)})
	noErr(t, err, "ListResourceTags")
	if len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].TagKey) != "env" {
		t.Fatalf("tags after the tab: %+v", tags.Tags)
	}
	// Put the alias back as it was: the rest of the test finds the key by it.
	_, err = rootKMS.DeleteAlias(sdk, &kms.DeleteAliasInput{AliasName: aws.String("alias/payments-v2")})
	noErr(t, err, "DeleteAlias")
	_, err = rootKMS.CreateAlias(sdk, &kms.CreateAliasInput{AliasName: aws.String("alias/payments"), TargetKeyId: aws.String(keyID)})
	noErr(t, err, "CreateAlias")
	browse(t, ctx, "back to the policy", click(`//button[@role="tab"][normalize-space()="General configuration"]`))

	// The editor holds the policy as GetKeyPolicy returns it, in AWS's
	// layout. A policy edit that is not JSON shows AWS's error and changes
	// nothing.
	browse(t, ctx, "open the policy editor",
		click(`//button[@role="tab"][normalize-space()="Key policy"]`),
		visible(`//h2[normalize-space()="Key administrators"]`),
		visible(`//li[normalize-space()="`+userARN["key-admin"]+`"]`),
		click(button("Edit policy as JSON")),
		visible(labelled("Key policy JSON")),
	)
	if inEditor := read(t, ctx, "the policy in the editor", chromedp.Value(labelled("Key policy JSON"))); inEditor != policy {
		t.Fatalf("the policy editor holds\n%s\nwant it as GetKeyPolicy returns it:\n%s", inEditor, policy)
	}
	browse(t, ctx, "edit the policy with invalid JSON",
		chromedp.SetValue(labelled("Key policy JSON"), `{"Version": "2012-10-17", "Statement": [`),
		click(button("Save changes")),
		chromedp.WaitVisible(chromedp.CSS(`#policy-error`)),
	)
	editError := read(t, ctx, "the policy error", chromedp.Text(chromedp.CSS(`#policy-error`)))
	if !strings.Contains(editError, "MalformedPolicyDocumentException") {
		t.Fatalf("the policy editor shows %q", editError)
	}
	got, err = rootKMS.GetKeyPolicy(sdk, &kms.GetKeyPolicyInput{KeyId: aws.String(keyID), PolicyName: aws.String("default")})
	noErr(t, err, "GetKeyPolicy")
	if aws.ToString(got.Policy) != policy {
		t.Fatalf("a refused edit changed the policy to\n%s", aws.ToString(got.Policy))
	}

	// A policy under the console's Sids that grants more than its lists
	// name is shown as JSON: here the use of the key to anyone, saved from
	// the editor in another layout and shown as the server returns it.
	const (
		sidRoot  = "Enable IAM User Permissions"
		sidAdmin = "Allow access for Key Administrators"
		sidUse   = "Allow use of the key"
		sidGrant = "Allow attachment of persistent resources"
	)
	widened := changePolicy(t, policy, inStatement(sidUse, func(st map[string]any) { st["Principal"] = "*" }))
	browse(t, ctx, "a policy that grants more than its lists",
		chromedp.SetValue(labelled("Key policy JSON"), widened),
		click(button("Save changes")),
		visible(`//div[@role="tabpanel"]//p[contains(., "not in the console's form")]`),
		visible(`//div[@role="tabpanel"]//pre[contains(., '"Principal" : "*"')]`),
		chromedp.WaitNotPresent(`//h2[normalize-space()="Key administrators"]`),
		chromedp.WaitNotPresent(`//h2[normalize-space()="Key users"]`),
	)
	got, err = rootKMS.GetKeyPolicy(sdk, &kms.GetKeyPolicyInput{KeyId: aws.String(keyID), PolicyName: aws.String("default")})
	noErr(t, err, "GetKeyPolicy")
	if !sameJSON(aws.ToString(got.Policy), widened) {
		t.Fatalf("the policy saved from the editor is\n%s\nwant\n%s", aws.ToString(got.Policy), widened)
	}
	shown := read(t, ctx, "the policy shown", chromedp.Evaluate[string](`document.querySelector('[role="tabpanel"] pre').textContent`))
	if shown != aws.ToString(got.Policy) {
		t.Fatalf("the Key policy tab shows\n%s\nwant it as GetKeyPolicy returns it:\n%s", shown, aws.ToString(got.Policy))
	}
	// So is every other change the lists would not show, while the policy
	// the wizard wrote is shown as lists.
	for _, tc := range []struct {
		what   string
		change func(doc map[string]any)
	}{
		{"a Deny", inStatement(sidAdmin, func(st map[string]any) { st["Effect"] = "Deny" })},
		{"an AWS principal of *", inStatement(sidUse, func(st map[string]any) { st["Principal"] = map[string]any{"AWS": "*"} })},
		{"an account id", inStatement(sidUse, func(st map[string]any) { st["Principal"] = map[string]any{"AWS": "999999999999"} })},
		{"another account's root", inStatement(sidRoot, func(st map[string]any) { st["Principal"] = map[string]any{"AWS": "arn:aws:iam::999999999999:root"} })},
		// A root in the lists would read as one principal, where it
		// names every principal of its account.
		{"the account's root as a key administrator", inStatement(sidAdmin, func(st map[string]any) {
			st["Principal"] = map[string]any{"AWS": "arn:aws:iam::" + account + ":root"}
		})},
		{"another account's root as a key user", func(doc map[string]any) {
			for _, sid := range []string{sidUse, sidGrant} {
				inStatement(sid, func(st map[string]any) { st["Principal"] = map[string]any{"AWS": "arn:aws:iam::999999999999:root"} })(doc)
			}
		}},
		{"every action for the users", inStatement(sidUse, func(st map[string]any) { st["Action"] = "kms:*" })},
		{"a NotAction", inStatement(sidUse, func(st map[string]any) { delete(st, "Action"); st["NotAction"] = "kms:Encrypt" })},
		{"a condition", inStatement(sidUse, func(st map[string]any) {
			st["Condition"] = map[string]any{"Bool": map[string]any{"aws:SecureTransport": "true"}}
		})},
		{"grants for another principal", inStatement(sidGrant, func(st map[string]any) { st["Principal"] = map[string]any{"AWS": userARN["key-admin"]} })},
		{"grants for any resource", inStatement(sidGrant, func(st map[string]any) { delete(st, "Condition") })},
		{"a statement of another Sid", inStatement(sidUse, func(st map[string]any) { st["Sid"] = "Allow more" })},
		{"a Sid twice", func(doc map[string]any) {
			doc["Statement"] = append(doc["Statement"].([]any), map[string]any{"Sid": sidUse, "Effect": "Allow",
				"Principal": map[string]any{"AWS": userARN["key-admin"]}, "Action": "kms:Decrypt", "Resource": "*"})
		}},
		{"the console's own policy", nil},
	} {
		doc := policy
		if tc.change != nil {
			doc = changePolicy(t, policy, tc.change)
		}
		js, _ := json.Marshal([]string{doc, account})
		lists := read(t, ctx, tc.what, chromedp.Evaluate[bool](`((a) => window.KMS.policyLists(a[0], a[1], "ENCRYPT_DECRYPT") !== null)(`+string(js)+`)`))
		if want := tc.change == nil; lists != want {
			t.Errorf("%s: shown as lists %v, want %v", tc.what, lists, want)
		}
	}
	_, err = rootKMS.PutKeyPolicy(sdk, &kms.PutKeyPolicyInput{KeyId: aws.String(keyID), PolicyName: aws.String("default"), Policy: aws.String(policy)})
	noErr(t, err, "PutKeyPolicy")

	// Rotation: enable it with a period, rotate now, see the history.
	browse(t, ctx, "rotation",
		click(`//button[@role="tab"][normalize-space()="Key rotation"]`),
		click(choice("Automatic key rotation")),
		chromedp.SetValue(labelled("Rotation period (in days)"), "180"),
		click(button("Save rotation settings")),
		visible(`//p[starts-with(normalize-space(), "Next rotation:")]`),
		click(button("Rotate now")),
		visible(`//td[normalize-space()="ON_DEMAND"]`),
	)
	rot, err := rootKMS.GetKeyRotationStatus(sdk, &kms.GetKeyRotationStatusInput{KeyId: aws.String(keyID)})
	noErr(t, err, "GetKeyRotationStatus")
	if !rot.KeyRotationEnabled || aws.ToInt32(rot.RotationPeriodInDays) != 180 {
		t.Fatalf("rotation after the console: enabled %v, period %v", rot.KeyRotationEnabled, aws.ToInt32(rot.RotationPeriodInDays))
	}
	rots, err := rootKMS.ListKeyRotations(sdk, &kms.ListKeyRotationsInput{KeyId: aws.String(keyID)})
	noErr(t, err, "ListKeyRotations")
	if len(rots.Rotations) != 1 || rots.Rotations[0].RotationType != types.RotationTypeOnDemand {
		t.Fatalf("rotations after Rotate now: %+v", rots.Rotations)
	}

	// Schedule the key's deletion, then cancel it.
	browse(t, ctx, "schedule deletion",
		click(button("Schedule key deletion")),
		chromedp.SetValue(labelled("Waiting period (in days)"), "7"),
		typeInto(labelled("To confirm, type delete"), "delete"),
		click(button("Schedule deletion")),
		visible(`//span[@id="key-state"][normalize-space()="PendingDeletion"]`),
	)
	d, err := rootKMS.DescribeKey(sdk, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
	noErr(t, err, "DescribeKey")
	if d.KeyMetadata.KeyState != types.KeyStatePendingDeletion || d.KeyMetadata.DeletionDate == nil ||
		d.KeyMetadata.DeletionDate.Sub(time.Now()).Round(time.Hour) != 7*24*time.Hour {
		t.Fatalf("after scheduling deletion: %s, deletion date %v", d.KeyMetadata.KeyState, d.KeyMetadata.DeletionDate)
	}
	browse(t, ctx, "cancel deletion",
		click(button("Cancel key deletion")),
		visible(`//span[@id="key-state"][normalize-space()="Disabled"]`),
		click(button("Enable")),
		visible(`//span[@id="key-state"][normalize-space()="Enabled"]`),
	)
	d, err = rootKMS.DescribeKey(sdk, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
	noErr(t, err, "DescribeKey")
	if d.KeyMetadata.KeyState != types.KeyStateEnabled {
		t.Fatalf("after cancelling deletion and enabling: %s", d.KeyMetadata.KeyState)
	}

	// The Audit page shows the calls, the console named as their agent,
	// and that the chain verifies.
	browse(t, ctx, "the Audit page",
		goTo("#/audit"),
		visible(heading("Audit")),
		chromedp.WaitVisible(chromedp.CSS(`#chain-banner.banner-ok`)),
	)
	banner := read(t, ctx, "the chain banner", chromedp.Text(chromedp.CSS(`#chain-banner`)))
	browse(t, ctx, "the Audit page's events",
		typeInto(labelled("Key"), keyID),
		visible(`//td[normalize-space()="ScheduleKeyDeletion"]`),
		visible(`//td[normalize-space()="CancelKeyDeletion"]`),
		visible(`//td[normalize-space()="CreateKey"]`),
		visible(`//tr[td[normalize-space()="PutKeyPolicy"] and td[normalize-space()="MalformedPolicyDocumentException"]]`),
		click(`//tr[td[normalize-space()="ScheduleKeyDeletion"]]//button[normalize-space()="View event"]`),
		visible(`//tr[td[normalize-space()="ScheduleKeyDeletion"]]//pre`),
	)
	events := read(t, ctx, "the event's JSON", chromedp.Text(`//tr[td[normalize-space()="ScheduleKeyDeletion"]]//pre`))
	future := time.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04")
	browse(t, ctx, "the Audit page's other filters",
		typeInto(labelled("Event name"), "CancelKey"),
		chromedp.WaitNotPresent(`//td[normalize-space()="ScheduleKeyDeletion"]`),
		visible(`//td[normalize-space()="CancelKeyDeletion"]`),
		typeInto(labelled("User"), "user/key-admin"),
		chromedp.WaitNotPresent(`//td[normalize-space()="CancelKeyDeletion"]`),
		setField("User", ""),
		visible(`//td[normalize-space()="CancelKeyDeletion"]`),
		setField("From (UTC)", future),
		visible(`//p[normalize-space()="0 matching events, newest first."]`),
	)
	if !strings.Contains(banner, "verifies") {
		t.Fatalf("chain banner: %q", banner)
	}
	if !strings.Contains(events, `"userAgent": "openkms-console/1"`) || !strings.Contains(events, keyID) {
		t.Fatalf("the ScheduleKeyDeletion event:\n%s", events)
	}

	// The administrator sees and may change the key, but not use it.
	browse(t, ctx, "the administrator",
		click(button("Sign out")),
		signInWithPassword(account, "key-admin", password),
		visible(heading("Customer managed keys")),
		visible(`//a[normalize-space()="alias/payments"]`),
		click(`//a[normalize-space()="alias/payments"]`),
		visible(heading("alias/payments")),
		typeInto(labelled("Plaintext"), "secret data"),
		click(button("Encrypt")),
		chromedp.WaitVisible(chromedp.CSS(`#encrypt-error`)),
	)
	encryptError := read(t, ctx, "the encrypt error", chromedp.Text(chromedp.CSS(`#encrypt-error`)))
	browse(t, ctx, "the administrator disables and enables the key",
		click(button("Disable")),
		visible(`//span[@id="key-state"][normalize-space()="Disabled"]`),
		click(button("Enable")),
		visible(`//span[@id="key-state"][normalize-space()="Enabled"]`),
	)
	if !strings.Contains(encryptError, "AccessDeniedException") {
		t.Fatalf("the administrator's encrypt shows %q", encryptError)
	}

	// A wrong password is refused in place.
	browse(t, ctx, "a wrong password",
		click(button("Sign out")),
		signInWithPassword(account, "key-user", "Not-The-Password-1"),
		visible(`//form//div[@role="alert"]`),
	)
	signInError := read(t, ctx, "the sign-in error", chromedp.Text(`//form//div[@role="alert"]`))
	if !strings.Contains(signInError, "incorrect") {
		t.Fatalf("a wrong password shows %q", signInError)
	}

	// The key user may use the key but neither read nor change its policy,
	// nor disable it.
	browse(t, ctx, "the key user",
		chromedp.SetValue(labelled("Password"), password), // the form keeps the other fields
		click(button("Sign in")),
		visible(heading("Customer managed keys")),
		// It may not list keys, but may open one it knows.
		visible(`//div[@role="alert"][contains(., "AccessDeniedException")]`),
		typeInto(labelled("Open a key by ID or alias"), keyID),
		click(button("Open key")),
		visible(heading(keyID)), // the user may not list aliases
		typeInto(labelled("Plaintext"), "card 4111"),
		click(button("Encrypt")),
		chromedp.WaitVisible(chromedp.CSS(`#encrypt-result`)),
		click(button("Disable")),
		visible(`//div[@role="alert"][contains(., "AccessDeniedException")]`),
		click(`//button[@role="tab"][normalize-space()="Key policy"]`),
		visible(`//div[@role="tabpanel"]//div[@role="alert"][contains(., "AccessDeniedException")]`),
	)
	d, err = rootKMS.DescribeKey(sdk, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
	noErr(t, err, "DescribeKey")
	if d.KeyMetadata.KeyState != types.KeyStateEnabled {
		t.Fatalf("after the key user's attempt to disable it: %s", d.KeyMetadata.KeyState)
	}

	// A user whose password must be reset chooses a new one at sign-in.
	_, err = rootIAM.CreateUser(sdk, &iam.CreateUserInput{UserName: aws.String("new-hire")})
	noErr(t, err, "CreateUser")
	_, err = rootIAM.CreateLoginProfile(sdk, &iam.CreateLoginProfileInput{UserName: aws.String("new-hire"),
		Password: aws.String("Temporary-Pass-1"), PasswordResetRequired: true})
	noErr(t, err, "CreateLoginProfile")
	browse(t, ctx, "a password reset at sign-in",
		click(button("Sign out")),
		signInWithPassword(account, "new-hire", "Temporary-Pass-1"),
		visible(labelled("New password")),
		typeInto(labelled("New password"), "Chosen-Pass-22"),
		typeInto(labelled("Confirm new password"), "Chosen-Pass-22"),
		click(button("Sign in")),
		visible(heading("Customer managed keys")),
		visible(`//span[@id="whoami"][contains(., "user/new-hire")]`),
	)
	lp, err := rootIAM.GetLoginProfile(sdk, &iam.GetLoginProfileInput{UserName: aws.String("new-hire")})
	noErr(t, err, "GetLoginProfile")
	if lp.LoginProfile.PasswordResetRequired {
		t.Fatal("the reset is still required after the user chose a password")
	}
}

// sameJSON reports whether a and b are the same JSON value.
func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

// changePolicy returns the JSON policy with change made to it.
func changePolicy(t *testing.T, policy string, change func(doc map[string]any)) string {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(policy), &doc); err != nil {
		t.Fatalf("policy: %v", err)
	}
	change(doc)
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// inStatement is the change to a policy of change to its statements of
// the Sid sid.
func inStatement(sid string, change func(st map[string]any)) func(doc map[string]any) {
	return func(doc map[string]any) {
		for _, st := range doc["Statement"].([]any) {
			if st := st.(map[string]any); st["Sid"] == sid {
				change(st)
			}
		}
	}
}

// checkConsolePolicy checks a console-style key policy: the root may
// delegate through IAM, admin alone may manage and not use, user alone may
// use and not manage.
func checkConsolePolicy(t *testing.T, policy, root, admin, user string) {
	t.Helper()
	var doc struct {
		Statement []struct {
			Sid       string
			Effect    string
			Principal struct{ AWS any }
			Action    any
		}
	}
	if err := json.Unmarshal([]byte(policy), &doc); err != nil {
		t.Fatalf("policy: %v", err)
	}
	list := func(v any) []string {
		switch v := v.(type) {
		case string:
			return []string{v}
		case []any:
			var out []string
			for _, x := range v {
				out = append(out, x.(string))
			}
			return out
		}
		return nil
	}
	seen := map[string]bool{}
	for _, st := range doc.Statement {
		seen[st.Sid] = true
		principals, actions := list(st.Principal.AWS), list(st.Action)
		if st.Effect != "Allow" {
			t.Errorf("statement %q: effect %s", st.Sid, st.Effect)
		}
		switch st.Sid {
		case "Enable IAM User Permissions":
			if !slices.Equal(principals, []string{root}) {
				t.Errorf("root statement names %v", principals)
			}
		case "Allow access for Key Administrators":
			if !slices.Equal(principals, []string{admin}) {
				t.Errorf("administrators %v, want [%s]", principals, admin)
			}
			for _, a := range actions {
				if a == "kms:Encrypt" || a == "kms:Decrypt" || strings.HasPrefix(a, "kms:GenerateDataKey") || a == "kms:*" {
					t.Errorf("administrators may %s", a)
				}
			}
		case "Allow use of the key", "Allow attachment of persistent resources":
			if !slices.Equal(principals, []string{user}) {
				t.Errorf("%s: users %v, want [%s]", st.Sid, principals, user)
			}
			for _, a := range actions {
				if a == "kms:PutKeyPolicy" || a == "kms:Put*" || a == "kms:ScheduleKeyDeletion" || a == "kms:*" {
					t.Errorf("users may %s", a)
				}
			}
		default:
			t.Errorf("unexpected statement %q", st.Sid)
		}
	}
	for _, sid := range []string{"Enable IAM User Permissions", "Allow access for Key Administrators", "Allow use of the key"} {
		if !seen[sid] {
			t.Errorf("no statement %q", sid)
		}
	}
}

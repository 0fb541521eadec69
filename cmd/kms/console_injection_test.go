package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
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

// markup is text that would run script, or add elements, if a page put it
// into HTML, an attribute, a template literal or a javascript: URL: each
// attempt sets window.ran. The IAM forms take only ASCII (their
// policy documents as JSON text, which escapes the rest).
const markup = `"'><img src=x onerror=window.ran=1></script><svg onload=window.ran=2>${window.ran=3}javascript:window.ran=4`

// unicodeMarkup adds a right-to-left override and a zero-width space.
const unicodeMarkup = markup + "\u202e\u200b"

// noInjection checks that nothing on the page ran or was added from text
// the server returned: no element that the console never makes, no
// script run, no inline script or handler refused by the
// Content-Security-Policy (which would have been a page that built HTML).
func noInjection(t *testing.T, ctx context.Context, where string) {
	t.Helper()
	got := read(t, ctx, where, chromedp.Evaluate[string](`JSON.stringify({
		ran: window.ran === undefined ? null : window.ran,
		elements: document.querySelectorAll("main img, main svg, main script, main iframe, main object, main embed, main a[href^='javascript']").length,
		violations: window.cspViolations || 0})`))
	if got != `{"ran":null,"elements":0,"violations":0}` {
		t.Fatalf("%s: text from the server was run or added as HTML: %s\npage:\n%s", where, got, pageText(ctx))
	}
}

// TestConsoleShowsInjectedTextAsText: what others wrote (a key's
// description, tags and policy, a user's path and inline policy) and what
// callers who never signed in sent (the user agent, the operation, the
// request's parameters, in the audit trail) is shown by the console as
// the text it is, on every page that shows it.
func TestConsoleShowsInjectedTextAsText(t *testing.T) {
	ctx := newBrowser(t, 3*time.Minute)
	dir := t.TempDir()
	s := startDev(t, dir)
	id, secret := devCredentials(t, dir)
	sdk := testCtx(t)
	rootIAM := iam.New(iam.Options{Region: s.Region, BaseEndpoint: aws.String(s.URL),
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""), RetryMaxAttempts: 1, HTTPClient: testsupport.SDKHTTPClient(nil)})
	caller, err := rootIAM.GetUser(sdk, &iam.GetUserInput{})
	noErr(t, err, "GetUser")
	account := strings.Split(aws.ToString(caller.User.Arn), ":")[4]

	quoted := jsonText(unicodeMarkup)
	// A policy document is ASCII text: the rest is written as escapes.
	policyQuoted := strings.NewReplacer("\u202e", `\u202e`, "\u200b", `\u200b`).Replace(string(quoted))
	policy := `{"Version":"2012-10-17","Statement":[
		{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":"kms:*","Resource":"*"},
		{"Sid":"text","Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:app":` + policyQuoted + `}}}]}`
	key, err := s.client(t).CreateKey(sdk, &kms.CreateKeyInput{Description: aws.String(unicodeMarkup), Policy: aws.String(policy),
		Tags: []types.Tag{{TagKey: aws.String(unicodeMarkup), TagValue: aws.String(unicodeMarkup)}}})
	noErr(t, err, "CreateKey")
	keyID := aws.ToString(key.KeyMetadata.KeyId)

	const path = `/"'><img/src=x/onerror=window.ran=5>/`
	_, err = rootIAM.CreateUser(sdk, &iam.CreateUserInput{UserName: aws.String("mallory"), Path: aws.String(path)})
	noErr(t, err, "CreateUser with a path of markup")
	asciiQuoted := jsonText(markup)
	_, err = rootIAM.PutUserPolicy(sdk, &iam.PutUserPolicyInput{UserName: aws.String("mallory"), PolicyName: aws.String("text"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"aws:UserAgent":` + string(asciiQuoted) + `}}}]}`)})
	noErr(t, err, "PutUserPolicy")

	// Calls of no one: a known operation with markup in its parameters,
	// and an unknown one named in markup, both with markup for their user
	// agent and a signature that does not verify.
	for _, target := range []string{"TrentService.DescribeKey", "TrentService." + unicodeMarkup} {
		body, _ := json.Marshal(map[string]string{"KeyId": unicodeMarkup})
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", target)
		req.Header.Set("User-Agent", unicodeMarkup)
		req.Header.Set("X-Amz-Date", time.Now().UTC().Format("20060102T150405Z"))
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAAAAAAAAAAAAAAAAA/20260101/"+s.Region+"/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature="+strings.Repeat("0", 64))
		resp, err := http.DefaultClient.Do(req)
		noErr(t, err, "an unsigned call")
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Fatalf("a call with a bad signature answered %d", resp.StatusCode)
		}
	}

	countViolations := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](`document.addEventListener("securitypolicyviolation", () => { window.cspViolations = (window.cspViolations || 0) + 1; }), true`)(ctx, tg)
		return err
	})
	browse(t, ctx, "sign in",
		chromedp.Navigate(s.URL+"/console/"),
		signInWithKey(id, secret),
		visible(heading("Customer managed keys")),
		countViolations,
		goTo("#/keys/"+keyID),
		visible(`//dd[contains(., "onerror=window.ran=1")]`),
	)
	noInjection(t, ctx, "the key's General configuration")
	if v := read(t, ctx, "the description's field", chromedp.Value(labelled("New description"))); v != unicodeMarkup {
		t.Fatalf("the description's field holds %q", v)
	}
	browse(t, ctx, "the key's tags",
		click(`//button[@role="tab"][normalize-space()="Tags"]`),
		visible(`//td[contains(., "onload=window.ran=2")]`),
	)
	noInjection(t, ctx, "the key's Tags")
	browse(t, ctx, "the key's policy",
		click(`//button[@role="tab"][normalize-space()="Key policy"]`),
		visible(`//pre[contains(., "javascript:window.ran=4")]`),
	)
	noInjection(t, ctx, "the key's Key policy")

	// A fragment that names no key is shown as the text it is.
	browse(t, ctx, "a key named in markup",
		goTo("#/keys/"+encodeFragment(markup)),
		visible(`//h1[contains(., "onerror=window.ran=1")]`),
	)
	noInjection(t, ctx, "a key named in markup")

	browse(t, ctx, "the IAM page",
		goTo("#/iam"),
		visible(heading("IAM")),
		click(`//summary[normalize-space()="mallory"]`),
		visible(`//p[contains(., "onerror=window.ran=5")]`),
		click(button("Show text")),
		visible(`//pre[contains(., "onerror=window.ran=1")]`),
	)
	noInjection(t, ctx, "the IAM page")

	browse(t, ctx, "the wizard's principals",
		goTo("#/create"),
		visible(heading("Create key")),
		click(button("Next")),
		click(button("Next")),
		visible(choice("mallory (user)")),
	)
	noInjection(t, ctx, "the wizard's principals")

	browse(t, ctx, "the Audit page",
		goTo("#/audit"),
		visible(heading("Audit")),
		visible(`//td[contains(., "onload=window.ran=2")]`),
	)
	views := read(t, ctx, "the events' buttons", chromedp.Evaluate[int](`(() => {
		const bs = [...document.querySelectorAll("#audit-table button")];
		bs.forEach((b) => b.click());
		return bs.length;
	})()`))
	if views == 0 {
		t.Fatal("the Audit page shows no events")
	}
	shown := read(t, ctx, "the events' JSON", chromedp.Evaluate[string](`[...document.querySelectorAll("#audit-table pre")].map((p) => p.textContent).join("\n")`))
	for _, field := range []string{`"userAgent": ` + string(quoted), `"keyId": ` + string(quoted)} {
		if !strings.Contains(shown, field) {
			t.Errorf("the events' JSON lacks %s", field)
		}
	}
	noInjection(t, ctx, "the Audit page")

	// A script of the page that put a string into it as HTML would be
	// refused (Trusted Types), not only the script in the string.
	if got := read(t, ctx, "a string set as HTML", chromedp.Evaluate[string](`(() => {
		try { document.createElement("div").innerHTML = "<b>text</b>"; return "set"; } catch (e) { return e.name; }
	})()`)); got != "TypeError" {
		t.Fatalf("a string set as HTML by the page's script: %s, want TypeError", got)
	}
}

// jsonText is s as a JSON string, as JSON.stringify writes it: <, > and &
// as themselves.
func jsonText(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// encodeFragment is encodeURIComponent for the ASCII text s.
func encodeFragment(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0 {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(string("0123456789abcdef"[c>>4])+string("0123456789abcdef"[c&15])))
		}
	}
	return b.String()
}

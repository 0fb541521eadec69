package main_test

import (
	"encoding/json"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/chromedp/chromedp"

	"github.com/openkms/kms/internal/testsupport"
)

// TestConsoleWizardKeyTypes makes an HMAC key, an asymmetric signing key
// and an ML-KEM key through the wizard, each with a role as its user, and
// checks the keys' specs, the actions their policies give the user, and
// the public key their pages show.
func TestConsoleWizardKeyTypes(t *testing.T) {
	ctx := newBrowser(t, 3*time.Minute)
	dir := t.TempDir()
	s := startDev(t, dir)
	id, secret := devCredentials(t, dir)
	sdk := testCtx(t)
	rootKMS := s.client(t)
	rootIAM := iam.New(iam.Options{Region: s.Region, BaseEndpoint: aws.String(s.URL),
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""), RetryMaxAttempts: 1, HTTPClient: testsupport.SDKHTTPClient(nil)})
	role, err := rootIAM.CreateRole(sdk, &iam.CreateRoleInput{RoleName: aws.String("signer"),
		AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}`)})
	noErr(t, err, "CreateRole")
	roleARN := aws.ToString(role.Role.Arn)

	browse(t, ctx, "sign in", chromedp.Navigate(s.URL+"/console/"), signInWithKey(id, secret), visible(heading("Customer managed keys")))
	for _, tc := range []struct {
		keyType, usage, spec, alias string
		userActions                 []string
	}{
		{"HMAC", "GENERATE_VERIFY_MAC", "HMAC_384", "macs", []string{"kms:DescribeKey", "kms:GenerateMac", "kms:VerifyMac"}},
		{"Asymmetric", "SIGN_VERIFY", "ECC_NIST_P256", "signing", []string{"kms:DescribeKey", "kms:GetPublicKey", "kms:Sign", "kms:Verify"}},
		{"Asymmetric", "ENCAPSULATE_DECAPSULATE", "ML_KEM_1024", "kem", []string{"kms:DescribeKey", "kms:GetPublicKey", "kms:Encapsulate", "kms:Decapsulate"}},
	} {
		browse(t, ctx, tc.keyType+" key",
			goTo("#/create"),
			visible(heading("Create key")),
			click(choice(tc.keyType)),
			click(choice(tc.usage)),
			chromedp.SetValue(labelled("Key spec"), tc.spec),
			click(button("Next")),
			typeInto(labelled("Alias"), tc.alias),
			click(button("Next")),
			click(button("Next")),
			click(choice("signer (role)")),
			click(button("Next")),
			visible(labelled("Key policy")),
			click(button("Finish")),
			visible(heading("alias/"+tc.alias)),
		)
		d, err := rootKMS.DescribeKey(sdk, &kms.DescribeKeyInput{KeyId: aws.String("alias/" + tc.alias)})
		noErr(t, err, "DescribeKey")
		if string(d.KeyMetadata.KeySpec) != tc.spec || string(d.KeyMetadata.KeyUsage) != tc.usage {
			t.Fatalf("%s key: %s %s, want %s %s", tc.keyType, d.KeyMetadata.KeySpec, d.KeyMetadata.KeyUsage, tc.spec, tc.usage)
		}
		p, err := rootKMS.GetKeyPolicy(sdk, &kms.GetKeyPolicyInput{KeyId: d.KeyMetadata.KeyId, PolicyName: aws.String("default")})
		noErr(t, err, "GetKeyPolicy")
		var doc struct {
			Statement []struct {
				Sid       string
				Principal struct{ AWS any }
				Action    any
			}
		}
		if err := json.Unmarshal([]byte(aws.ToString(p.Policy)), &doc); err != nil {
			t.Fatal(err)
		}
		var sids []string
		for _, st := range doc.Statement {
			sids = append(sids, st.Sid)
			if st.Sid == "Allow use of the key" {
				if !slices.Equal(toStrings(st.Principal.AWS), []string{roleARN}) {
					t.Errorf("%s key: users %v, want %s", tc.keyType, st.Principal.AWS, roleARN)
				}
				if !slices.Equal(toStrings(st.Action), tc.userActions) {
					t.Errorf("%s key: users may %v, want %v", tc.keyType, st.Action, tc.userActions)
				}
			}
		}
		// No administrators were chosen, and grants for AWS resources are
		// for symmetric keys only.
		if want := "Enable IAM User Permissions,Allow use of the key"; strings.Join(sids, ",") != want {
			t.Errorf("%s key: statements %v, want %s", tc.keyType, sids, want)
		}

		// An asymmetric key's page has a Public key tab: the key as PEM,
		// the one GetPublicKey gives, and the algorithms of its usage.
		publicTab := `//button[@role="tab"][normalize-space()="Public key"]`
		if tc.keyType != "Asymmetric" {
			if n := read(t, ctx, "the tabs", chromedp.Evaluate[int](`document.evaluate('count(`+publicTab+`)', document, null, XPathResult.NUMBER_TYPE, null).numberValue`)); n != 0 {
				t.Errorf("%s key: %d Public key tabs, want none", tc.keyType, n)
			}
			continue
		}
		pub, err := rootKMS.GetPublicKey(sdk, &kms.GetPublicKeyInput{KeyId: d.KeyMetadata.KeyId})
		noErr(t, err, "GetPublicKey")
		algorithm := map[string]string{"SIGN_VERIFY": "ECDSA_SHA_256", "ENCAPSULATE_DECAPSULATE": "ML_KEM"}[tc.usage]
		browse(t, ctx, tc.keyType+" key's public key", click(publicTab), visible(`//pre[@id="public-key-pem"]`), visible(`//dd[normalize-space()="`+algorithm+`"]`))
		shown := read(t, ctx, "the public key", chromedp.Text(chromedp.CSS(`#public-key-pem`)))
		if want := strings.TrimSpace(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub.PublicKey}))); strings.TrimSpace(shown) != want {
			t.Errorf("%s key: the Public key tab shows\n%s\nwant\n%s", tc.keyType, shown, want)
		}
	}
}

// toStrings reads a policy element that is a string or a list of them.
func toStrings(v any) []string {
	if s, ok := v.(string); ok {
		return []string{s}
	}
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			s, _ := x.(string)
			out = append(out, s)
		}
	}
	return out
}

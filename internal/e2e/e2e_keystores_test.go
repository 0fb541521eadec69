package e2e_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// Custom key stores do not exist on this server: their operations answer
// as AWS does for an account with none, after authorization, and never
// UnknownOperationException.
func TestE2ECustomKeyStores(t *testing.T) {
	t.Parallel()
	e, logPath := newAuditedEnv(t)
	ctx := context.Background()

	out, err := e.client.DescribeCustomKeyStores(ctx, &kms.DescribeCustomKeyStoresInput{})
	if err != nil {
		t.Fatalf("DescribeCustomKeyStores: %v", err)
	}
	if len(out.CustomKeyStores) != 0 || out.Truncated {
		t.Errorf("DescribeCustomKeyStores = %+v; want an empty list", out)
	}
	_, err = e.client.DescribeCustomKeyStores(ctx, &kms.DescribeCustomKeyStoresInput{CustomKeyStoreId: aws.String("cks-1234567890abcdef0")})
	expectTyped[*types.CustomKeyStoreNotFoundException](t, err)
	_, err = e.client.DescribeCustomKeyStores(ctx, &kms.DescribeCustomKeyStoresInput{CustomKeyStoreName: aws.String("mine")})
	expectTyped[*types.CustomKeyStoreNotFoundException](t, err)

	id := aws.String("cks-1234567890abcdef0")
	notFound := "Custom key store cks-1234567890abcdef0 does not exist in this account: this server does not support custom key stores."
	_, err = e.client.ConnectCustomKeyStore(ctx, &kms.ConnectCustomKeyStoreInput{CustomKeyStoreId: id})
	expectAPIError(t, err, "CustomKeyStoreNotFoundException", notFound)
	_, err = e.client.DisconnectCustomKeyStore(ctx, &kms.DisconnectCustomKeyStoreInput{CustomKeyStoreId: id})
	expectAPIError(t, err, "CustomKeyStoreNotFoundException", notFound)
	_, err = e.client.DeleteCustomKeyStore(ctx, &kms.DeleteCustomKeyStoreInput{CustomKeyStoreId: id})
	expectAPIError(t, err, "CustomKeyStoreNotFoundException", notFound)
	_, err = e.client.UpdateCustomKeyStore(ctx, &kms.UpdateCustomKeyStoreInput{CustomKeyStoreId: id, NewCustomKeyStoreName: aws.String("new")})
	expectAPIError(t, err, "CustomKeyStoreNotFoundException", notFound)

	_, err = e.client.CreateCustomKeyStore(ctx, &kms.CreateCustomKeyStoreInput{
		CustomKeyStoreName: aws.String("hsm"), CloudHsmClusterId: aws.String("cluster-2a23b4cdefg"),
		TrustAnchorCertificate: aws.String("cert"), KeyStorePassword: aws.String("kmsPswd1"),
	})
	ae := expectAPIErrorCode(t, err, "CloudHsmClusterNotFoundException")
	if ae != nil && strings.Contains(ae.ErrorMessage(), "kmsPswd1") {
		t.Errorf("the refusal echoes the key store password: %q", ae.ErrorMessage())
	}
	_, err = e.client.CreateCustomKeyStore(ctx, &kms.CreateCustomKeyStoreInput{
		CustomKeyStoreName: aws.String("xks"), CustomKeyStoreType: types.CustomKeyStoreTypeExternalKeyStore,
		XksProxyConnectivity: types.XksProxyConnectivityTypePublicEndpoint,
		XksProxyUriEndpoint:  aws.String("https://xks.example.com"), XksProxyUriPath: aws.String("/kms/xks/v1"),
		XksProxyAuthenticationCredential: &types.XksProxyAuthenticationCredentialType{
			AccessKeyId: aws.String("ABCDEFGHIJKLMNOPQRST"), RawSecretAccessKey: aws.String("c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"),
		},
	})
	expectAPIErrorCode(t, err, "XksProxyUriUnreachableException")
	_, err = e.client.CreateCustomKeyStore(ctx, &kms.CreateCustomKeyStoreInput{CustomKeyStoreName: aws.String("x"), CustomKeyStoreType: "NOPE"})
	expectAPIErrorPrefix(t, err, "ValidationException", "1 validation error detected: Value 'NOPE' at 'customKeyStoreType'")

	_, err = e.client.CreateKey(ctx, &kms.CreateKeyInput{CustomKeyStoreId: id})
	expectAPIError(t, err, "CustomKeyStoreNotFoundException", notFound)
	_, err = e.client.CreateKey(ctx, &kms.CreateKeyInput{CustomKeyStoreId: id, Origin: types.OriginTypeAwsCloudhsm})
	expectAPIError(t, err, "CustomKeyStoreNotFoundException", notFound)
	if keys := e.listAllKeys(t); len(keys) != 0 {
		t.Errorf("refused CreateKey calls made keys: %v", keys)
	}

	// A user without kms permissions is refused before learning anything.
	u := e.newUser(t, "nobody")
	_, err = u.kms.DescribeCustomKeyStores(ctx, &kms.DescribeCustomKeyStoresInput{})
	expectAPIErrorCode(t, err, "AccessDeniedException")
	_, err = u.kms.ConnectCustomKeyStore(ctx, &kms.ConnectCustomKeyStoreInput{CustomKeyStoreId: id})
	expectAPIErrorCode(t, err, "AccessDeniedException")

	// The trail names the store, never its password or proxy secret.
	_, raws := auditRecords(t, logPath)
	named := false
	for _, raw := range raws {
		s := string(raw)
		if strings.Contains(s, "kmsPswd1") || strings.Contains(s, "c2VjcmV0c2VjcmV0") {
			t.Errorf("an audit record holds a custom key store secret: %s", s)
		}
		named = named || strings.Contains(s, `"customKeyStoreId":"cks-1234567890abcdef0"`)
	}
	if !named {
		t.Error("no audit record names the custom key store id")
	}
}

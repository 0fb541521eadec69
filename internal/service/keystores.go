package service

import (
	"context"
	"regexp"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/kmsapi"
)

// Custom key stores (AWS CloudHSM and external key stores) do not exist on
// this server. Their operations are answered as AWS answers an account
// that has none: DescribeCustomKeyStores lists nothing, an operation on a
// named store is CustomKeyStoreNotFoundException, and CreateCustomKeyStore
// is refused with the error AWS gives when it cannot reach what the store
// would live on. Each is authorized first (IAM policy only, resource "*"),
// so that a caller without the permission learns nothing more.

var (
	customKeyStoreTypeEnum   = []string{"AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"}
	xksProxyConnectivityEnum = []string{"PUBLIC_ENDPOINT", "VPC_ENDPOINT_SERVICE"}
)

// The model's patterns of a custom key store's members, shown as it
// writes them and anchored to check.
const (
	cloudHsmClusterIDShown     = `cluster-[2-7a-zA-Z]{11,16}`
	xksURIEndpointShown        = `^https://[a-zA-Z0-9.-]+$`
	xksURIPathShown            = `^(/[a-zA-Z0-9\/_-]+/kms/xks/v\d{1,2})$|^(/kms/xks/v\d{1,2})$`
	xksVpcServiceNameShown     = `^(com|eu)\.amazonaws\.vpce\.([a-z]+-){2,3}\d+\.vpce-svc-[0-9a-z]+$`
	xksVpcServiceOwnerShown    = `[0-9]{12}`
	xksAccessKeyIDShown        = `^[A-Z2-7]+$`
	xksRawSecretAccessKeyShown = `^[a-zA-Z0-9\/+=]+$`
)

var (
	cloudHsmClusterIDPattern     = regexp.MustCompile(`^cluster-[2-7a-zA-Z]{11,16}$`)
	xksURIEndpointPattern        = regexp.MustCompile(xksURIEndpointShown)
	xksURIPathPattern            = regexp.MustCompile(xksURIPathShown)
	xksVpcServiceNamePattern     = regexp.MustCompile(xksVpcServiceNameShown)
	xksVpcServiceOwnerPattern    = regexp.MustCompile(`^[0-9]{12}$`)
	xksAccessKeyIDPattern        = regexp.MustCompile(xksAccessKeyIDShown)
	xksRawSecretAccessKeyPattern = regexp.MustCompile(xksRawSecretAccessKeyShown)
)

// keyStoreSettings checks the members CreateCustomKeyStore and
// UpdateCustomKeyStore share, as AWS's request validation does: the
// password and the proxy's credential are sensitive, and not echoed.
func (v *violations) keyStoreSettings(cluster, password, uriEndpoint, uriPath, vpcName, vpcOwner *string,
	cred *kmsapi.XksProxyAuthenticationCredential, connectivity string) {
	if cluster != nil {
		v.patterned("cloudHsmClusterId", *cluster, 19, 24, cloudHsmClusterIDPattern, cloudHsmClusterIDShown)
	}
	if password != nil {
		v.secretLen("keyStorePassword", *password, 7, 32)
	}
	for _, m := range []struct {
		field    string
		s        *string
		min, max int
		re       *regexp.Regexp
		shown    string
	}{
		{"xksProxyUriEndpoint", uriEndpoint, 10, 128, xksURIEndpointPattern, xksURIEndpointShown},
		{"xksProxyUriPath", uriPath, 10, 128, xksURIPathPattern, xksURIPathShown},
		{"xksProxyVpcEndpointServiceName", vpcName, 20, 64, xksVpcServiceNamePattern, xksVpcServiceNameShown},
		{"xksProxyVpcEndpointServiceOwner", vpcOwner, 12, 12, xksVpcServiceOwnerPattern, xksVpcServiceOwnerShown},
	} {
		if m.s != nil {
			v.patterned(m.field, *m.s, m.min, m.max, m.re, m.shown)
		}
	}
	if cred != nil {
		const c = "xksProxyAuthenticationCredential."
		if cred.AccessKeyID == "" {
			v.add("Value null at '%saccessKeyId' failed to satisfy constraint: Member must not be null", c)
		} else {
			v.secretLen(c+"accessKeyId", cred.AccessKeyID, 20, 30)
			v.secretPattern(c+"accessKeyId", cred.AccessKeyID, xksAccessKeyIDPattern, xksAccessKeyIDShown)
		}
		if cred.RawSecretAccessKey == "" {
			v.add("Value null at '%srawSecretAccessKey' failed to satisfy constraint: Member must not be null", c)
		} else {
			v.secretLen(c+"rawSecretAccessKey", cred.RawSecretAccessKey, 43, 64)
			v.secretPattern(c+"rawSecretAccessKey", cred.RawSecretAccessKey, xksRawSecretAccessKeyPattern, xksRawSecretAccessKeyShown)
		}
	}
	v.enum("xksProxyConnectivity", connectivity, xksProxyConnectivityEnum)
}

func errCustomKeyStoreNotFound(id string) error {
	return newErr(fault.CustomKeyStoreNotFound, "Custom key store %s does not exist in this account: this server does not support custom key stores.", id)
}

// CreateCustomKeyStore refuses to create a custom key store: this server
// has no CloudHSM clusters and does not connect to external key store
// proxies.
func (s *Service) CreateCustomKeyStore(ctx context.Context, caller Caller, in *kmsapi.CreateCustomKeyStoreInput) (*kmsapi.CreateCustomKeyStoreOutput, error) {
	v := newViolations(ctx)
	if v.required("customKeyStoreName", in.CustomKeyStoreName) {
		v.strLen("customKeyStoreName", in.CustomKeyStoreName, 1, 256)
	}
	v.enum("customKeyStoreType", in.CustomKeyStoreType, customKeyStoreTypeEnum)
	if in.TrustAnchorCertificate != nil {
		v.strLen("trustAnchorCertificate", *in.TrustAnchorCertificate, 1, 5000)
	}
	v.keyStoreSettings(in.CloudHsmClusterID, in.KeyStorePassword, in.XksProxyURIEndpoint, in.XksProxyURIPath,
		in.XksProxyVpcEndpointServiceName, in.XksProxyVpcEndpointServiceOwner, in.XksProxyAuthenticationCredential, in.XksProxyConnectivity)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := s.authz.Account(&caller, "kms:CreateCustomKeyStore", "*", nil); err != nil {
		return nil, err
	}
	if in.CustomKeyStoreType == "EXTERNAL_KEY_STORE" {
		return nil, newErr(fault.XksProxyUriUnreachable, "This server does not connect to external key store proxies: custom key stores are not supported.")
	}
	cluster := ""
	if in.CloudHsmClusterID != nil {
		cluster = *in.CloudHsmClusterID + " "
	}
	return nil, newErr(fault.CloudHsmClusterNotFound, "The CloudHSM cluster %sis not found: this server has no CloudHSM clusters and does not support custom key stores.", cluster)
}

// checkCustomKeyStoreID validates the id of a custom key store operation.
func checkCustomKeyStoreID(ctx context.Context, id string) error {
	v := newViolations(ctx)
	if v.required("customKeyStoreId", id) {
		v.strLen("customKeyStoreId", id, 1, 64)
	}
	return v.err()
}

// namedKeyStore answers an operation on one custom key store: there is none.
func (s *Service) namedKeyStore(ctx context.Context, caller Caller, action, id string) error {
	if err := checkCustomKeyStoreID(ctx, id); err != nil {
		return err
	}
	if err := s.authz.Account(&caller, action, "*", nil); err != nil {
		return err
	}
	return errCustomKeyStoreNotFound(id)
}

// ConnectCustomKeyStore answers CustomKeyStoreNotFoundException.
func (s *Service) ConnectCustomKeyStore(ctx context.Context, caller Caller, in *kmsapi.CustomKeyStoreIDInput) (*struct{}, error) {
	return nil, s.namedKeyStore(ctx, caller, "kms:ConnectCustomKeyStore", in.CustomKeyStoreID)
}

// DisconnectCustomKeyStore answers CustomKeyStoreNotFoundException.
func (s *Service) DisconnectCustomKeyStore(ctx context.Context, caller Caller, in *kmsapi.CustomKeyStoreIDInput) (*struct{}, error) {
	return nil, s.namedKeyStore(ctx, caller, "kms:DisconnectCustomKeyStore", in.CustomKeyStoreID)
}

// DeleteCustomKeyStore answers CustomKeyStoreNotFoundException.
func (s *Service) DeleteCustomKeyStore(ctx context.Context, caller Caller, in *kmsapi.CustomKeyStoreIDInput) (*struct{}, error) {
	return nil, s.namedKeyStore(ctx, caller, "kms:DeleteCustomKeyStore", in.CustomKeyStoreID)
}

// UpdateCustomKeyStore answers CustomKeyStoreNotFoundException.
func (s *Service) UpdateCustomKeyStore(ctx context.Context, caller Caller, in *kmsapi.UpdateCustomKeyStoreInput) (*struct{}, error) {
	v := newViolations(ctx)
	if v.required("customKeyStoreId", in.CustomKeyStoreID) {
		v.strLen("customKeyStoreId", in.CustomKeyStoreID, 1, 64)
	}
	v.optStrLen("newCustomKeyStoreName", in.NewCustomKeyStoreName, 1, 256)
	v.keyStoreSettings(in.CloudHsmClusterID, in.KeyStorePassword, in.XksProxyURIEndpoint, in.XksProxyURIPath,
		in.XksProxyVpcEndpointServiceName, in.XksProxyVpcEndpointServiceOwner, in.XksProxyAuthenticationCredential, in.XksProxyConnectivity)
	if err := v.err(); err != nil {
		return nil, err
	}
	return nil, s.namedKeyStore(ctx, caller, "kms:UpdateCustomKeyStore", in.CustomKeyStoreID)
}

// DescribeCustomKeyStores lists the account's custom key stores: none. A
// store asked for by id or name is CustomKeyStoreNotFoundException.
func (s *Service) DescribeCustomKeyStores(ctx context.Context, caller Caller, in *kmsapi.DescribeCustomKeyStoresInput) (*kmsapi.DescribeCustomKeyStoresOutput, error) {
	v := newViolations(ctx)
	v.optStrLen("customKeyStoreId", in.CustomKeyStoreID, 1, 64)
	v.optStrLen("customKeyStoreName", in.CustomKeyStoreName, 1, 256)
	v.paging(in.Limit, in.Marker)
	if err := v.err(); err != nil {
		return nil, err
	}
	if _, err := decodeMarker(in.Marker, newListing("DescribeCustomKeyStores", caller.AccountID)); err != nil {
		return nil, err
	}
	if err := s.authz.Account(&caller, "kms:DescribeCustomKeyStores", "*", nil); err != nil {
		return nil, err
	}
	switch {
	case in.CustomKeyStoreID != nil:
		return nil, errCustomKeyStoreNotFound(*in.CustomKeyStoreID)
	case in.CustomKeyStoreName != nil:
		return nil, newErr(fault.CustomKeyStoreNotFound, "Custom key store named %s does not exist in this account: this server does not support custom key stores.", *in.CustomKeyStoreName)
	}
	return &kmsapi.DescribeCustomKeyStoresOutput{CustomKeyStores: []kmsapi.CustomKeyStoresListEntry{}}, nil
}

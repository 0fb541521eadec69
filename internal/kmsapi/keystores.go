package kmsapi

// The custom key store operations. This server has no custom key stores
// (CloudHSM or external); the types carry the members a client may send so
// that requests decode and are answered with AWS's errors. The secret
// members (KeyStorePassword, the proxy's credential) are decoded only to be
// dropped: they are never stored, logged or audited.

// XksProxyAuthenticationCredential is an external key store proxy's
// credential.
type XksProxyAuthenticationCredential struct {
	AccessKeyID        string `json:"AccessKeyId"`
	RawSecretAccessKey string `json:"RawSecretAccessKey"`
}

type CreateCustomKeyStoreInput struct {
	CustomKeyStoreName               string                            `json:"CustomKeyStoreName"`
	CloudHsmClusterID                *string                           `json:"CloudHsmClusterId"`
	TrustAnchorCertificate           *string                           `json:"TrustAnchorCertificate"`
	KeyStorePassword                 *string                           `json:"KeyStorePassword"`
	CustomKeyStoreType               string                            `json:"CustomKeyStoreType"`
	XksProxyURIEndpoint              *string                           `json:"XksProxyUriEndpoint"`
	XksProxyURIPath                  *string                           `json:"XksProxyUriPath"`
	XksProxyVpcEndpointServiceName   *string                           `json:"XksProxyVpcEndpointServiceName"`
	XksProxyVpcEndpointServiceOwner  *string                           `json:"XksProxyVpcEndpointServiceOwner"`
	XksProxyAuthenticationCredential *XksProxyAuthenticationCredential `json:"XksProxyAuthenticationCredential"`
	XksProxyConnectivity             string                            `json:"XksProxyConnectivity"`
}

type CreateCustomKeyStoreOutput struct {
	CustomKeyStoreID string `json:"CustomKeyStoreId"`
}

// CustomKeyStoreIDInput is the input of Connect-, Disconnect- and
// DeleteCustomKeyStore.
type CustomKeyStoreIDInput struct {
	CustomKeyStoreID string `json:"CustomKeyStoreId"`
}

type UpdateCustomKeyStoreInput struct {
	CustomKeyStoreID                 string                            `json:"CustomKeyStoreId"`
	NewCustomKeyStoreName            *string                           `json:"NewCustomKeyStoreName"`
	KeyStorePassword                 *string                           `json:"KeyStorePassword"`
	CloudHsmClusterID                *string                           `json:"CloudHsmClusterId"`
	XksProxyURIEndpoint              *string                           `json:"XksProxyUriEndpoint"`
	XksProxyURIPath                  *string                           `json:"XksProxyUriPath"`
	XksProxyVpcEndpointServiceName   *string                           `json:"XksProxyVpcEndpointServiceName"`
	XksProxyVpcEndpointServiceOwner  *string                           `json:"XksProxyVpcEndpointServiceOwner"`
	XksProxyAuthenticationCredential *XksProxyAuthenticationCredential `json:"XksProxyAuthenticationCredential"`
	XksProxyConnectivity             string                            `json:"XksProxyConnectivity"`
}

type DescribeCustomKeyStoresInput struct {
	CustomKeyStoreID   *string `json:"CustomKeyStoreId"`
	CustomKeyStoreName *string `json:"CustomKeyStoreName"`
	Limit              *int32  `json:"Limit"`
	Marker             *string `json:"Marker"`
}

// CustomKeyStoresListEntry describes a custom key store; none exist here,
// so the list is always empty and the entry carries no members.
type CustomKeyStoresListEntry struct{}

type DescribeCustomKeyStoresOutput struct {
	CustomKeyStores []CustomKeyStoresListEntry `json:"CustomKeyStores"`
	NextMarker      string                     `json:"NextMarker,omitempty"`
	Truncated       bool                       `json:"Truncated"`
}

package service

import (
	"context"

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
	v.enum("xksProxyConnectivity", in.XksProxyConnectivity, xksProxyConnectivityEnum)
	v.optStrLen("cloudHsmClusterId", in.CloudHsmClusterID, 19, 24)
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
	v.enum("xksProxyConnectivity", in.XksProxyConnectivity, xksProxyConnectivityEnum)
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
	if _, err := decodeMarker(in.Marker); err != nil {
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

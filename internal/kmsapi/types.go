// Package kmsapi holds the request and response types of the AWS KMS
// operations (API version 2014-11-01). They carry the API's member names in
// their JSON tags, so that the protocol layer decodes into them and encodes
// them as they are, and the service reads and fills them; neither knows
// the other's internals. Optional inputs whose absence matters are
// pointers.
package kmsapi

import (
	"encoding/json"
	"reflect"
	"strconv"
	"time"
)

// Time is an instant that encodes as AWS JSON protocols encode timestamps:
// seconds since the epoch, with milliseconds as a fraction.
type Time time.Time

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return strconv.AppendFloat(nil, float64(ms)/1000, 'f', -1, 64), nil
}

// Bounds of the epoch seconds a Time is read from: the years 1 to 9999,
// those an RFC 3339 date can name. Past them the milliseconds would not fit
// an int64, and how a float beyond an int64 converts depends on the machine.
const (
	minEpochSeconds = -62135596800 // 0001-01-01T00:00:00Z
	maxEpochSeconds = 253402300799 // 9999-12-31T23:59:59Z
)

// UnmarshalJSON implements json.Unmarshaler. It reads a JSON number of
// epoch seconds (to the millisecond; further digits are dropped) of the
// years 1 to 9999; anything else is a json.UnmarshalTypeError naming what
// was sent, as a member of another wrong type is. A JSON null leaves t
// as it is.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f < minEpochSeconds || f > maxEpochSeconds {
		return &json.UnmarshalTypeError{Value: jsonKind(b), Type: reflect.TypeFor[Time]()}
	}
	*t = Time(time.UnixMilli(int64(f * 1000)).UTC())
	return nil
}

// jsonKind names a JSON value as encoding/json's errors do: its kind, and
// a number's text.
func jsonKind(b []byte) string {
	switch b[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	}
	return "number " + string(b)
}

// NewTime returns t as a *Time, for optional timestamps.
func NewTime(t time.Time) *Time { v := Time(t); return &v }

// Tag is a key tag.
type Tag struct {
	TagKey   string `json:"TagKey"`
	TagValue string `json:"TagValue"`
}

// KeyMetadata describes a KMS key (reference §5.1).
type KeyMetadata struct {
	AWSAccountID            string   `json:"AWSAccountId"`
	KeyID                   string   `json:"KeyId"`
	Arn                     string   `json:"Arn"`
	CreationDate            Time     `json:"CreationDate"`
	Enabled                 bool     `json:"Enabled"`
	Description             string   `json:"Description"`
	KeyUsage                string   `json:"KeyUsage"`
	KeyState                string   `json:"KeyState"`
	DeletionDate            *Time    `json:"DeletionDate,omitempty"`
	Origin                  string   `json:"Origin"`
	KeyManager              string   `json:"KeyManager"`
	CustomerMasterKeySpec   string   `json:"CustomerMasterKeySpec"`
	KeySpec                 string   `json:"KeySpec"`
	EncryptionAlgorithms    []string `json:"EncryptionAlgorithms,omitempty"`
	SigningAlgorithms       []string `json:"SigningAlgorithms,omitempty"`
	MacAlgorithms           []string `json:"MacAlgorithms,omitempty"`
	KeyAgreementAlgorithms  []string `json:"KeyAgreementAlgorithms,omitempty"`
	EncapsulationAlgorithms []string `json:"EncapsulationAlgorithms,omitempty"`
	MultiRegion             bool     `json:"MultiRegion"`
	// MultiRegionConfiguration is set for multi-Region keys only.
	MultiRegionConfiguration *MultiRegionConfiguration `json:"MultiRegionConfiguration,omitempty"`
	// PendingDeletionWindowInDays is set for a multi-Region primary key
	// waiting for its replicas to be deleted (PendingReplicaDeletion).
	PendingDeletionWindowInDays int32  `json:"PendingDeletionWindowInDays,omitempty"`
	CurrentKeyMaterialID        string `json:"CurrentKeyMaterialId,omitempty"`
	ExpirationModel             string `json:"ExpirationModel,omitempty"`
	ValidTo                     *Time  `json:"ValidTo,omitempty"`
}

// MultiRegionConfiguration lists a multi-Region key's primary and replicas.
type MultiRegionConfiguration struct {
	MultiRegionKeyType string           `json:"MultiRegionKeyType"` // PRIMARY or REPLICA
	PrimaryKey         *MultiRegionKey  `json:"PrimaryKey"`
	ReplicaKeys        []MultiRegionKey `json:"ReplicaKeys"`
}

// MultiRegionKey is one key of a multi-Region key.
type MultiRegionKey struct {
	Arn    string `json:"Arn"`
	Region string `json:"Region"`
}

type ReplicateKeyInput struct {
	KeyID                          string  `json:"KeyId"`
	ReplicaRegion                  string  `json:"ReplicaRegion"`
	Policy                         *string `json:"Policy"`
	BypassPolicyLockoutSafetyCheck bool    `json:"BypassPolicyLockoutSafetyCheck"`
	Description                    *string `json:"Description"`
	Tags                           []Tag   `json:"Tags"`
}

type ReplicateKeyOutput struct {
	ReplicaKeyMetadata *KeyMetadata `json:"ReplicaKeyMetadata"`
	ReplicaPolicy      string       `json:"ReplicaPolicy"`
	ReplicaTags        []Tag        `json:"ReplicaTags"`
}

type UpdatePrimaryRegionInput struct {
	KeyID         string `json:"KeyId"`
	PrimaryRegion string `json:"PrimaryRegion"`
}

type CreateKeyInput struct {
	Policy                         *string `json:"Policy"`
	Description                    *string `json:"Description"`
	KeyUsage                       string  `json:"KeyUsage"`
	CustomerMasterKeySpec          string  `json:"CustomerMasterKeySpec"`
	KeySpec                        string  `json:"KeySpec"`
	Origin                         string  `json:"Origin"`
	CustomKeyStoreID               *string `json:"CustomKeyStoreId"`
	BypassPolicyLockoutSafetyCheck bool    `json:"BypassPolicyLockoutSafetyCheck"`
	Tags                           []Tag   `json:"Tags"`
	MultiRegion                    bool    `json:"MultiRegion"`
	XksKeyID                       *string `json:"XksKeyId"`
}

type CreateKeyOutput struct {
	KeyMetadata *KeyMetadata `json:"KeyMetadata"`
}

type DescribeKeyInput struct {
	KeyID       string   `json:"KeyId"`
	GrantTokens []string `json:"GrantTokens"`
}

type DescribeKeyOutput struct {
	KeyMetadata *KeyMetadata `json:"KeyMetadata"`
}

type ListKeysInput struct {
	Limit  *int32  `json:"Limit"`
	Marker *string `json:"Marker"`
}

type KeyListEntry struct {
	KeyID  string `json:"KeyId"`
	KeyArn string `json:"KeyArn"`
}

type ListKeysOutput struct {
	Keys       []KeyListEntry `json:"Keys"`
	NextMarker string         `json:"NextMarker,omitempty"`
	Truncated  bool           `json:"Truncated"`
}

// KeyIDInput is the input of operations that take only a key id:
// EnableKey, DisableKey, CancelKeyDeletion.
type KeyIDInput struct {
	KeyID string `json:"KeyId"`
}

type ScheduleKeyDeletionInput struct {
	KeyID               string `json:"KeyId"`
	PendingWindowInDays *int32 `json:"PendingWindowInDays"`
}

type ScheduleKeyDeletionOutput struct {
	KeyID               string `json:"KeyId"`
	DeletionDate        *Time  `json:"DeletionDate,omitempty"` // none while a primary waits for its replicas
	KeyState            string `json:"KeyState"`
	PendingWindowInDays int32  `json:"PendingWindowInDays"`
}

type CancelKeyDeletionOutput struct {
	KeyID string `json:"KeyId"`
}

type UpdateKeyDescriptionInput struct {
	KeyID       string  `json:"KeyId"`
	Description *string `json:"Description"`
}

type AliasInput struct {
	AliasName   string `json:"AliasName"`
	TargetKeyID string `json:"TargetKeyId"`
}

type DeleteAliasInput struct {
	AliasName string `json:"AliasName"`
}

type ListAliasesInput struct {
	KeyID  *string `json:"KeyId"`
	Limit  *int32  `json:"Limit"`
	Marker *string `json:"Marker"`
}

type AliasListEntry struct {
	AliasName       string `json:"AliasName"`
	AliasArn        string `json:"AliasArn"`
	TargetKeyID     string `json:"TargetKeyId"`
	CreationDate    Time   `json:"CreationDate"`
	LastUpdatedDate Time   `json:"LastUpdatedDate"`
}

type ListAliasesOutput struct {
	Aliases    []AliasListEntry `json:"Aliases"`
	NextMarker string           `json:"NextMarker,omitempty"`
	Truncated  bool             `json:"Truncated"`
}

type TagResourceInput struct {
	KeyID string `json:"KeyId"`
	Tags  []Tag  `json:"Tags"`
}

type UntagResourceInput struct {
	KeyID   string   `json:"KeyId"`
	TagKeys []string `json:"TagKeys"`
}

type ListResourceTagsInput struct {
	KeyID  string  `json:"KeyId"`
	Limit  *int32  `json:"Limit"`
	Marker *string `json:"Marker"`
}

type ListResourceTagsOutput struct {
	Tags       []Tag  `json:"Tags"`
	NextMarker string `json:"NextMarker,omitempty"`
	Truncated  bool   `json:"Truncated"`
}

// RecipientInfo is the Nitro Enclaves attestation of a caller. It is decoded
// only to refuse it: this service has no enclave attestation.
type RecipientInfo struct {
	KeyEncryptionAlgorithm string `json:"KeyEncryptionAlgorithm"`
	AttestationDocument    []byte `json:"AttestationDocument"`
}

type EncryptInput struct {
	KeyID               string            `json:"KeyId"`
	Plaintext           []byte            `json:"Plaintext"`
	EncryptionContext   map[string]string `json:"EncryptionContext"`
	GrantTokens         []string          `json:"GrantTokens"`
	EncryptionAlgorithm string            `json:"EncryptionAlgorithm"`
	DryRun              bool              `json:"DryRun"`
}

type EncryptOutput struct {
	CiphertextBlob      []byte `json:"CiphertextBlob"`
	KeyID               string `json:"KeyId"`
	EncryptionAlgorithm string `json:"EncryptionAlgorithm"`
}

type DecryptInput struct {
	CiphertextBlob      []byte            `json:"CiphertextBlob"`
	EncryptionContext   map[string]string `json:"EncryptionContext"`
	GrantTokens         []string          `json:"GrantTokens"`
	KeyID               string            `json:"KeyId"`
	EncryptionAlgorithm string            `json:"EncryptionAlgorithm"`
	Recipient           *RecipientInfo    `json:"Recipient"`
	DryRun              bool              `json:"DryRun"`
	DryRunModifiers     []string          `json:"DryRunModifiers"`
}

type DecryptOutput struct {
	KeyID               string `json:"KeyId"`
	Plaintext           []byte `json:"Plaintext"`
	EncryptionAlgorithm string `json:"EncryptionAlgorithm"`
	KeyMaterialID       string `json:"KeyMaterialId,omitempty"`
}

type ReEncryptInput struct {
	CiphertextBlob                 []byte            `json:"CiphertextBlob"`
	SourceEncryptionContext        map[string]string `json:"SourceEncryptionContext"`
	SourceKeyID                    string            `json:"SourceKeyId"`
	DestinationKeyID               string            `json:"DestinationKeyId"`
	DestinationEncryptionContext   map[string]string `json:"DestinationEncryptionContext"`
	SourceEncryptionAlgorithm      string            `json:"SourceEncryptionAlgorithm"`
	DestinationEncryptionAlgorithm string            `json:"DestinationEncryptionAlgorithm"`
	GrantTokens                    []string          `json:"GrantTokens"`
	DryRun                         bool              `json:"DryRun"`
	DryRunModifiers                []string          `json:"DryRunModifiers"`
}

type ReEncryptOutput struct {
	CiphertextBlob                 []byte `json:"CiphertextBlob"`
	SourceKeyID                    string `json:"SourceKeyId"`
	KeyID                          string `json:"KeyId"`
	SourceEncryptionAlgorithm      string `json:"SourceEncryptionAlgorithm"`
	DestinationEncryptionAlgorithm string `json:"DestinationEncryptionAlgorithm"`
	SourceKeyMaterialID            string `json:"SourceKeyMaterialId,omitempty"`
	DestinationKeyMaterialID       string `json:"DestinationKeyMaterialId,omitempty"`
}

type GenerateDataKeyInput struct {
	KeyID             string            `json:"KeyId"`
	EncryptionContext map[string]string `json:"EncryptionContext"`
	NumberOfBytes     *int32            `json:"NumberOfBytes"`
	KeySpec           string            `json:"KeySpec"`
	GrantTokens       []string          `json:"GrantTokens"`
	Recipient         *RecipientInfo    `json:"Recipient"`
	DryRun            bool              `json:"DryRun"`
}

type GenerateDataKeyOutput struct {
	CiphertextBlob []byte `json:"CiphertextBlob"`
	Plaintext      []byte `json:"Plaintext,omitempty"`
	KeyID          string `json:"KeyId"`
	KeyMaterialID  string `json:"KeyMaterialId,omitempty"`
}

type GenerateRandomInput struct {
	NumberOfBytes    *int32         `json:"NumberOfBytes"`
	CustomKeyStoreID *string        `json:"CustomKeyStoreId"`
	Recipient        *RecipientInfo `json:"Recipient"`
}

type GenerateRandomOutput struct {
	Plaintext []byte `json:"Plaintext"`
}

type EnableKeyRotationInput struct {
	KeyID                string `json:"KeyId"`
	RotationPeriodInDays *int32 `json:"RotationPeriodInDays"`
}

type GetKeyRotationStatusOutput struct {
	KeyRotationEnabled        bool   `json:"KeyRotationEnabled"`
	KeyID                     string `json:"KeyId"`
	RotationPeriodInDays      int32  `json:"RotationPeriodInDays,omitempty"`
	NextRotationDate          *Time  `json:"NextRotationDate,omitempty"`
	OnDemandRotationStartDate *Time  `json:"OnDemandRotationStartDate,omitempty"`
}

type RotateKeyOnDemandOutput struct {
	KeyID string `json:"KeyId"`
}

type ListKeyRotationsInput struct {
	KeyID              string  `json:"KeyId"`
	IncludeKeyMaterial string  `json:"IncludeKeyMaterial"`
	Limit              *int32  `json:"Limit"`
	Marker             *string `json:"Marker"`
}

type RotationsListEntry struct {
	KeyID                  string `json:"KeyId"`
	KeyMaterialID          string `json:"KeyMaterialId,omitempty"`
	KeyMaterialDescription string `json:"KeyMaterialDescription,omitempty"`
	ImportState            string `json:"ImportState,omitempty"`
	KeyMaterialState       string `json:"KeyMaterialState,omitempty"`
	ExpirationModel        string `json:"ExpirationModel,omitempty"`
	ValidTo                *Time  `json:"ValidTo,omitempty"`
	RotationDate           *Time  `json:"RotationDate,omitempty"`
	RotationType           string `json:"RotationType,omitempty"`
}

type ListKeyRotationsOutput struct {
	Rotations  []RotationsListEntry `json:"Rotations"`
	NextMarker string               `json:"NextMarker,omitempty"`
	Truncated  bool                 `json:"Truncated"`
}

type GetParametersForImportInput struct {
	KeyID             string `json:"KeyId"`
	WrappingAlgorithm string `json:"WrappingAlgorithm"`
	WrappingKeySpec   string `json:"WrappingKeySpec"`
}

type GetParametersForImportOutput struct {
	KeyID             string `json:"KeyId"`
	ImportToken       []byte `json:"ImportToken"`
	PublicKey         []byte `json:"PublicKey"`
	ParametersValidTo Time   `json:"ParametersValidTo"`
}

type ImportKeyMaterialInput struct {
	KeyID                  string  `json:"KeyId"`
	ImportToken            []byte  `json:"ImportToken"`
	EncryptedKeyMaterial   []byte  `json:"EncryptedKeyMaterial"`
	ValidTo                *Time   `json:"ValidTo"`
	ExpirationModel        string  `json:"ExpirationModel"`
	ImportType             string  `json:"ImportType"`
	KeyMaterialDescription *string `json:"KeyMaterialDescription"`
	KeyMaterialID          *string `json:"KeyMaterialId"`
}

type ImportKeyMaterialOutput struct {
	KeyID         string `json:"KeyId"`
	KeyMaterialID string `json:"KeyMaterialId"`
}

type DeleteImportedKeyMaterialInput struct {
	KeyID         string  `json:"KeyId"`
	KeyMaterialID *string `json:"KeyMaterialId"`
}

type DeleteImportedKeyMaterialOutput struct {
	KeyID string `json:"KeyId"`
	// KeyMaterialID is left out when no material was deleted: the model's
	// BackingKeyIdResponseType is hex, which "" is not.
	KeyMaterialID string `json:"KeyMaterialId,omitempty"`
}

// GrantConstraints are a grant's constraints. An empty map is a
// constraint (EncryptionContextEquals {} allows only calls without an
// encryption context), kept apart from an absent one on the wire and in
// the store (omitzero, not omitempty).
type GrantConstraints struct {
	EncryptionContextSubset map[string]string `json:"EncryptionContextSubset,omitzero"`
	EncryptionContextEquals map[string]string `json:"EncryptionContextEquals,omitzero"`
	// SourceArn is accepted on the wire only to be refused: no AWS
	// service calls this server on a resource's behalf.
	SourceArn *string `json:"SourceArn,omitzero"`
}

type CreateGrantInput struct {
	KeyID                    string            `json:"KeyId"`
	GranteePrincipal         string            `json:"GranteePrincipal"`
	RetiringPrincipal        string            `json:"RetiringPrincipal"`
	Operations               []string          `json:"Operations"`
	Constraints              *GrantConstraints `json:"Constraints"`
	GrantTokens              []string          `json:"GrantTokens"`
	Name                     string            `json:"Name"`
	DryRun                   bool              `json:"DryRun"`
	GranteeServicePrincipal  string            `json:"GranteeServicePrincipal"`
	RetiringServicePrincipal string            `json:"RetiringServicePrincipal"`
}

type CreateGrantOutput struct {
	GrantToken string `json:"GrantToken"`
	GrantID    string `json:"GrantId"`
}

type ListGrantsInput struct {
	Limit                   *int32  `json:"Limit"`
	Marker                  *string `json:"Marker"`
	KeyID                   string  `json:"KeyId"`
	GrantID                 string  `json:"GrantId"`
	GranteePrincipal        string  `json:"GranteePrincipal"`
	GranteeServicePrincipal string  `json:"GranteeServicePrincipal"`
}

type ListRetirableGrantsInput struct {
	Limit                    *int32  `json:"Limit"`
	Marker                   *string `json:"Marker"`
	RetiringPrincipal        string  `json:"RetiringPrincipal"`
	RetiringServicePrincipal string  `json:"RetiringServicePrincipal"`
}

type GrantListEntry struct {
	KeyID             string            `json:"KeyId"`
	GrantID           string            `json:"GrantId"`
	Name              string            `json:"Name,omitempty"`
	CreationDate      Time              `json:"CreationDate"`
	GranteePrincipal  string            `json:"GranteePrincipal"`
	RetiringPrincipal string            `json:"RetiringPrincipal,omitempty"`
	IssuingAccount    string            `json:"IssuingAccount"`
	Operations        []string          `json:"Operations"`
	Constraints       *GrantConstraints `json:"Constraints,omitempty"`
}

type ListGrantsOutput struct {
	Grants     []GrantListEntry `json:"Grants"`
	NextMarker string           `json:"NextMarker,omitempty"`
	Truncated  bool             `json:"Truncated"`
}

type RetireGrantInput struct {
	GrantToken string `json:"GrantToken"`
	KeyID      string `json:"KeyId"`
	GrantID    string `json:"GrantId"`
	DryRun     bool   `json:"DryRun"`
}

type RevokeGrantInput struct {
	KeyID   string `json:"KeyId"`
	GrantID string `json:"GrantId"`
	DryRun  bool   `json:"DryRun"`
}

type GetKeyPolicyInput struct {
	KeyID      string `json:"KeyId"`
	PolicyName string `json:"PolicyName"`
}

type GetKeyPolicyOutput struct {
	Policy     string `json:"Policy"`
	PolicyName string `json:"PolicyName"`
}

type PutKeyPolicyInput struct {
	KeyID                          string  `json:"KeyId"`
	PolicyName                     string  `json:"PolicyName"`
	Policy                         *string `json:"Policy"`
	BypassPolicyLockoutSafetyCheck bool    `json:"BypassPolicyLockoutSafetyCheck"`
}

type ListKeyPoliciesInput struct {
	KeyID  string  `json:"KeyId"`
	Limit  *int32  `json:"Limit"`
	Marker *string `json:"Marker"`
}

type ListKeyPoliciesOutput struct {
	PolicyNames []string `json:"PolicyNames"`
	NextMarker  string   `json:"NextMarker,omitempty"`
	Truncated   bool     `json:"Truncated"`
}

type SignInput struct {
	KeyID            string   `json:"KeyId"`
	Message          []byte   `json:"Message"`
	MessageType      string   `json:"MessageType"`
	GrantTokens      []string `json:"GrantTokens"`
	SigningAlgorithm string   `json:"SigningAlgorithm"`
	DryRun           bool     `json:"DryRun"`
}

type SignOutput struct {
	KeyID            string `json:"KeyId"`
	Signature        []byte `json:"Signature"`
	SigningAlgorithm string `json:"SigningAlgorithm"`
}

type VerifyInput struct {
	KeyID            string   `json:"KeyId"`
	Message          []byte   `json:"Message"`
	MessageType      string   `json:"MessageType"`
	Signature        []byte   `json:"Signature"`
	SigningAlgorithm string   `json:"SigningAlgorithm"`
	GrantTokens      []string `json:"GrantTokens"`
	DryRun           bool     `json:"DryRun"`
}

type VerifyOutput struct {
	KeyID            string `json:"KeyId"`
	SignatureValid   bool   `json:"SignatureValid"`
	SigningAlgorithm string `json:"SigningAlgorithm"`
}

type GetPublicKeyInput struct {
	KeyID       string   `json:"KeyId"`
	GrantTokens []string `json:"GrantTokens"`
}

type GetPublicKeyOutput struct {
	KeyID                   string   `json:"KeyId"`
	PublicKey               []byte   `json:"PublicKey"`
	CustomerMasterKeySpec   string   `json:"CustomerMasterKeySpec"`
	KeySpec                 string   `json:"KeySpec"`
	KeyUsage                string   `json:"KeyUsage"`
	EncryptionAlgorithms    []string `json:"EncryptionAlgorithms,omitempty"`
	SigningAlgorithms       []string `json:"SigningAlgorithms,omitempty"`
	KeyAgreementAlgorithms  []string `json:"KeyAgreementAlgorithms,omitempty"`
	EncapsulationAlgorithms []string `json:"EncapsulationAlgorithms,omitempty"`
}

type GenerateMacInput struct {
	Message      []byte   `json:"Message"`
	KeyID        string   `json:"KeyId"`
	MacAlgorithm string   `json:"MacAlgorithm"`
	GrantTokens  []string `json:"GrantTokens"`
	DryRun       bool     `json:"DryRun"`
}

type GenerateMacOutput struct {
	Mac          []byte `json:"Mac"`
	MacAlgorithm string `json:"MacAlgorithm"`
	KeyID        string `json:"KeyId"`
}

type VerifyMacInput struct {
	Message      []byte   `json:"Message"`
	KeyID        string   `json:"KeyId"`
	MacAlgorithm string   `json:"MacAlgorithm"`
	Mac          []byte   `json:"Mac"`
	GrantTokens  []string `json:"GrantTokens"`
	DryRun       bool     `json:"DryRun"`
}

type VerifyMacOutput struct {
	KeyID        string `json:"KeyId"`
	MacValid     bool   `json:"MacValid"`
	MacAlgorithm string `json:"MacAlgorithm"`
}

type DeriveSharedSecretInput struct {
	KeyID                 string         `json:"KeyId"`
	KeyAgreementAlgorithm string         `json:"KeyAgreementAlgorithm"`
	PublicKey             []byte         `json:"PublicKey"`
	GrantTokens           []string       `json:"GrantTokens"`
	DryRun                bool           `json:"DryRun"`
	Recipient             *RecipientInfo `json:"Recipient"`
}

type DeriveSharedSecretOutput struct {
	KeyID                 string `json:"KeyId"`
	SharedSecret          []byte `json:"SharedSecret"`
	KeyAgreementAlgorithm string `json:"KeyAgreementAlgorithm"`
	KeyOrigin             string `json:"KeyOrigin"`
}

type EncapsulateInput struct {
	KeyID                  string   `json:"KeyId"`
	EncapsulationAlgorithm string   `json:"EncapsulationAlgorithm"`
	GrantTokens            []string `json:"GrantTokens"`
	DryRun                 bool     `json:"DryRun"`
}

type EncapsulateOutput struct {
	KeyID                      string `json:"KeyId"`
	SharedSecret               []byte `json:"SharedSecret"`
	SharedSecretCiphertextBlob []byte `json:"SharedSecretCiphertextBlob"`
	EncapsulationAlgorithm     string `json:"EncapsulationAlgorithm"`
}

type DecapsulateInput struct {
	KeyID                      string   `json:"KeyId"`
	SharedSecretCiphertextBlob []byte   `json:"SharedSecretCiphertextBlob"`
	EncapsulationAlgorithm     string   `json:"EncapsulationAlgorithm"`
	GrantTokens                []string `json:"GrantTokens"`
	DryRun                     bool     `json:"DryRun"`
}

type DecapsulateOutput struct {
	KeyID                  string `json:"KeyId"`
	SharedSecret           []byte `json:"SharedSecret"`
	EncapsulationAlgorithm string `json:"EncapsulationAlgorithm"`
}

type GenerateDataKeyPairInput struct {
	EncryptionContext map[string]string `json:"EncryptionContext"`
	KeyID             string            `json:"KeyId"`
	KeyPairSpec       string            `json:"KeyPairSpec"`
	GrantTokens       []string          `json:"GrantTokens"`
	Recipient         *RecipientInfo    `json:"Recipient"`
	DryRun            bool              `json:"DryRun"`
}

type GenerateDataKeyPairOutput struct {
	PrivateKeyCiphertextBlob []byte `json:"PrivateKeyCiphertextBlob"`
	PrivateKeyPlaintext      []byte `json:"PrivateKeyPlaintext,omitempty"`
	PublicKey                []byte `json:"PublicKey"`
	KeyID                    string `json:"KeyId"`
	KeyPairSpec              string `json:"KeyPairSpec"`
	KeyMaterialID            string `json:"KeyMaterialId,omitempty"`
}

type GetKeyLastUsageOutput struct {
	KeyID             string        `json:"KeyId"`
	KeyLastUsage      *KeyLastUsage `json:"KeyLastUsage,omitempty"`
	TrackingStartDate *Time         `json:"TrackingStartDate,omitempty"`
	KeyCreationDate   *Time         `json:"KeyCreationDate,omitempty"`
}

// KeyLastUsage is the last successful cryptographic use of a key.
type KeyLastUsage struct {
	Operation         string `json:"Operation,omitempty"`
	Timestamp         *Time  `json:"Timestamp,omitempty"`
	CloudTrailEventID string `json:"CloudTrailEventId,omitempty"`
	KmsRequestID      string `json:"KmsRequestId,omitempty"`
}

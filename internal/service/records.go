package service

import (
	"fmt"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/kmsapi"
	"time"

	"github.com/openkms/kms/internal/store"
)

// Records in the store (docs/storage.md). Every record is JSON with a format
// version "v"; key material is sealed under the root key with the record's
// own name as additional data, so a sealed value copied to another record
// does not open.
//
//	key/<key-id>                         keyRecord
//	keyver/<key-id>/<version, 8 hex>     versionRecord
//	acctkey/<account>/<key-id>           empty: index of an account's keys
//	alias/<account>/<alias-name>         aliasRecord
//	keyalias/<key-id>/<alias-name>       empty: index of a key's aliases
//	pendingdel/<key-id>                  empty: keys scheduled for deletion
//	rotation/<key-id>                    empty: keys with automatic rotation on
//	importexpiry/<key-id>                empty: keys whose imported material expires
//	importtoken/<token id, hex>          importTokenRecord
//	grant/<key-id>/<grant-id>            grantRecord
//	retiregrant/<principal>/<key-id>/<grant-id>  empty: grants by retiring principal

const recordVersion = 1

// Key states.
const (
	StateEnabled         = "Enabled"
	StateDisabled        = "Disabled"
	StatePendingDeletion = "PendingDeletion"
	StatePendingImport   = "PendingImport"
)

type keyRecord struct {
	V                   int          `json:"v"`
	ID                  string       `json:"id"`
	Account             string       `json:"account"`
	Created             time.Time    `json:"created"`
	Description         string       `json:"description"`
	KeySpec             string       `json:"keySpec"`
	KeyUsage            string       `json:"keyUsage"`
	Origin              string       `json:"origin"`
	State               string       `json:"state"`
	DeletionDate        *time.Time   `json:"deletionDate,omitempty"`
	PendingWindowInDays int32        `json:"pendingWindowInDays,omitempty"`
	Policy              string       `json:"policy"`
	Tags                []kmsapi.Tag `json:"tags,omitempty"`
	// CurrentVersion is the material version new ciphertexts use; 0 for
	// an EXTERNAL key that has never had material imported.
	CurrentVersion uint32 `json:"currentVersion"`

	// Automatic rotation: on when RotationPeriodInDays > 0.
	RotationPeriodInDays int32      `json:"rotationPeriodInDays,omitempty"`
	NextRotationDate     *time.Time `json:"nextRotationDate,omitempty"`
	OnDemandRotations    int        `json:"onDemandRotations,omitempty"`

	// Imported material (origin EXTERNAL).
	ExpirationModel string     `json:"expirationModel,omitempty"`
	ValidTo         *time.Time `json:"validTo,omitempty"`
}

type versionRecord struct {
	V          int       `json:"v"`
	Version    uint32    `json:"version"`
	MaterialID string    `json:"materialId"`
	Created    time.Time `json:"created"`
	// RotationType is AUTOMATIC or ON_DEMAND for versions made by a
	// rotation, empty for a key's first material.
	RotationType string `json:"rotationType,omitempty"`
	// Description is the KeyMaterialDescription given on import.
	Description string `json:"description,omitempty"`
	// Sealed is the material sealed under the root key; nil once imported
	// material was deleted or expired (MaterialID stays, so that only the
	// same material can be imported again).
	Sealed []byte `json:"sealed,omitempty"`
}

type importTokenRecord struct {
	V          int       `json:"v"`
	KeyID      string    `json:"keyId"`
	Account    string    `json:"account"`
	Algorithm  string    `json:"wrappingAlgorithm"`
	KeySpec    string    `json:"wrappingKeySpec"`
	ValidTo    time.Time `json:"validTo"`
	SealedPriv []byte    `json:"sealedPrivateKey"`
}

type aliasRecord struct {
	V       int       `json:"v"`
	Name    string    `json:"name"`
	KeyID   string    `json:"keyId"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

func keyKey(id string) []byte                { return []byte("key/" + id) }
func versionPrefix(id string) []byte         { return []byte("keyver/" + id + "/") }
func versionKey(id string, v uint32) []byte  { return fmt.Appendf(nil, "keyver/%s/%08x", id, v) }
func acctKeyPrefix(account string) []byte    { return []byte("acctkey/" + account + "/") }
func acctKeyKey(account, id string) []byte   { return []byte("acctkey/" + account + "/" + id) }
func aliasPrefix(account string) []byte      { return []byte("alias/" + account + "/") }
func aliasKey(account, name string) []byte   { return []byte("alias/" + account + "/" + name) }
func keyAliasPrefix(id string) []byte        { return []byte("keyalias/" + id + "/") }
func keyAliasKey(id, name string) []byte     { return []byte("keyalias/" + id + "/" + name) }
func pendingDeletionKey(id string) []byte    { return []byte("pendingdel/" + id) }
func rotationKey(id string) []byte           { return []byte("rotation/" + id) }
func importExpiryKey(id string) []byte       { return []byte("importexpiry/" + id) }
func importTokenKey(tokenID string) []byte   { return []byte("importtoken/" + tokenID) }
func materialAAD(id string, v uint32) []byte { return versionKey(id, v) }

var (
	pendingDeletionPrefix = []byte("pendingdel/")
	rotationPrefix        = []byte("rotation/")
	importExpiryPrefix    = []byte("importexpiry/")
	importTokenPrefix     = []byte("importtoken/")
)

var (
	getJSON = store.GetJSON
	putJSON = store.PutJSON
)

// newVersion generates fresh material of spec for version v of key id and
// seals it. rotationType is "" for a key's first material.
func (s *Service) newVersion(id, spec string, v uint32, now time.Time, rotationType string) (*versionRecord, error) {
	material, err := keys.Generate(spec)
	if err != nil {
		return nil, err
	}
	defer clear(material)
	return &versionRecord{
		V:            recordVersion,
		Version:      v,
		MaterialID:   randomHex(32),
		Created:      now,
		RotationType: rotationType,
		Sealed:       s.root.Seal(materialAAD(id, v), material),
	}, nil
}

type grantRecord struct {
	V           int                      `json:"v"`
	ID          string                   `json:"id"`
	KeyID       string                   `json:"keyId"`
	Account     string                   `json:"account"` // the issuing account
	Name        string                   `json:"name,omitempty"`
	Grantee     string                   `json:"grantee"`
	Retiring    string                   `json:"retiring,omitempty"`
	Operations  []string                 `json:"operations"`
	Constraints *kmsapi.GrantConstraints `json:"constraints,omitempty"`
	Created     time.Time                `json:"created"`
}

func grantPrefix(keyID string) []byte         { return []byte("grant/" + keyID + "/") }
func grantKey(keyID, grantID string) []byte   { return []byte("grant/" + keyID + "/" + grantID) }
func retirablePrefix(principal string) []byte { return []byte("retiregrant/" + principal + "/") }
func retirableKey(principal, keyID, grantID string) []byte {
	return []byte("retiregrant/" + principal + "/" + keyID + "/" + grantID)
}

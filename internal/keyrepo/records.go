package keyrepo

import (
	"fmt"
	"time"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/kmsapi"
)

// Records in the store (docs/storage.md). Every record is JSON with a format
// version "v"; key material is sealed under the root key with the record's
// own name as additional data, so a sealed value copied to another record
// does not open.
//
//	key/<key-id>                         KeyRecord
//	keyver/<key-id>/<version, 8 hex>     VersionRecord
//	acctkey/<account>/<key-id>           empty: index of an account's keys
//	alias/<account>/<alias-name>         AliasRecord
//	keyalias/<key-id>/<alias-name>       empty: index of a key's aliases
//	pendingdel/<key-id>                  empty: keys scheduled for deletion
//	rotation/<key-id>                    empty: keys with automatic rotation on
//	importexpiry/<key-id>                empty: keys whose imported material expires
//	importtoken/<token id, hex>          ImportTokenRecord
//	grant/<key-id>/<grant-id>            GrantRecord
//	retiregrant/<principal>/<key-id>/<grant-id>  empty: grants by retiring principal

const RecordVersion = 1

// State is a key's state (reference §4.4).
type State string

// Key states.
const (
	StateEnabled         State = "Enabled"
	StateDisabled        State = "Disabled"
	StatePendingDeletion State = "PendingDeletion"
	StatePendingImport   State = "PendingImport"
)

// Err is what an operation that needs an enabled key answers when the key
// named by arn is in state st, with AWS's messages; nil when enabled.
func (st State) Err(arn string) error {
	switch st {
	case StateEnabled:
		return nil
	case StateDisabled:
		return fault.Newf(fault.Disabled, "%s is disabled.", arn)
	case StatePendingDeletion:
		return fault.Newf(fault.InvalidState, "%s is pending deletion.", arn)
	case StatePendingImport:
		return fault.Newf(fault.InvalidState, "%s is pending import.", arn)
	}
	return fault.Newf(fault.InvalidState, "%s is %s.", arn, string(st))
}

// KeyRecord is a key: key/<key-id>.
type KeyRecord struct {
	V                   int          `json:"v"`
	ID                  string       `json:"id"`
	Account             string       `json:"account"`
	Created             time.Time    `json:"created"`
	Description         string       `json:"description"`
	KeySpec             string       `json:"keySpec"`
	KeyUsage            string       `json:"keyUsage"`
	Origin              string       `json:"origin"`
	State               State        `json:"state"`
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

	// Imported material (origin EXTERNAL). ExpirationModel and ValidTo
	// sum up the materials permanently associated with the key (every
	// version but one pending rotation): ValidTo is the earliest expiry
	// among them, when the key becomes unusable. PendingValidTo is the
	// expiry of material imported for on-demand rotation and not rotated
	// to yet. Each version also has its own (VersionRecord).
	ExpirationModel string     `json:"expirationModel,omitempty"`
	ValidTo         *time.Time `json:"validTo,omitempty"`
	PendingValidTo  *time.Time `json:"pendingValidTo,omitempty"`

	// LastUsage is the newest successful cryptographic use of the key
	// written so far (GetKeyLastUsage); uses since the last flush are held
	// in memory only. UsageTrackedSince is when uses of the key began to
	// be recorded: its creation, or for keys made before usage was
	// tracked, the start of the first server that recorded one.
	LastUsage         *LastUsage `json:"lastUsage,omitempty"`
	UsageTrackedSince *time.Time `json:"usageTrackedSince,omitempty"`
}

// LastUsage is one successful cryptographic use of a key: the operation,
// when, and the eventID and request id of its audit record.
type LastUsage struct {
	Operation string    `json:"operation"`
	Time      time.Time `json:"time"`
	EventID   string    `json:"eventId,omitempty"`
	RequestID string    `json:"requestId,omitempty"`
}

// VersionRecord is one version of a key's material: keyver/<key-id>/<version>.
type VersionRecord struct {
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

	// Imported material only. PendingRotation marks material imported
	// with ImportType NEW_KEY_MATERIAL that RotateKeyOnDemand has not made
	// current yet: it is not part of the key (nothing is encrypted or
	// decrypted with it) and may be deleted outright. Its version is the
	// key's current version plus one. ExpirationModel and ValidTo are this
	// material's expiry; empty in versions written before each material
	// had its own, whose expiry is then the key record's.
	PendingRotation bool       `json:"pendingRotation,omitempty"`
	ExpirationModel string     `json:"expirationModel,omitempty"`
	ValidTo         *time.Time `json:"validTo,omitempty"`
}

// ImportTokenRecord is the private half of an import wrapping key: importtoken/<token id>.
type ImportTokenRecord struct {
	V          int       `json:"v"`
	KeyID      string    `json:"keyId"`
	Account    string    `json:"account"`
	Algorithm  string    `json:"wrappingAlgorithm"`
	KeySpec    string    `json:"wrappingKeySpec"`
	ValidTo    time.Time `json:"validTo"`
	SealedPriv []byte    `json:"sealedPrivateKey"`
}

// AliasRecord is an alias: alias/<account>/<alias-name>.
type AliasRecord struct {
	V       int       `json:"v"`
	Name    string    `json:"name"`
	KeyID   string    `json:"keyId"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// The names of records and indexes, as the table above lists them; a
// version's name is also the additional data its sealed material is bound to.
func KeyKey(id string) []byte                { return []byte("key/" + id) }
func VersionPrefix(id string) []byte         { return []byte("keyver/" + id + "/") }
func VersionKey(id string, v uint32) []byte  { return fmt.Appendf(nil, "keyver/%s/%08x", id, v) }
func AcctKeyPrefix(account string) []byte    { return []byte("acctkey/" + account + "/") }
func AcctKeyKey(account, id string) []byte   { return []byte("acctkey/" + account + "/" + id) }
func AliasPrefix(account string) []byte      { return []byte("alias/" + account + "/") }
func AliasKey(account, name string) []byte   { return []byte("alias/" + account + "/" + name) }
func KeyAliasPrefix(id string) []byte        { return []byte("keyalias/" + id + "/") }
func KeyAliasKey(id, name string) []byte     { return []byte("keyalias/" + id + "/" + name) }
func PendingDeletionKey(id string) []byte    { return []byte("pendingdel/" + id) }
func RotationKey(id string) []byte           { return []byte("rotation/" + id) }
func ImportExpiryKey(id string) []byte       { return []byte("importexpiry/" + id) }
func ImportTokenKey(tokenID string) []byte   { return []byte("importtoken/" + tokenID) }
func MaterialAAD(id string, v uint32) []byte { return VersionKey(id, v) }

var (
	PendingDeletionPrefix = []byte("pendingdel/")
	RotationPrefix        = []byte("rotation/")
	ImportExpiryPrefix    = []byte("importexpiry/")
	ImportTokenPrefix     = []byte("importtoken/")
)

// newVersion generates fresh material of spec for version v of key id and
// seals it. rotationType is "" for a key's first material.
func (r *Repo) NewVersion(id, spec string, v uint32, now time.Time, rotationType string) (*VersionRecord, error) {
	material, err := keys.Generate(spec)
	if err != nil {
		return nil, err
	}
	defer clear(material)
	return &VersionRecord{
		V:            RecordVersion,
		Version:      v,
		MaterialID:   randomHex(32),
		Created:      now,
		RotationType: rotationType,
		Sealed:       r.root.Seal(MaterialAAD(id, v), material),
	}, nil
}

// GrantRecord is a grant: grant/<key-id>/<grant-id>.
type GrantRecord struct {
	V       int    `json:"v"`
	ID      string `json:"id"`
	KeyID   string `json:"keyId"`
	Account string `json:"account"` // the issuing account
	// KeyAccount owns the key; empty in grants stored before it was
	// recorded, which were made in the key's own account.
	KeyAccount  string                   `json:"keyAccount,omitempty"`
	Name        string                   `json:"name,omitempty"`
	Grantee     string                   `json:"grantee"`
	Retiring    string                   `json:"retiring,omitempty"`
	Operations  []string                 `json:"operations"`
	Constraints *kmsapi.GrantConstraints `json:"constraints,omitempty"`
	Created     time.Time                `json:"created"`
}

// KeyOwner is the account that owns the grant's key.
func (g *GrantRecord) KeyOwner() string {
	if g.KeyAccount != "" {
		return g.KeyAccount
	}
	return g.Account
}

// The names of grants and of the index of grants by retiring principal.
func GrantPrefix(keyID string) []byte         { return []byte("grant/" + keyID + "/") }
func GrantKey(keyID, grantID string) []byte   { return []byte("grant/" + keyID + "/" + grantID) }
func RetirablePrefix(principal string) []byte { return []byte("retiregrant/" + principal + "/") }
func RetirableKey(principal, keyID, grantID string) []byte {
	return []byte("retiregrant/" + principal + "/" + keyID + "/" + grantID)
}

package keyrepo

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/kmsapi"
	"github.com/openkms/kms/internal/policy"
)

// Records in the store (docs/storage.md). Every record is JSON with a format
// version "v"; key material is sealed under the root key with the record's
// own name as additional data, so a sealed value copied to another record
// does not open.
//
//	key/<region>/<key-id>                         KeyRecord
//	keyver/<region>/<key-id>/<version, 8 hex>     VersionRecord
//	acctkey/<account>/<region>/<key-id>           empty: index of an account's keys
//	keycount/<account>/<region>                   decimal: how many keys the account has there
//	alias/<account>/<region>/<alias-name>         AliasRecord
//	keyalias/<region>/<key-id>/<alias-name>       empty: index of a key's aliases
//	pendingdel/<region>/<key-id>                  empty: keys scheduled for deletion
//	rotation/<region>/<key-id>                    empty: keys with automatic rotation on
//	importexpiry/<region>/<key-id>                empty: keys whose imported material expires
//	importtoken/<token id, hex>                   ImportTokenRecord
//	grant/<region>/<key-id>/<grant-id>            GrantRecord
//	retiregrant/<principal>/<region>/<key-id>/<grant-id>  empty: grants by retiring principal
//	grantcount/<region>/<key-id>                  decimal: how many grants the key has
//	grantname/<region>/<key-id>/<account>/<name, hex>/<grant-id>  empty: a key's named grants
//	meta/key-layout                               "regions": the names above carry the region

const RecordVersion = 1

// State is a key's state (reference §4.4).
type State string

// Key states.
const (
	StateEnabled         State = "Enabled"
	StateDisabled        State = "Disabled"
	StatePendingDeletion State = "PendingDeletion"
	StatePendingImport   State = "PendingImport"
	// StatePendingReplicaDeletion is a multi-Region primary key scheduled
	// for deletion that waits for its replicas to be deleted first.
	StatePendingReplicaDeletion State = "PendingReplicaDeletion"
)

// PendingDeletion reports whether st is either state of a key scheduled
// for deletion: its own, or a primary's waiting for its replicas. The
// operations that refuse one refuse both (reference §4.4).
func (st State) PendingDeletion() bool {
	return st == StatePendingDeletion || st == StatePendingReplicaDeletion
}

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
	case StatePendingReplicaDeletion:
		return fault.Newf(fault.InvalidState, "%s is pending replica deletion.", arn)
	}
	return fault.Newf(fault.InvalidState, "%s is %s.", arn, string(st))
}

// KeyRecord is a key: key/<key-id>.
type KeyRecord struct {
	V                   int        `json:"v"`
	ID                  string     `json:"id"`
	Region              string     `json:"region"`
	Account             string     `json:"account"`
	Created             time.Time  `json:"created"`
	Description         string     `json:"description"`
	KeySpec             string     `json:"keySpec"`
	KeyUsage            string     `json:"keyUsage"`
	Origin              string     `json:"origin"`
	State               State      `json:"state"`
	DeletionDate        *time.Time `json:"deletionDate,omitempty"`
	PendingWindowInDays int32      `json:"pendingWindowInDays,omitempty"`
	Policy              string     `json:"policy"`
	// PolicyPrincipalIDs binds the IAM users and roles Policy names to
	// the unique ids they had when it was stored (policy.Policy.Bind):
	// ARN -> AIDA.../AROA..., or "" for one that named no one when a
	// start bound a policy stored without ids (service.bindStored). Nil
	// for a policy that names none.
	PolicyPrincipalIDs map[string]string `json:"policyPrincipalIds,omitempty"`
	Tags               []kmsapi.Tag      `json:"tags,omitempty"`
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

	// Multi-Region keys (ids mrk-...): the primary's region and the
	// replicas' regions, the same in the record of every region the key is
	// in and changed in all of them in one transaction.
	MultiRegion    bool     `json:"multiRegion,omitempty"`
	PrimaryRegion  string   `json:"primaryRegion,omitempty"`
	ReplicaRegions []string `json:"replicaRegions,omitempty"`

	// LastUsage is the newest successful cryptographic use of the key
	// written so far (GetKeyLastUsage); uses since the last flush are held
	// in memory only. UsageTrackedSince is when uses of the key began to
	// be recorded: its creation, or for keys made before usage was
	// tracked, the start of the first server that recorded one.
	LastUsage         *LastUsage `json:"lastUsage,omitempty"`
	UsageTrackedSince *time.Time `json:"usageTrackedSince,omitempty"`
}

// IsPrimary reports whether the record is a multi-Region key's primary.
func (rec *KeyRecord) IsPrimary() bool { return rec.MultiRegion && rec.PrimaryRegion == rec.Region }

// Regions are every region a multi-Region key is in, the primary's first.
func (rec *KeyRecord) Regions() []string {
	return append([]string{rec.PrimaryRegion}, rec.ReplicaRegions...)
}

// LastUsage is one successful cryptographic use of a key: the operation,
// when, and the eventID and request id of its audit record.
type LastUsage struct {
	Operation string    `json:"operation"`
	Time      time.Time `json:"time"`
	EventID   string    `json:"eventId,omitempty"`
	RequestID string    `json:"requestId,omitempty"`
}

// VersionRecord is one version of a key's material: keyver/<region>/<key-id>/<version>.
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
	Region     string    `json:"region"`
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

// The names of records and indexes, as the table above lists them. Keys,
// aliases, grants and their indexes belong to a region: the region is part
// of each name, so that a multi-Region key's replicas (the same key id in
// several regions) are separate records. A version's name is also the
// additional data its sealed material is bound to.
func KeyKey(region, id string) []byte        { return []byte("key/" + region + "/" + id) }
func VersionPrefix(region, id string) []byte { return []byte("keyver/" + region + "/" + id + "/") }
func VersionKey(region, id string, v uint32) []byte {
	return fmt.Appendf(nil, "keyver/%s/%s/%08x", region, id, v)
}
func AcctKeyPrefix(account, region string) []byte {
	return []byte("acctkey/" + account + "/" + region + "/")
}
func AcctKeyKey(account, region, id string) []byte {
	return []byte("acctkey/" + account + "/" + region + "/" + id)
}
func KeyCountKey(account, region string) []byte {
	return []byte("keycount/" + account + "/" + region)
}
func AliasPrefix(account, region string) []byte {
	return []byte("alias/" + account + "/" + region + "/")
}
func AliasKey(account, region, name string) []byte {
	return []byte("alias/" + account + "/" + region + "/" + name)
}
func KeyAliasPrefix(region, id string) []byte { return []byte("keyalias/" + region + "/" + id + "/") }
func KeyAliasKey(region, id, name string) []byte {
	return []byte("keyalias/" + region + "/" + id + "/" + name)
}
func PendingDeletionKey(region, id string) []byte    { return []byte("pendingdel/" + region + "/" + id) }
func RotationKey(region, id string) []byte           { return []byte("rotation/" + region + "/" + id) }
func ImportExpiryKey(region, id string) []byte       { return []byte("importexpiry/" + region + "/" + id) }
func ImportTokenKey(tokenID string) []byte           { return []byte("importtoken/" + tokenID) }
func MaterialAAD(region, id string, v uint32) []byte { return VersionKey(region, id, v) }

// SplitRegionID splits the "<region>/<key-id>" that follows an index's
// prefix (pendingdel/, rotation/, importexpiry/).
func SplitRegionID(rest string) (region, id string, ok bool) {
	region, id, ok = strings.Cut(rest, "/")
	return region, id, ok && region != "" && id != "" && !strings.Contains(id, "/")
}

// RotationIndexValue is the value of a key's rotation index record: the
// key's next rotation date, so that a maintenance round reads the key
// records of the keys due alone. It must be written again whenever the
// key's NextRotationDate changes.
func RotationIndexValue(next time.Time) []byte {
	return []byte(next.UTC().Format(time.RFC3339Nano))
}

// RotationIndexDate is the date in a rotation index record's value; not
// ok for a record written before it held one (empty).
func RotationIndexDate(v []byte) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, string(v))
	return t, err == nil
}

// PendingDeletionValue is the value of a key's pending deletion index
// record: its deletion date and its account, so that the maintenance
// round and the key quota read the key records of the keys past their
// date alone. Written whenever the key is scheduled for deletion.
func PendingDeletionValue(date time.Time, account string) []byte {
	return []byte(date.UTC().Format(time.RFC3339Nano) + " " + account)
}

// PendingDeletionOf is the deletion date and account in a pending
// deletion index record's value; not ok for a record written before it
// held them (empty).
func PendingDeletionOf(v []byte) (date time.Time, account string, ok bool) {
	d, account, found := strings.Cut(string(v), " ")
	if !found || account == "" {
		return time.Time{}, "", false
	}
	date, err := time.Parse(time.RFC3339Nano, d)
	return date, account, err == nil
}

var (
	PendingDeletionPrefix = []byte("pendingdel/")
	RotationPrefix        = []byte("rotation/")
	ImportExpiryPrefix    = []byte("importexpiry/")
	ImportTokenPrefix     = []byte("importtoken/")
)

// NewVersion generates fresh material of rec's spec for version v of the
// key rec describes and seals it for each of regions, bound to rec's
// attributes: one record per region, since a multi-Region key has the
// same material in each of its regions, sealed for each record's own
// name. rotationType is "" for a key's first material.
func (r *Repo) NewVersion(regions []string, rec *KeyRecord, v uint32, now time.Time, rotationType string) ([]*VersionRecord, error) {
	material, err := keys.Generate(rec.KeySpec)
	if err != nil {
		return nil, err
	}
	defer clear(material)
	vr := VersionRecord{
		V:            RecordVersion,
		Version:      v,
		MaterialID:   randomHex(32),
		Created:      now,
		RotationType: rotationType,
	}
	out := make([]*VersionRecord, len(regions))
	for i, region := range regions {
		c := vr
		c.Sealed = r.SealMaterial(rec, region, v, material)
		out[i] = &c
	}
	return out, nil
}

// Reseal returns a copy of vr, a version of the key rec describes (in
// rec's region), sealed for the same version in region to; a version
// without material is copied as it is. It is how a replica gets its
// primary's material, bound to the same attributes.
func (r *Repo) Reseal(rec *KeyRecord, vr *VersionRecord, to string) (*VersionRecord, error) {
	c := *vr
	if vr.Sealed == nil {
		return &c, nil
	}
	material, err := openMaterial(r.root, rec, rec.Region, vr.Version, vr.Sealed)
	if err != nil {
		return nil, err
	}
	c.Sealed = r.SealMaterial(rec, to, vr.Version, material)
	return &c, nil
}

// GrantRecord is a grant: grant/<key-id>/<grant-id>.
type GrantRecord struct {
	V       int    `json:"v"`
	ID      string `json:"id"`
	KeyID   string `json:"keyId"`
	Region  string `json:"region"`  // the key's region
	Account string `json:"account"` // the issuing account
	// KeyAccount owns the key; empty in grants stored before it was
	// recorded, which were made in the key's own account.
	KeyAccount string `json:"keyAccount,omitempty"`
	Name       string `json:"name,omitempty"`
	Grantee    string `json:"grantee"`
	Retiring   string `json:"retiring,omitempty"`
	// Bound grants (all made since unique ids were recorded) hold the
	// unique ids of a grantee or retiring principal that is an IAM user
	// or role, as it was when the grant was made; empty when none existed.
	// Such a principal is then named only with that id, so a user or role
	// deleted and made again under the same name does not inherit the
	// grant. Grants stored before are bound when a service starts
	// (service.bindStored).
	Bound       bool                     `json:"bound,omitempty"`
	GranteeID   string                   `json:"granteeId,omitempty"`
	RetiringID  string                   `json:"retiringId,omitempty"`
	Operations  []string                 `json:"operations"`
	Constraints *kmsapi.GrantConstraints `json:"constraints,omitempty"`
	Created     time.Time                `json:"created"`
}

// IsGrantee reports whether p is g's grantee principal, directly or
// through the role of its session.
func (g *GrantRecord) IsGrantee(p *policy.Principal) bool {
	return g.names(g.Grantee, g.GranteeID, p)
}

// IsRetiring reports whether p is g's retiring principal, directly or
// through the role of its session.
func (g *GrantRecord) IsRetiring(p *policy.Principal) bool {
	return g.names(g.Retiring, g.RetiringID, p)
}

func (g *GrantRecord) names(arn, id string, p *policy.Principal) bool {
	switch {
	case arn == "":
		return false
	case arn == p.ARN:
		return !g.Bound || !policy.IsUserOrRole(arn) || (id != "" && id == p.UserID)
	case p.RoleARN != "" && arn == p.RoleARN:
		return !g.Bound || (id != "" && id == policy.RoleID(p.UserID))
	}
	return false
}

// KeyOwner is the account that owns the grant's key.
func (g *GrantRecord) KeyOwner() string {
	if g.KeyAccount != "" {
		return g.KeyAccount
	}
	return g.Account
}

// The names of grants and of the index of grants by retiring principal.
func GrantPrefix(region, keyID string) []byte { return []byte("grant/" + region + "/" + keyID + "/") }
func GrantKey(region, keyID, grantID string) []byte {
	return []byte("grant/" + region + "/" + keyID + "/" + grantID)
}

// GrantCountKey holds the number of grant records of a key, and that its
// grantname index is complete: a key whose grants were stored before it
// has neither until its next CreateGrant counts them.
func GrantCountKey(region, keyID string) []byte {
	return []byte("grantcount/" + region + "/" + keyID)
}

// GrantNamesPrefix is the start of every name index record of a key.
func GrantNamesPrefix(region, keyID string) []byte {
	return []byte("grantname/" + region + "/" + keyID + "/")
}

// GrantNamePrefix is the start of the index records of a key's grants of
// one name made by account. The name is hex: grant names may hold "/".
func GrantNamePrefix(region, keyID, account, name string) []byte {
	return []byte("grantname/" + region + "/" + keyID + "/" + account + "/" + hex.EncodeToString([]byte(name)) + "/")
}

// GrantNameKey indexes a named grant by its name.
func GrantNameKey(region, keyID, account, name, grantID string) []byte {
	return append(GrantNamePrefix(region, keyID, account, name), grantID...)
}

func RetirablePrefix(principal, region string) []byte {
	return []byte("retiregrant/" + principal + "/" + region + "/")
}
func RetirableKey(principal, region, keyID, grantID string) []byte {
	return []byte("retiregrant/" + principal + "/" + region + "/" + keyID + "/" + grantID)
}

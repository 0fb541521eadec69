// Package identity keeps the principals that may call the service — accounts
// and their roots, IAM users with access keys and inline policies, roles and
// the temporary credentials of assumed-role sessions — and tells the
// protocol layer who a request is from by checking its AWS Signature
// Version 4.
//
// It implements the subset of IAM (CreateUser, GetUser, ListUsers,
// DeleteUser, Create/Get/Update/DeleteLoginProfile, CreateAccessKey,
// ListAccessKeys, UpdateAccessKey, DeleteAccessKey,
// Put/Get/List/DeleteUserPolicy,
// CreateRole, GetRole, ListRoles, DeleteRole, Put/Get/List/DeleteRolePolicy)
// and STS (GetCallerIdentity, AssumeRole) that the AWS CLI needs to
// administer the service, and the console's sign-in (signin.go). Secrets are sealed under
// the root key at rest, compared in constant time and never logged.
//
// Limits: no groups, managed policies, permission boundaries, session
// policies, MFA or federation. Each account is separate; an account exists
// once it is initialised (InitAccount), which gives its root its first
// access key, once.
package identity

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/openkms/kms/internal/changelog"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/policy"
	"github.com/openkms/kms/internal/sigv4"
	"github.com/openkms/kms/internal/store"
)

// Principal types, as CloudTrail names them.
const (
	TypeRoot        = "Root"
	TypeIAMUser     = "IAMUser"
	TypeAssumedRole = "AssumedRole"
)

// Principal is who a request is from.
type Principal struct {
	Type        string // TypeRoot, TypeIAMUser or TypeAssumedRole
	Account     string // 12-digit account id
	ARN         string // arn:aws:iam::ACCT:root, ...:user/NAME, arn:aws:sts::ACCT:assumed-role/ROLE/SESSION
	UserID      string // the account id for the root, AIDA... for a user, AROA...:SESSION for a role session
	Username    string // IAM users only
	RoleARN     string // assumed-role sessions only: arn:aws:iam::ACCT:role/NAME
	AccessKeyID string
	// Policies are the identity policies that apply: a user's inline
	// policies, or those of the role a session assumed. None for a root.
	Policies []*policy.Policy
	// SessionIssued and SessionExpires are, for an assumed-role session,
	// when its credentials were issued (aws:TokenIssueTime) and when they
	// expire. Zero otherwise.
	SessionIssued, SessionExpires time.Time

	// passwordSalt, for a user signed in to the console with a password,
	// is that password's salt (Refresh).
	passwordSalt string
}

// principalOverhead is what a Principal takes beside its strings and
// policies, rounded up.
const principalOverhead = 1 << 10

// MemSize estimates, from above, the bytes p takes in memory with its
// parsed policies (policy.Policy.MemSize), for the caches and tables that
// hold principals and bound their bytes.
func (p *Principal) MemSize() int64 {
	n := principalOverhead + len(p.ARN) + len(p.UserID) + len(p.Username) + len(p.RoleARN) + len(p.AccessKeyID) + len(p.passwordSalt)
	for _, pol := range p.Policies {
		n += pol.MemSize()
	}
	return int64(n)
}

// PolicyPrincipal is p as the policy engine sees it.
func (p *Principal) PolicyPrincipal() policy.Principal {
	pp := policy.Principal{ARN: p.ARN, Account: p.Account, RoleARN: p.RoleARN, UserID: p.UserID, Username: p.Username}
	if !p.SessionIssued.IsZero() {
		pp.TokenIssueTime = p.SessionIssued.UTC().Format(time.RFC3339)
	}
	return pp
}

// RootARN is the ARN of an account's root principal.
func RootARN(account string) string { return "arn:aws:iam::" + account + ":root" }

// Config holds a Directory's dependencies.
type Config struct {
	Store   store.Store
	RootKey *keys.RootKey
	Region  string // the default region (IAM is accepted signed for any region; its calls are made in IAMRegion)
	// Regions are the regions a KMS or STS request may be signed for;
	// empty means Region only.
	Regions []string
	Now     func() time.Time // defaults to time.Now
	Logger  *slog.Logger
	// CacheMaxAge, if positive, is how long a verified credential is
	// trusted before it is read again: the bound on staleness when the
	// store is shared with other processes and a change notification
	// (Changed) is lost.
	CacheMaxAge time.Duration
	// MaxClockSkew is how far the signing time of a KMS request may be
	// from Now (DefaultMaxClockSkew if zero). IAM and STS requests keep
	// AWS's 15 minutes.
	MaxClockSkew time.Duration
}

// Directory is the identity store and authenticator. It is safe for
// concurrent use.
type Directory struct {
	st       store.Store
	root     *keys.RootKey
	region   string
	regions  map[string]bool
	now      func() time.Time
	log      *slog.Logger
	verifier *sigv4.Verifier
	maxAge   time.Duration
	maxSkew  time.Duration // of KMS requests

	userQuota, roleQuota int // per account: DefaultUserQuota, DefaultRoleQuota

	mu      sync.RWMutex
	changes *changelog.Log[subject] // the changes to what credentials are read from
	creds   map[string]*credential  // access key id -> verified credential
	misses  map[string]miss         // access key id -> found unknown or inactive
	// credBytes is the memory creds take, as estimated; at most
	// maxCredBytes (DefaultCredentialCacheBytes).
	credBytes, maxCredBytes int64
	// cacheLimit bounds each of creds and misses (the constant
	// cacheLimit); a full creds evicts cacheEvictions (the constant).
	cacheLimit, cacheEvictions int

	refreshMu  sync.Mutex
	refreshing map[string]bool // access key ids being read again in the background
	refreshed  func()          // if set, called after each such read (a test's)
}

// New returns a Directory.
func New(cfg Config) *Directory {
	d := &Directory{st: cfg.Store, root: cfg.RootKey, region: cfg.Region, now: cfg.Now, log: cfg.Logger,
		verifier: sigv4.NewVerifier(), creds: make(map[string]*credential), misses: make(map[string]miss), changes: changelog.New[subject](0), maxAge: cfg.CacheMaxAge, maxSkew: cfg.MaxClockSkew,
		userQuota: DefaultUserQuota, roleQuota: DefaultRoleQuota, maxCredBytes: DefaultCredentialCacheBytes,
		cacheLimit: cacheLimit, cacheEvictions: cacheEvictions}
	if d.maxSkew <= 0 {
		d.maxSkew = DefaultMaxClockSkew
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	if len(cfg.Regions) > 0 {
		d.regions = make(map[string]bool, len(cfg.Regions))
		for _, r := range cfg.Regions {
			d.regions[r] = true
		}
	}
	return d
}

// randomID returns prefix followed by n characters of AWS's id alphabet
// (uppercase letters and digits 2-7).
func randomID(prefix string, n int) string {
	b := make([]byte, (n*5+7)/8)
	rand.Read(b)
	return prefix + base32.StdEncoding.EncodeToString(b)[:n]
}

func userARN(account, path, name string) string {
	return fmt.Sprintf("arn:aws:iam::%s:user%s%s", account, path, name)
}

func roleARN(account, path, name string) string {
	return fmt.Sprintf("arn:aws:iam::%s:role%s%s", account, path, name)
}

// lower is the storage form of IAM names, which are unique regardless of
// case. It folds ASCII letters only: the names are ASCII (namePattern),
// and Unicode folding would make another string the same name
// (strings.ToLower maps the Kelvin sign U+212A to k, so "\u212Aate" would
// reach kate's records).
func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

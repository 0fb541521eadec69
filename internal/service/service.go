// Package service implements the AWS KMS operations (API version
// 2014-11-01) as plain Go methods: input validation with AWS's messages, the
// key state machine, aliases, tags, grants, rotation, imported material,
// deletion, and cryptography with keys whose material never leaves the
// process.
//
// Each method takes the caller and a typed request (internal/kmsapi) and
// returns a typed response or a *fault.Error; it knows nothing of HTTP.
// Keys are found through the key repository (internal/keyrepo), whose
// cache lets Encrypt, Decrypt and GenerateDataKey do no storage access once
// a key is warm, and every use of a key is authorized by internal/authz
// first. Each key an operation resolves is added to the audit event its
// context carries (internal/audit), so that the record names exactly the
// keys the operation used.
//
// Limits: SM2 keys (China Regions only on AWS) are not offered.
package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/authz"
	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/keyrepo"

	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
)

// Caller is the authenticated principal a request is made as.
type Caller = authz.Caller

// Config holds the dependencies of a Service.
type Config struct {
	Store   store.Store
	RootKey *keys.RootKey
	Region  string // the default region, e.g. us-east-1
	// Regions are the regions served (replicas may be made in them);
	// empty means any.
	Regions []string
	Now     func() time.Time            // defaults to time.Now
	Logger  *slog.Logger                // defaults to slog.Default()
	Random  func(b []byte) (int, error) // defaults to crypto/rand.Read; used for GenerateRandom and data keys
	// CacheSize bounds the number of keys held decrypted in memory
	// (default 10000).
	CacheSize int
	// CacheMaxAge, if positive, is how long a cached key or alias is used
	// before it is read again: the bound on staleness when the store is
	// shared with other processes and a change notification (Changed) is
	// lost. Zero keeps entries until a change through this Service or
	// Changed drops them.
	CacheMaxAge time.Duration
	// ChangeStore, if set, holds Store's records through connections of
	// its own: Changed reads the records other processes changed from it,
	// not waiting behind calls for Store's (keyrepo.Config.ChangeStore).
	ChangeStore store.Store
	// PrincipalID returns the unique id of the IAM user or role an ARN
	// names, or "" if none exists: key policies may name only real
	// principals, and are bound to their ids (policy.Policy.Bind). Nil
	// accepts every well-formed ARN and binds nothing.
	PrincipalID func(ctx context.Context, arn string) (string, error)
	// KeyQuota is how many keys an account may have in a region
	// (keyrepo.DefaultKeyQuota if zero, as on AWS).
	KeyQuota int
	// RSAKeyPairs bounds the RSA key pairs made at once, data key pairs
	// (GenerateDataKeyPair), wrapping keys (GetParametersForImport) and
	// RSA keys' material (CreateKey) together (default: half the CPUs, at
	// least one); calls past it wait, and a freed place goes round-robin
	// to the accounts whose calls wait.
	RSAKeyPairs int
	// GenerateKeyPair makes the private key of a data key pair or of a
	// wrapping key, DER PKCS#8 (keys.GenerateAsymmetric if nil).
	GenerateKeyPair func(spec string) ([]byte, error)
	// Trail records the work the service does on its own, which no call
	// asked for (serviceevents.go): the trail the server records calls
	// in. Nil records nothing.
	Trail audit.Recorder
}

// Service implements the KMS operations. It is safe for concurrent use.
type Service struct {
	store   store.Store
	repo    *keyrepo.Repo
	authz   *authz.Authorizer
	root    *keys.RootKey
	region  string
	regions map[string]bool // nil: any
	now     func() time.Time
	log     *slog.Logger
	random  func([]byte) (int, error)

	principalID func(context.Context, string) (string, error)
	keyQuota    int

	usage *usageTracker // key uses not yet written (lastusage.go)

	reloads reloadLimit // reloads of a key a blob of a newer version asks for (crypto.go)

	aliasLocks [64]sync.Mutex // changes of one alias, one at a time on this node (aliases.go)

	rsaPairs   *fairSemaphore // a place per RSA key pair made at once (asymmetric.go)
	genKeyPair func(spec string) ([]byte, error)

	trail audit.Recorder // nil: service events are not recorded (serviceevents.go)
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.RootKey == nil || cfg.Region == "" {
		return nil, errors.New("service: Store, RootKey and Region are required")
	}
	s := &Service{store: cfg.Store, root: cfg.RootKey, region: cfg.Region, now: cfg.Now, log: cfg.Logger, random: cfg.Random,
		principalID: cfg.PrincipalID, keyQuota: cfg.KeyQuota, trail: cfg.Trail}
	if s.keyQuota <= 0 {
		s.keyQuota = keyrepo.DefaultKeyQuota
	}
	n := cfg.RSAKeyPairs
	if n <= 0 {
		n = max(1, runtime.GOMAXPROCS(0)/2)
	}
	s.rsaPairs = newFairSemaphore(n)
	s.genKeyPair = cfg.GenerateKeyPair
	if s.genKeyPair == nil {
		s.genKeyPair = keys.GenerateAsymmetric
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.random == nil {
		s.random = rand.Read
	}
	if len(cfg.Regions) > 0 {
		s.regions = make(map[string]bool, len(cfg.Regions))
		for _, r := range cfg.Regions {
			s.regions[r] = true
		}
	}
	s.usage = newUsageTracker(s.clock())
	repo, err := keyrepo.New(keyrepo.Config{Store: cfg.Store, RootKey: cfg.RootKey, Region: cfg.Region, Now: s.now, Logger: s.log,
		CacheSize: cfg.CacheSize, CacheMaxAge: cfg.CacheMaxAge, ChangeStore: cfg.ChangeStore})
	if err != nil {
		return nil, err
	}
	s.repo = repo
	s.authz = authz.New(s.now, s.region, s.keyAliases)
	keysBound, grantsBound, err := s.bindStored(context.Background())
	if errors.Is(err, store.ErrUnauthenticated) {
		// The calls that read the record fail; the others are served.
		s.log.Error("stored key policies and grants not bound to the principals they name: a record was changed outside the server", "err", err)
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("service: binding stored key policies and grants to the principals they name: %w", err)
	}
	if keysBound+grantsBound > 0 {
		s.log.Info("stored key policies and grants bound to the unique ids of the users and roles they name",
			"keyPolicies", keysBound, "grants", grantsBound)
	}
	return s, nil
}

// Changed tells the service that other processes sharing its store changed
// the records named (store keys); nil means anything may have changed. It
// drops the cache entries those records feed, so that the next request
// reads them again, or patches a cached key from the records named, read
// again, when they are its grants or its last use alone
// (keyrepo.Repo.Changed).
func (s *Service) Changed(records [][]byte) { s.repo.Changed(records) }

// KeyCacheStats returns how many key lookups the cache answered, and how
// many it did not (each of those read the store), since the service began.
func (s *Service) KeyCacheStats() (hits, misses uint64) { return s.repo.CacheStats() }

// resolve finds the key an identifier names, as caller (keyrepo.Resolve),
// and notes it in the call's audit event.
func (s *Service) resolve(ctx context.Context, caller Caller, ident string, forms keyrepo.Forms) (*keyrepo.Key, error) {
	k, _, err := s.resolveAlias(ctx, caller, ident, forms)
	return k, err
}

// resolveAlias is resolve that also returns the alias name the identifier
// used, if any (for kms:RequestAlias).
func (s *Service) resolveAlias(ctx context.Context, caller Caller, ident string, forms keyrepo.Forms) (*keyrepo.Key, string, error) {
	k, alias, err := s.repo.Resolve(ctx, caller.AccountID, s.regionOf(caller), ident, forms)
	if err != nil {
		return nil, "", s.storeErr("resolve key", err)
	}
	audit.FromContext(ctx).AddKey(k.ARN)
	return k, alias, nil
}

// Region is the default region: of requests that name none, and of the
// records stored before keys had regions.
func (s *Service) Region() string { return s.region }

// Serves reports whether region is one the service serves.
func (s *Service) Serves(region string) bool { return s.regions == nil || s.regions[region] }

// regionOf is the region of a request.
func (s *Service) regionOf(c Caller) string {
	if c.Region != "" {
		return c.Region
	}
	return s.region
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// storeErr turns a storage failure into an internal error, logging the cause
// (which clients never see).
func (s *Service) storeErr(op string, err error) error {
	var e *fault.Error
	if errors.As(err, &e) {
		return e
	}
	s.log.Error("storage failure", "op", op, "err", err)
	return &fault.Error{Code: fault.Internal, Message: "An internal error occurred."}
}

func (s *Service) view(ctx context.Context, op string, fn func(store.Tx) error) error {
	if err := s.store.View(ctx, fn); err != nil {
		return s.storeErr(op, err)
	}
	return nil
}

func (s *Service) update(ctx context.Context, op string, fn func(store.Tx) error) error {
	if err := s.store.Update(ctx, fn); err != nil {
		return s.storeErr(op, err)
	}
	return nil
}

// useKey is the start every operation on one key shares: resolve the
// identifier in the forms the operation accepts (noting the key for the
// audit record), then authorize action on it with the request's
// conditions, to which it adds the alias the identifier used. The key's
// state is checked after, by the operation, since what a state allows
// differs per operation; a caller who may not use the key learns nothing
// of its state.
func (s *Service) useKey(ctx context.Context, caller *Caller, ident string, forms keyrepo.Forms, action string, cond *authz.Conditions) (*keyrepo.Key, error) {
	k, alias, err := s.resolveAlias(ctx, *caller, ident, forms)
	if err != nil {
		return nil, err
	}
	if cond == nil {
		cond = &authz.Conditions{}
	}
	cond.Alias = alias
	if err := s.authz.Key(ctx, caller, action, k, cond); err != nil {
		return nil, err
	}
	return k, nil
}

var (
	getJSON = store.GetJSON
	putJSON = store.PutJSON
)

// WithoutCache returns ctx marking a call whose keys, their policies,
// grants and aliases are read from the store rather than the cache: a call
// that changes something, authorized against what is stored now.
func WithoutCache(ctx context.Context) context.Context { return keyrepo.WithoutCache(ctx) }

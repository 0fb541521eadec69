// Package server assembles a running KMS server from its options: the root
// key, the data directory and store, the dev bootstrap (account, root
// credentials file), the HTTP listener, the background maintenance and
// graceful shutdown.
//
// With the embedded store a server is a single node. With PostgreSQL
// (Options.Storage) it is one of any number of identical nodes: each keeps
// its caches coherent from the store's change notifications (and trusts a
// cached entry at most Options.CacheMaxAge), and the background work runs
// on whichever node holds the cluster's maintenance lease.
package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openkms/kms/internal/api"
	"github.com/openkms/kms/internal/atomicfile"
	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/authstore"
	"github.com/openkms/kms/internal/backup"
	"github.com/openkms/kms/internal/console"
	"github.com/openkms/kms/internal/datadir"
	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/logrepeat"
	"github.com/openkms/kms/internal/metrics"
	"github.com/openkms/kms/internal/outbox"
	"github.com/openkms/kms/internal/rootkey"
	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
	"github.com/openkms/kms/internal/store/pgstore"
)

// DevAccount is the account a --dev server creates.
const DevAccount = "111122223333"

// Options configure a server.
type Options struct {
	Listen      string // host:port; port 0 picks a free one
	DataDir     string
	Region      string // the default region: of the console and of records stored before keys had regions
	Regions     string // the regions served, comma-separated; empty: PublicRegions
	Dev         bool
	RootKeyFile string // path of a file holding the root key
	RootKeyText string // the root key itself, or a PKCS#11 URI (--root-key, KMS_ROOT_KEY)
	// RootKeyFileFrom and RootKeyFrom name where RootKeyFile and
	// RootKeyText came from, in messages (default --root-key-file and
	// KMS_ROOT_KEY). Given both, the server refuses to start.
	RootKeyFileFrom string
	RootKeyFrom     string
	// PKCS11Module is the PKCS#11 module (a shared library) that reaches
	// the token of a RootKeyText that is a PKCS#11 URI.
	PKCS11Module string
	// Getenv reads the token's PIN (KMS_PKCS11_PIN) when the URI does not
	// say where it is; nil reads nothing.
	Getenv func(string) string
	// InitCredentials, outside dev mode, is a file to write the account
	// root's first access key to, on the start that initialises the
	// account, and never again.
	InitCredentials string
	// AuthenticateStore lets this start authenticate, as they are, the
	// records of a key store written before they were authenticated
	// (internal/authstore); without it such a store is refused, as its old
	// root key check record could have been put back, and its records
	// edited, by someone who can write the store. A dev server with its
	// root key in its data directory (and no --storage) does it without
	// being asked.
	AuthenticateStore bool
	Stdout            io.Writer
	Logger            *slog.Logger
	// SweepInterval is how often keys past their deletion date are deleted
	// (default one minute).
	SweepInterval time.Duration
	// DigestInterval is how often the audit trail's head is signed, when
	// anything was recorded since (DefaultDigestInterval if zero); and at
	// shutdown.
	DigestInterval time.Duration
	// UsageFlushInterval is how often each node writes the key uses it
	// noted in memory into the key records (GetKeyLastUsage), and at
	// shutdown (DefaultUsageFlushInterval if zero). A crash loses at most
	// the uses of one interval.
	UsageFlushInterval time.Duration
	// Storage, if set, is the PostgreSQL database (a postgres:// URL) the
	// node keeps its records in, shared with the other nodes of a cluster;
	// empty keeps them in DataDir/kms.db.
	Storage string
	// CacheMaxAge bounds how long a node trusts a cached key, alias or
	// credential when it shares its store (default 5 s); changes made on
	// other nodes normally arrive within milliseconds as notifications.
	CacheMaxAge time.Duration
	// ReadTimeout bounds the time a client takes to send a request,
	// headers and body (DefaultReadTimeout if zero).
	ReadTimeout time.Duration
	// MaxClockSkew is how far a KMS request's signing time may be from the
	// server's clock (DefaultMaxClockSkew if zero).
	MaxClockSkew time.Duration
	// BodyMemory bounds the bytes of request bodies being received at once
	// (api.DefaultBodyMemory if zero).
	BodyMemory int64
	// WriteTimeout bounds the time from the end of a request's headers to
	// the end of its answer; IdleTimeout, a keep-alive connection's wait
	// between requests (DefaultWriteTimeout, DefaultIdleTimeout if zero).
	WriteTimeout, IdleTimeout time.Duration
	// AuditSync is "always" (the default: a call is answered only once its
	// record is on stable storage) or "interval" (answered once written to
	// the operating system, fsynced within AuditSyncInterval; see
	// audit.Log.SyncEvery for what it may lose).
	AuditSync         string
	AuditSyncInterval time.Duration
	// AuditSegmentBytes is the size past which a data directory's trail
	// rolls to a new segment file (audit.DefaultSegmentBytes if zero).
	AuditSegmentBytes int64
	// ShutdownTimeout bounds how long the requests in flight at shutdown
	// may take to finish (DefaultShutdownTimeout if zero).
	ShutdownTimeout time.Duration
	// CallTimeout bounds how long a call may take once its body is read:
	// past it the call's store transaction is cancelled and a KMS call
	// is answered DependencyTimeoutException (DefaultCallTimeout if zero).
	CallTimeout time.Duration
	// KeyQuota is how many keys an account may have in a region
	// (keyrepo.DefaultKeyQuota if zero).
	KeyQuota int
	// MaxConnections bounds the open client connections
	// (DefaultMaxConnections if zero); at the limit the longest idle
	// makes room for a newcomer (connLimiter).
	MaxConnections int
	// MaxConnectionsPerSource bounds the connections of one client
	// address (an IPv6 /64): a quarter of MaxConnections if zero, no bound
	// if negative. Trusted proxies and loopback clients have none, nor
	// has anyone with InsecureHTTP and no TrustedProxies (every
	// connection then comes from the proxy in front).
	MaxConnectionsPerSource int

	// TLSCert and TLSKey are the PEM files of the server's certificate (a
	// chain may follow it) and its private key: with them the server
	// speaks HTTPS only, TLS 1.2 or later. They are read again on
	// ReloadTLS and whenever they change.
	TLSCert, TLSKey string
	// TLSClientCA, with TLS, is a PEM file of the CAs whose client
	// certificates are required (in addition to SigV4, not instead).
	TLSClientCA string
	// DevTLS, with Dev, makes a local CA and a certificate for localhost in
	// the data directory (ca.pem, tls.pem, tls-key.pem) and serves HTTPS.
	DevTLS bool
	// InsecureHTTP allows plain HTTP on a non-loopback address without Dev
	// (behind a TLS-terminating proxy).
	InsecureHTTP bool
	// TrustedProxies are the addresses and CIDR prefixes (comma-separated)
	// of proxies whose X-Forwarded-For names the client (fromProxies).
	TrustedProxies string
	// ReloadTLS reloads the certificate files whenever it delivers.
	ReloadTLS <-chan struct{}

	// MetricsListen, if set, serves /metrics on this address (plain HTTP)
	// instead of beside the API.
	MetricsListen string
	// PprofListen, if set, serves Go's runtime profiles under
	// /debug/pprof/ on this loopback address (plain HTTP), for diagnosis.
	PprofListen string
	// NoConsole turns the web console at /console/ off.
	NoConsole bool
	// ConsoleIdleTimeout and ConsoleSessionTimeout end a console session
	// after so long without a request and so long after sign-in
	// (console.DefaultIdleTimeout and DefaultAbsoluteTimeout if zero).
	ConsoleIdleTimeout, ConsoleSessionTimeout time.Duration
	// RateLimit, if positive, limits each account to this many calls a
	// second in each of KMS, IAM, STS and reading the audit trail, in each
	// region, in bursts of up to RateBurst; calls over it are refused with
	// ThrottlingException (Throttling in IAM and STS).
	RateLimit float64
	RateBurst int
	// Version names the server's build in kms_build_info.
	Version string
	// AuditorAccounts are the accounts (comma-separated) whose roots, and
	// whose principals allowed openkms:ReadAllAccountsAuditTrail, read the
	// audit records of every account over the API; the others read only
	// their own account's. A dev server's account is one by default.
	AuditorAccounts string
}

// DefaultMaxClockSkew is Options.MaxClockSkew's default, AWS KMS's window.
const DefaultMaxClockSkew = identity.DefaultMaxClockSkew

// DefaultDigestInterval is Options.DigestInterval's default: records
// newer than the last digest are protected by the chain only, so it is
// short. kms audit verify expects a chain in PostgreSQL to have a digest
// within audit.ChainDigestGrace of its first record.
const DefaultDigestInterval = audit.DigestInterval

// DefaultCacheMaxAge is Options.CacheMaxAge's default.
const DefaultCacheMaxAge = 5 * time.Second

// Run starts the server and blocks until ctx is done, then shuts down
// gracefully: it stops accepting connections, lets the requests in flight
// finish (for up to Options.ShutdownTimeout), writes the audit trail's
// digest, and closes the trail and the store.
func Run(ctx context.Context, o Options) error {
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	// While a dependency is down every refused call logs its failure:
	// the first is logged, then a count every few seconds (a line of
	// another failure is logged at once).
	repeats := logrepeat.New(o.Logger.Handler(), logrepeat.Config{Varying: []string{"requestId"}})
	defer repeats.Flush()
	o.Logger = slog.New(repeats)
	if o.SweepInterval <= 0 {
		o.SweepInterval = time.Minute
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.BodyMemory <= 0 {
		o.BodyMemory = api.DefaultBodyMemory
	}
	o.WriteTimeout = orDefault(o.WriteTimeout, DefaultWriteTimeout)
	o.IdleTimeout = orDefault(o.IdleTimeout, DefaultIdleTimeout)
	o.ShutdownTimeout = orDefault(o.ShutdownTimeout, DefaultShutdownTimeout)
	o.CallTimeout = orDefault(o.CallTimeout, DefaultCallTimeout)
	if o.MaxConnections <= 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if err := checkListen(o); err != nil {
		return err
	}
	proxies, err := parseTrustedProxies(o.TrustedProxies)
	if err != nil {
		return err
	}
	auditors, err := ParseAuditorAccounts(o.AuditorAccounts, o.Dev)
	if err != nil {
		return err
	}
	// Before the data directory is made: a refused start leaves nothing.
	regions, err := ParseRegions(o.Regions, o.Region)
	if err != nil {
		return err
	}
	switch o.AuditSync {
	case "", "always":
	case "interval":
		if o.Storage != "" {
			return errors.New("--audit-sync=interval is for a trail in a file: with --storage each batch is a PostgreSQL commit")
		}
		o.AuditSyncInterval = orDefault(o.AuditSyncInterval, DefaultAuditSyncInterval)
	default:
		return fmt.Errorf("--audit-sync is always or interval, not %q", o.AuditSync)
	}
	if o.KeyQuota < 0 {
		return fmt.Errorf("--key-quota must be positive, not %d", o.KeyQuota)
	}
	if o.AuditSegmentBytes < 0 {
		return fmt.Errorf("--audit-segment-bytes must be positive, not %d", o.AuditSegmentBytes)
	}
	absDir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	o.DataDir = absDir
	if !o.Dev && o.RootKeyFile == "" && o.RootKeyText == "" {
		return errNoRootKey
	}
	if err := rootKeySpec(o).Check(); err != nil {
		return err
	}
	// The TLS files are loaded and every address bound before the data
	// directory is made: a refused start leaves nothing. The listeners
	// are kept for serving. --dev --tls's certificate is the exception:
	// it is made in the data directory, so it is loaded after (devTLS).
	ep, err := openEndpoint(o)
	if err != nil {
		return err
	}
	defer ep.limit.Close()
	var metricsLn, pprofLn net.Listener
	if o.MetricsListen != "" {
		if metricsLn, err = listenOps("metrics", o.MetricsListen); err != nil {
			return err
		}
		defer metricsLn.Close()
	}
	if o.PprofListen != "" {
		if pprofLn, err = listenOps("pprof", o.PprofListen); err != nil {
			return err
		}
		defer pprofLn.Close()
	}
	if err := datadir.Prepare(o.DataDir); err != nil {
		return err
	}
	if o.Storage == "" {
		// Before a dev root key is made beside it.
		if err := datadir.CheckStore(filepath.Join(o.DataDir, "kms.db")); err != nil {
			return err
		}
	}
	src, err := loadRootKey(o)
	if err != nil {
		return err
	}
	if o.RootKeyFile != "" {
		// Refusing would stop a Kubernetes secret mounted with its
		// default mode 0644; the operator is told instead.
		if fi, err := os.Stat(o.RootKeyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
			o.Logger.Warn("the root key file can be read by other users than its owner: chmod 600 it", "file", o.RootKeyFile, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
		}
	}
	st, pg, err := openStore(ctx, o)
	if err != nil {
		src.Close()
		return err
	}
	defer st.Close()
	bolt, _ := st.(*boltstore.Store) // nil on PostgreSQL
	var serving *servingState        // nil: not a node of a cluster
	if pg != nil {
		// Every node shares the "serving" lease for as long as it runs:
		// kms root-key rotate and kms migrate lead it, and so refuse to
		// run beside a node (and a node refuses to start beside them).
		serving = new(servingState)
		stop, err := shareServing(ctx, pg, serving, o.Logger)
		if err != nil {
			src.Close()
			return err
		}
		defer stop()
	}
	// A token's key is needed once, to unwrap the store's root key: log
	// out of it at once.
	root, err := src.Root(ctx, st, true)
	src.Close()
	if err != nil {
		return err
	}
	var svc *service.Service
	m := metrics.New(o.Version, func() (uint64, uint64) {
		if svc == nil {
			return 0, 0
		}
		return svc.KeyCacheStats()
	})
	st = m.Store(st)
	var cacheMaxAge time.Duration
	if pg != nil {
		if cacheMaxAge = o.CacheMaxAge; cacheMaxAge <= 0 {
			cacheMaxAge = DefaultCacheMaxAge
		}
	}
	trailDir := o.DataDir // the trail a new key store must not meet
	if pg != nil {
		trailDir = ""
	}
	// The store as it is, for backups: its records with their tags.
	raw := st
	// A dev server's root key is root.key in its own data directory:
	// whoever can write its kms.db can read the key beside it, so asking
	// for --authenticate-store would protect nothing there.
	devKey := o.Dev && o.RootKeyFile == "" && o.RootKeyText == "" && o.Storage == ""
	st, opened, err := checkRootKey(ctx, st, root, trailDir, o.AuthenticateStore || devKey)
	if err != nil {
		return err
	}
	if opened.Upgraded > 0 {
		o.Logger.Info("the key store's records are now authenticated under the root key", "records", opened.Upgraded)
	}
	if o.AuthenticateStore && opened.Upgraded == 0 && opened.PutBack == "" {
		// Kept on, it would authenticate a store put back as it was before.
		o.Logger.Warn("--authenticate-store is for the one start that authenticates a store from before: this one's records are authenticated already, leave it out")
	}
	if opened.PutBack != "" {
		o.Logger.Error("the key store's "+string(keys.RootCheckRecord)+" record was put back as it was before its records were authenticated, by someone without the root key: "+
			"nothing was authenticated, and records changed since fail to read", "tagged", opened.PutBack)
	}
	// A start-up pass that meets a record changed outside the server is
	// skipped, not run on what it could not read: the calls that read the
	// record fail, and the others are served.
	if n, err := keyrepo.MigrateRegions(ctx, st, root, o.Region); errors.Is(err, store.ErrUnauthenticated) {
		o.Logger.Error("key records not moved into their region: a record was changed outside the server", "err", err)
	} else if err != nil {
		return fmt.Errorf("moving the key records into region %s: %w", o.Region, err)
	} else if n > 0 {
		o.Logger.Info("key records moved into their region", "region", o.Region, "records", n)
	}
	if n, err := keyrepo.BindMaterials(ctx, st, root); errors.Is(err, store.ErrUnauthenticated) {
		o.Logger.Error("key material not bound to its keys' spec, usage and origin: a record was changed outside the server", "err", err)
	} else if err != nil {
		return fmt.Errorf("binding key material to its keys' spec, usage and origin: %w", err)
	} else if n > 0 {
		o.Logger.Info("key material bound to its keys' spec, usage and origin", "versions", n)
	}
	var creds string
	credsSkipped := false
	if o.Dev || o.InitCredentials != "" {
		path := o.InitCredentials
		if o.Dev {
			path = filepath.Join(o.DataDir, "credentials")
		}
		creds, err = writeCredentials(ctx, st, root, path, o.Dev, o.Logger)
		if errors.Is(err, store.ErrUnauthenticated) {
			// Neither a new root access key (the account may have one)
			// nor a secret read from a record no one can vouch for.
			o.Logger.Error("the account root's credentials not written: a record was changed outside the server", "err", err)
			credsSkipped, err = true, nil
		}
		if err != nil {
			return err
		}
	}
	trail, digester, closeAudit, err := openAudit(ctx, st, pg, root, o)
	if err != nil {
		return err
	}
	defer closeAudit()
	defer trail.Close()
	// Each call's change is kept with its record until the record is in
	// the trail: a node killed between the two, or a trail that failed
	// just then, leaves the record to be written at the next start.
	var trailReader api.TrailReader = audit.NewFileTrail(o.DataDir)
	if pg != nil {
		trailReader = audit.NewPostgresTrail(pg.Pool())
	}
	box := outbox.New(trail, trailReader, time.Now, o.Logger)
	st = box.Wrap(st)
	if n, err := box.Recover(ctx, false); err != nil {
		o.Logger.Error("writing the records of calls whose changes were made but not recorded; tried again while serving", "err", err)
	} else if n > 0 {
		o.Logger.Warn("wrote the records of calls whose changes were made before the server stopped, marked recovered", "records", n)
	}
	if err := box.Flush(ctx); err != nil {
		return fmt.Errorf("deleting the outbox entries of recorded calls: %w", err)
	}
	defer func() {
		if err := box.Flush(context.Background()); err != nil {
			o.Logger.Error("deleting the outbox entries of recorded calls", "err", err)
		}
	}()
	dir := identity.New(identity.Config{Store: st, RootKey: root, Region: o.Region, Regions: regions, Logger: o.Logger, CacheMaxAge: cacheMaxAge,
		MaxClockSkew: o.MaxClockSkew})
	if n, err := dir.BindStoredTrust(ctx); errors.Is(err, store.ErrUnauthenticated) {
		// The calls that read the record fail; the others are served.
		o.Logger.Error("stored role trust policies not bound to the principals they name: a record was changed outside the server", "err", err)
	} else if err != nil {
		return fmt.Errorf("binding stored role trust policies to the principals they name: %w", err)
	} else if n > 0 {
		o.Logger.Info("stored role trust policies bound to the unique ids of the users and roles they name", "roles", n)
	}
	if n, err := dir.SealStoredPasswordHashes(ctx); err != nil {
		return fmt.Errorf("sealing the stored hashes of console passwords under the root key: %w", err)
	} else if n > 0 {
		o.Logger.Info("console password hashes stored in the clear sealed under the root key; the clear ones leave the store's files at the next maintenance round", "passwords", n)
	}
	// Calls and the work no call asked for (the service's own events)
	// are recorded in the same trail.
	recorder := box.Recorder(audit.NewLogRecorder(trail))
	var changeStore store.Store // nil: not a node of a cluster
	if pg != nil {
		// The records other nodes changed are read through a connection
		// of their own: calls waiting for the store's connections (behind
		// a record another client keeps locked) must not hold up the news
		// of a key disabled or a grant revoked on another node.
		side, err := pg.Sibling(ctx, changeReadConns)
		if err != nil {
			return fmt.Errorf("the connection for changed records: %w", err)
		}
		defer side.Close()
		changeStore = authstore.Wrap(m.Store(side), authstore.NewKey(root))
	}
	svc, err = service.New(service.Config{Store: st, ChangeStore: changeStore, RootKey: root, Region: o.Region, Regions: regions, Logger: o.Logger,
		PrincipalID: dir.PrincipalID, CacheMaxAge: cacheMaxAge, KeyQuota: o.KeyQuota, Trail: recorder})
	if err != nil {
		return err
	}
	if pg != nil {
		watchCtx, stopWatch := context.WithCancel(context.Background())
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			pg.Watch(watchCtx, applyChanges(o.Logger, svc, dir))
		}()
		defer func() {
			stopWatch()
			<-watched
		}()
	}
	if pg == nil {
		// The newest digest, kept in the key store and beside the trail,
		// is the high-water mark kms audit verify checks the trail against.
		digester.OnDigest(func(line []byte) error {
			err := st.Update(context.Background(), func(tx store.Tx) error { return tx.Put([]byte(audit.MarkRecord), line) })
			if err != nil {
				return err
			}
			return atomicfile.Write(filepath.Join(o.DataDir, audit.MarkFile), append(line, '\n'), 0o644)
		})
	}
	defer func() {
		if err := digester.Write(trail, time.Now()); err != nil {
			o.Logger.Error("writing the audit digest at shutdown", "err", err)
		}
		digester.Close()
	}()
	digestCtx, stopDigests := context.WithCancel(context.Background())
	digestsDone := make(chan struct{})
	go func() {
		defer close(digestsDone)
		// Until the trail's first record is signed, look every 100 ms: a
		// chain with records and no digest does not verify, and a node
		// killed before its first digest would leave one (docs/audit.md).
		interval := orDefault(o.DigestInterval, DefaultDigestInterval)
		first := min(100*time.Millisecond, interval)
		t := time.NewTicker(first)
		defer t.Stop()
		for {
			select {
			case <-digestCtx.Done():
				return
			case <-t.C:
				if err := digester.Write(trail, time.Now()); err != nil {
					o.Logger.Error("writing the audit digest", "err", err)
				} else if first != interval {
					if seq, _ := trail.Head(); seq > 0 {
						first = interval
						t.Reset(interval)
					}
				}
			}
		}
	}()
	defer func() {
		stopDigests()
		<-digestsDone
	}()
	trail.Observe(trailObserver{Metrics: m, log: o.Logger})
	// After an erasure, the maintenance round clears the store's files of
	// what it erased; on bbolt, not while a backup's snapshot is taken.
	var backups sync.Mutex
	var erase *eraser
	switch {
	case bolt != nil:
		erase = boltEraser(st, bolt, &backups, o.Logger)
	case pg != nil:
		erase = pgEraser(st, pg, o.Logger)
	}
	if pg == nil {
		// bbolt locks kms.db against every other process: kms backup
		// asks this server for its snapshots.
		if ln, err := backup.Listen(o.DataDir); err != nil {
			o.Logger.Warn("no backup socket: kms backup --data-dir needs the server stopped", "err", err)
		} else {
			defer ln.Close()
			go backup.Serve(ln, func(w io.Writer) error {
				backups.Lock()
				defer backups.Unlock()
				// Sign the trail up to now, so that the snapshot's trail
				// ends in a digest as a stopped server's does.
				if err := digester.Write(trail, time.Now()); err != nil {
					return fmt.Errorf("audit digest: %w", err)
				}
				return backup.LiveSnapshot(context.Background(), raw, root, o.DataDir, w)
			}, o.Logger.Error)
		}
	}
	handler := api.NewHandler(svc, dir, o.Logger).WithAudit(recorder, o.Region).WithTrailReader(trailReader).WithAuditorAccounts(auditors...).
		WithBodyMemory(o.BodyMemory).WithRateLimit(o.RateLimit, o.RateBurst).WithObserver(observer(m, o.Logger)).
		WithTLSInFront(o.InsecureHTTP && len(proxies) == 0).WithReadTimeout(o.ReadTimeout).WithCallTimeout(o.CallTimeout)
	if serving != nil {
		handler.WithServing(serving.err)
	}
	m.UnrecordedCalls(handler.UnrecordedCalls)
	m.BodyBytes(handler.BodyBytes)
	m.RSAKeyPairsWaiting(svc.RSAKeyPairsWaiting)

	if err := ep.devTLS(o); err != nil {
		return err
	}
	if perSource := o.MaxConnectionsPerSource; !(o.InsecureHTTP && len(proxies) == 0) {
		if perSource == 0 {
			perSource = max(o.MaxConnections/4, 1)
		}
		// Loopback clients are one host, which any local user could
		// spread over 127/8 anyway: no limit for them, as for proxies.
		exempt := append([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}, proxies...)
		ep.limit.limitSources(perSource, exempt)
	}
	url := ep.url
	var metricsHandler http.Handler = m.Handler()
	if o.MetricsListen != "" {
		defer serveMetricsOn(metricsLn, metricsHandler, o.Logger)()
		metricsHandler = nil
	}
	if o.PprofListen != "" {
		stopPprof, err := servePprof(pprofLn, o.Logger)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	var consoleHandler http.Handler
	if !o.NoConsole {
		// --insecure-http is for a TLS-terminating proxy in front: the
		// browser is on https, and the cookie must say so.
		consoleHandler = console.New(console.Config{Backend: handler, Directory: dir, Regions: regions, Region: o.Region, Secure: ep.tls != nil || o.InsecureHTTP, Logger: o.Logger,
			LoopbackOnly: isLoopback(o.Listen) && len(proxies) == 0,
			IdleTimeout:  o.ConsoleIdleTimeout, AbsoluteTimeout: o.ConsoleSessionTimeout, CallTimeout: o.CallTimeout})
	}
	srv := httpServer(o, fromProxies(withOps(handler, readiness(st, trail, serving, o.Logger), metricsHandler, consoleHandler), proxies, o.InsecureHTTP), o.Logger)
	srv.ConnState = ep.limit.track
	if ep.reload != nil {
		stopReload := make(chan struct{})
		defer close(stopReload)
		go ep.reload.watch(o.ReloadTLS, tlsReloadCheck, stopReload)
	}
	if pg != nil {
		fmt.Fprintf(o.Stdout, "records in PostgreSQL at %s, shared with the other nodes of the cluster\n", describeDSN(o.Storage))
	}
	fmt.Fprintf(o.Stdout, "kms server listening on %s (region %s, data in %s)\n", url, o.Region, o.DataDir)
	if !o.NoConsole {
		fmt.Fprintf(o.Stdout, "web console at %s%s\n", strings.TrimSuffix(url, "/"), console.Prefix)
	}
	if !o.Dev && o.InitCredentials != "" {
		// Said either way: a start that writes nothing would otherwise
		// leave the operator looking for a file that will never come.
		switch {
		case credsSkipped:
			fmt.Fprintf(o.Stdout, "The account root's access key could not be read: nothing was written to %s (see the log)\n", o.InitCredentials)
		case creds == "":
			fmt.Fprintf(o.Stdout, "--init-credentials: nothing written to %s: the account was initialised before (at an earlier start, or by another node), and only that start hands its root's access key out\n", o.InitCredentials)
		default:
			fmt.Fprintf(o.Stdout, "The account root's access key is in %s, written at this first start only: keep it safe\n", creds)
		}
	}
	if o.Dev && credsSkipped {
		fmt.Fprintf(o.Stdout, "The account root's access key could not be read: no credentials were written (see the log)\n")
	} else if o.Dev && creds == "" {
		fmt.Fprintf(o.Stdout, "The account root has no active access key left: no credentials were written\n")
	} else if o.Dev {
		ca := ""
		if ep.caForCL != "" {
			ca = " AWS_CA_BUNDLE=" + shellQuote(ep.caForCL)
		}
		fmt.Fprintf(o.Stdout, "To use it:\n  export AWS_SHARED_CREDENTIALS_FILE=%s AWS_ENDPOINT_URL=%s AWS_DEFAULT_REGION=%s%s\n  aws kms create-key\n",
			shellQuote(creds), shellQuote(url), shellQuote(o.Region), ca)
		if !o.NoConsole {
			fmt.Fprintf(o.Stdout, "Sign in to the web console with the access key id and secret in %s\n", creds)
		}
	}

	sweepCtx, stopSweep := context.WithCancel(context.Background())
	// The maintenance round stops at the signal, not after the drain: the
	// calls in flight may be waiting for its compaction of the store,
	// which on a large kms.db takes seconds, past --shutdown-timeout.
	maintainCtx, stopMaintenance := context.WithCancel(ctx)
	swept := make(chan struct{})
	go func() {
		defer close(swept)
		m := &maintainer{svc: svc, dir: dir, box: box, pg: pg, erase: erase, log: o.Logger}
		m.run(maintainCtx, o.SweepInterval)
	}()
	boxed := make(chan struct{})
	go func() {
		defer close(boxed)
		box.Run(sweepCtx, outboxInterval)
	}()

	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		flushKeyUsage(sweepCtx, svc, orDefault(o.UsageFlushInterval, DefaultUsageFlushInterval), o.CallTimeout, o.Logger)
	}()

	err = newDrainer(srv, ep.ln, o.Logger).serve(ctx, o.ShutdownTimeout)
	if n := handler.UnrecordedSinceLastRecord(); n > 0 {
		// The trail counts such calls on the next one it records; there
		// is none after this.
		o.Logger.Warn("unauthenticated calls over the audit record budget since the last one recorded were not recorded", "calls", n)
	}
	stopSweep()
	stopMaintenance()
	<-swept
	<-flushed
	<-boxed
	if err != nil {
		return err
	}
	o.Logger.Info("stopped")
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// outboxInterval is how often the outbox entries of recorded calls are
// deleted, and those whose records were refused are looked at again.
const outboxInterval = 2 * time.Second

// DefaultUsageFlushInterval is how often key uses are written by default.
const DefaultUsageFlushInterval = 10 * time.Second

// flushKeyUsage writes the key uses svc noted every interval, and once
// more when ctx ends (after the last request was answered), on every node.
// Each write is given up after timeout, as a call's would be: a key
// record another PostgreSQL client keeps locked must not hold the write
// (and a store connection) for as long as the lock lasts, nor keep the
// server from exiting on SIGTERM. Uses not written periodically are
// tried again at the next interval; at shutdown they are lost.
func flushKeyUsage(ctx context.Context, svc *service.Service, every, timeout time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	flush := func(ctx context.Context) (err error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		survive(log, "writing key last usage", func() { err = svc.FlushKeyUsage(ctx) })
		return err
	}
	for {
		select {
		case <-ctx.Done():
			if err := flush(context.Background()); err != nil {
				log.Error("writing key last usage at shutdown", "err", err)
			}
			return
		case <-t.C:
			if err := flush(ctx); err != nil && ctx.Err() == nil {
				log.Error("writing key last usage", "err", err)
			}
		}
	}
}

// maintainer runs the background work once per interval on the one node
// that leads: the deletion sweeper, rotation, import expiry, the removal
// of expired role sessions, and then the compaction of the store if key
// material was erased. (The audit digests have a ticker of their own, in
// Run.)
type maintainer struct {
	svc   *service.Service
	dir   *identity.Directory
	box   *outbox.Box
	pg    *pgstore.Store // nil: a single node, which always leads
	erase *eraser        // nil: the store is not compacted
	lease *pgstore.Lease
	log   *slog.Logger
}

func (m *maintainer) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	defer func() {
		if m.lease != nil {
			m.lease.Close()
		}
	}()
	for {
		m.tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// tick does one round of the background work; a panic in it is logged,
// and the next round takes the work up again (survive).
func (m *maintainer) tick(ctx context.Context) {
	survive(m.log, "background maintenance", func() { m.round(ctx) })
}

func (m *maintainer) round(ctx context.Context) {
	if !m.leads(ctx) {
		return
	}
	if err := m.svc.Maintain(ctx); err != nil && ctx.Err() == nil {
		m.log.Error("background maintenance (deletion, rotation, import expiry)", "err", err)
	}
	if err := m.dir.DeleteExpiredSessions(ctx); err != nil && ctx.Err() == nil {
		m.log.Error("deleting expired role sessions", "err", err)
	}
	if m.pg != nil && m.box != nil {
		// The calls of a node that died between a change and its record.
		if _, err := m.box.Recover(ctx, true); err != nil && ctx.Err() == nil {
			m.log.Error("writing the records of other nodes' calls whose changes were made but not recorded", "err", err)
		}
	}
	// Last: what this round erased goes with what calls erased since the
	// last one.
	m.erase.round(ctx)
}

// leads reports whether this node does the cluster's background work now,
// taking the maintenance lease if no node holds it.
func (m *maintainer) leads(ctx context.Context) bool {
	if m.pg == nil {
		return true
	}
	if m.lease != nil {
		select {
		case <-m.lease.Lost():
			m.log.Warn("lost the maintenance lease")
			m.lease.Close()
			m.lease = nil
		default:
			return true
		}
	}
	lease, ok, err := m.pg.TryLead(ctx, "maintenance")
	if err != nil {
		if ctx.Err() == nil {
			m.log.Error("taking the maintenance lease", "err", err)
		}
		return false
	}
	if ok {
		m.log.Info("this node now runs the cluster's background work")
		m.lease = lease
	}
	return ok
}

// describeDSN names a database URL's host and database, without its
// credentials.
func describeDSN(dsn string) string {
	u, err := neturl.Parse(dsn)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Host + u.Path
}

// openStore opens the PostgreSQL database of Options.Storage, or else the
// embedded store in the data directory.
func openStore(ctx context.Context, o Options) (store.Store, *pgstore.Store, error) {
	if o.Storage == "" {
		st, err := boltstore.Open(filepath.Join(o.DataDir, "kms.db"))
		return st, nil, err
	}
	if !strings.HasPrefix(o.Storage, "postgres://") && !strings.HasPrefix(o.Storage, "postgresql://") {
		return nil, nil, errors.New("--storage must be a PostgreSQL URL (postgres://user@host:port/database)")
	}
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pg, err := pgstore.Open(openCtx, o.Storage)
	if err != nil {
		return nil, nil, err
	}
	return pg, pg, nil
}

// rootKeySpec is the root key the options give, other than dev mode's.
func rootKeySpec(o Options) rootkey.Spec {
	from := o.RootKeyFrom
	if from == "" {
		from = "KMS_ROOT_KEY"
	}
	return rootkey.Spec{File: o.RootKeyFile, FileName: o.RootKeyFileFrom, Value: o.RootKeyText, ValueName: from,
		Module: o.PKCS11Module, Getenv: o.Getenv}
}

// loadRootKey finds the root key: a file, the KMS_ROOT_KEY text or a
// PKCS#11 URI (logging into its token), or in dev mode DataDir/root.key,
// generated on first start. It refuses a file and a text both given.
func loadRootKey(o Options) (*rootkey.Source, error) {
	switch {
	case o.RootKeyFile != "" || o.RootKeyText != "":
		return rootkey.Load(rootKeySpec(o))
	case o.Dev:
		path := filepath.Join(o.DataDir, "root.key")
		b, err := datadir.ReadSecret(path)
		if errors.Is(err, os.ErrNotExist) {
			if _, err := os.Stat(filepath.Join(o.DataDir, "kms.db")); err == nil {
				return nil, fmt.Errorf("%s holds a key store but no root.key: pass the root key it was created with (--root-key-file, KMS_ROOT_KEY or --root-key pkcs11:...)", o.DataDir)
			}
			// Nodes of a dev cluster may start together on one data
			// directory: the first to create the file wins, and the
			// others read it.
			if _, err := atomicfile.CreateOnce(path, keys.GenerateRootKey(), 0o600); err != nil {
				return nil, fmt.Errorf("create root key: %w", err)
			}
			if b, err = datadir.ReadSecret(path); err != nil {
				return nil, fmt.Errorf("root key: %w", err)
			}
		} else if err != nil {
			return nil, fmt.Errorf("root key: %w", err)
		}
		rk, err := keys.ParseRootKey(b)
		if err != nil {
			return nil, fmt.Errorf("root key %s: %w", path, err)
		}
		return rootkey.FromKey(rk, "root key "+path), nil
	}
	return nil, errNoRootKey
}

var errNoRootKey = errors.New("no root key: pass --root-key-file FILE, set KMS_ROOT_KEY, or pass --root-key pkcs11:token=NAME;object=LABEL (or run with --dev to generate one in the data directory)")

// shellQuote quotes s for a POSIX shell if it needs it.
func shellQuote(s string) string {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-:+=@,", r)) {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}

// checkRootKey makes sure the root key is the one the store (a data
// directory's kms.db or a PostgreSQL database) was created with, so that a
// wrong key fails at start with a clear message rather than on the first
// request, and returns the store with its records authenticated under it
// (internal/authstore): a new store is made so, and one from before is
// upgraded if upgrade, as opened says.
func checkRootKey(ctx context.Context, st store.Store, root *keys.RootKey, trailDir string, upgrade bool) (_ store.Store, opened authstore.Opened, err error) {
	var state authstore.State
	err = st.View(ctx, func(tx store.Tx) error {
		if err := store.CheckCopyFinished(tx); err != nil {
			return err
		}
		state, err = authstore.ReadState(tx, root)
		return err
	})
	if err == nil && state == authstore.New {
		err = checkNoTrail(trailDir)
	}
	if err == nil {
		st, opened, err = authstore.Open(ctx, st, root, upgrade)
	}
	switch {
	case errors.Is(err, authstore.ErrWrongRootKey):
		err = errors.New("the root key is not the one this key store was created with")
	case errors.Is(err, authstore.ErrNotUpgraded):
		err = fmt.Errorf("%w: the key store was written by an earlier version, whose records were not authenticated under the root key. "+
			"Start once with --authenticate-store to authenticate them as they are (docs/storage.md). "+
			"If a server of this version has run on it before, someone who can write the store put its old %s record back: restore a backup instead",
			err, keys.RootCheckRecord)
	}
	return st, opened, err
}

// checkNoTrail refuses to make a new key store beside an audit trail
// (dir; "" for none): the store the trail was written with is missing or
// was emptied, and a new one would sign on with a new audit key,
// replacing audit.pub, while the keys the trail speaks of are gone.
func checkNoTrail(dir string) error {
	if dir == "" {
		return nil
	}
	segs, err := audit.Segments(dir)
	if err != nil {
		return err
	}
	held := ""
	for _, s := range segs {
		if holdsRecords(s.Path) {
			held = s.Name()
			break
		}
	}
	for _, name := range []string{"audit.pub", "audit-digests.log", audit.MarkFile} {
		if held == "" {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				held = name
			}
		}
	}
	if held == "" {
		return nil
	}
	return fmt.Errorf("kms.db is a new, empty key store, but %s holds an audit trail (%s): the key store it was written with is missing or was emptied. Restore the data directory from a backup (kms restore), or move the audit files out of it to start afresh", dir, held)
}

// holdsRecords reports whether the segment at path has a byte before the
// zeros the server writes ahead of its records.
func holdsRecords(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 1)
	n, _ := f.Read(b)
	return n == 1 && b[0] != 0
}

// writeAuditPub writes the trail's public key to path, refusing to replace
// another key there: the digests already written verify only with it.
func writeAuditPub(path string, pub []byte) error {
	old, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return atomicfile.Write(path, pub, 0o644)
	case err != nil:
		return err
	case bytes.Equal(bytes.TrimSpace(old), bytes.TrimSpace(pub)):
		return nil
	}
	return fmt.Errorf("%s holds another signing key than the key store's: the trail's digests were signed with a key this store does not hold (the key store was replaced?). Restore the data directory from a backup, or move the audit files out of it to start afresh", path)
}

// storedMark returns the file trail's high-water mark kept in the key
// store (audit.MarkRecord), or nil if no digest was signed yet.
func storedMark(ctx context.Context, st store.Store) ([]byte, error) {
	var mark []byte
	err := st.View(ctx, func(tx store.Tx) error {
		var err error
		mark, err = tx.Get([]byte(audit.MarkRecord))
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return mark, err
}

// writeCredentials initialises the account (identity.InitAccount) and
// writes its root's access key as an AWS shared-credentials file at path:
// outside dev mode only on the start that initialises the account, so
// that the secret is handed out once, whatever becomes of the key later;
// in dev mode (always) at every start, with the key InitAccount returns
// (the first key, or the root's oldest active one once the first is
// deleted). A dev root without an active key is logged and writes no
// file: no key is made for it again.
func writeCredentials(ctx context.Context, st store.Store, root *keys.RootKey, path string, always bool, log *slog.Logger) (string, error) {
	ak, created, err := identity.InitAccount(ctx, st, root, DevAccount)
	if errors.Is(err, identity.ErrNoRootKey) && always {
		log.Warn("the account root has no active access key: none written", "file", path, "account", DevAccount)
		return "", nil
	}
	if errors.Is(err, identity.ErrNoRootKey) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("root credentials: %w", err)
	}
	if !created && !always {
		return "", nil
	}
	if path, err = filepath.Abs(path); err != nil {
		return "", err
	}
	content := fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", ak.ID, ak.Secret)
	if old, err := os.ReadFile(path); err == nil && string(old) == content {
		return path, nil // another node of the cluster wrote it, or an earlier start
	}
	if err := atomicfile.Write(path, []byte(content), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}

var auditKeyRecord = []byte("meta/audit-signing-key")

// changeReadConns is the size of the pool a node of a cluster reads the
// records other nodes changed through: one, as they are read one change
// at a time.
const changeReadConns = 1

// auditPoolConns is the size of the pool of the audit trail in
// PostgreSQL: one connection for the batch being committed, one for the
// digests and the readiness probe.
const auditPoolConns = 2

// openAudit opens the audit trail and its digester: the segments of
// DATA_DIR (audit.log, audit-000002.log, ...), audit-digests.log and
// audit.pub for the embedded store; with PostgreSQL, a new chain of this
// process in the database's audit tables, written through a pool of its
// own: calls that wait for the store's connections (behind calls held by
// a lock another client keeps) must not keep every other call's record
// from committing. closeAudit, called once the trail and digester are
// closed, closes that pool.
func openAudit(ctx context.Context, st store.Store, pg *pgstore.Store, root *keys.RootKey, o Options) (*audit.Log, *audit.Digester, func(), error) {
	key, err := auditKey(ctx, st, root)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("audit signing key: %w", err)
	}
	if pg != nil {
		pool, err := pg.NewPool(ctx, auditPoolConns)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("audit trail: %w", err)
		}
		host, _ := os.Hostname()
		trail, err := audit.OpenPostgres(ctx, pool, host)
		if err != nil {
			pool.Close()
			return nil, nil, nil, fmt.Errorf("audit trail: %w", err)
		}
		digester, err := audit.OpenPostgresDigester(ctx, pool, trail.Chain(), key)
		if err != nil {
			trail.Close()
			pool.Close()
			return nil, nil, nil, fmt.Errorf("audit digests: %w", err)
		}
		o.Logger.Info("audit trail in PostgreSQL", "chain", trail.Chain())
		return trail, digester, pool.Close, nil
	}
	mark, err := storedMark(ctx, st)
	if err != nil {
		return nil, nil, nil, err
	}
	digestsPath := filepath.Join(o.DataDir, "audit-digests.log")
	pubKey := key.Public().(ed25519.PublicKey)
	trail, err := audit.OpenDirChecked(o.DataDir, o.AuditSegmentBytes, func(seq uint64, hash string) error {
		if mark == nil {
			return nil // no digest signed yet
		}
		return audit.CheckResume(o.DataDir, seq, hash, mark, pubKey, digestsPath)
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("audit trail: %w", err)
	}
	if o.AuditSync == "interval" {
		trail.SyncEvery(o.AuditSyncInterval)
		o.Logger.Warn("audit records are acknowledged before they are fsynced: a machine crash or power loss may lose those of the last interval",
			"interval", o.AuditSyncInterval)
	}
	pub, err := audit.MarshalPublicKey(pubKey)
	if err == nil {
		err = writeAuditPub(filepath.Join(o.DataDir, "audit.pub"), pub)
	}
	var digester *audit.Digester
	if err == nil {
		digester, err = audit.OpenDigester(digestsPath, key)
	}
	if err != nil {
		trail.Close()
		return nil, nil, nil, fmt.Errorf("audit digests: %w", err)
	}
	return trail, digester, func() {}, nil
}

// auditKey loads the Ed25519 key that signs audit digests, sealed under the
// root key in the store (made on first start; shared by a cluster's nodes).
func auditKey(ctx context.Context, st store.Store, root *keys.RootKey) (ed25519.PrivateKey, error) {
	var seed []byte
	err := st.Update(ctx, func(tx store.Tx) error {
		sealed, err := tx.Get(auditKeyRecord)
		if errors.Is(err, store.ErrNotFound) {
			seed = make([]byte, ed25519.SeedSize)
			rand.Read(seed)
			return tx.Put(auditKeyRecord, root.Seal(auditKeyRecord, seed))
		}
		if err != nil {
			return err
		}
		seed, err = root.Open(auditKeyRecord, sealed)
		return err
	})
	if err != nil {
		return nil, err
	}
	key := ed25519.NewKeyFromSeed(seed)
	clear(seed)
	return key, nil
}

// trailObserver measures the audit trail, and logs what an operator
// should know of it.
type trailObserver struct {
	*metrics.Metrics
	log *slog.Logger
}

func (o trailObserver) ZerosFailed(err error) {
	o.Metrics.ZerosFailed(err)
	o.log.Warn("audit trail: no zeros could be written ahead of the records; commits are slower, and for want of room calls are refused once the zeros left are kept for the calls under way", "err", err)
}

// servingState is whether a node of a cluster holds its share of the
// serving lease. While it does not (its connection broke and it is taken
// again), the node refuses every call and is not ready: a kms root-key
// rotate or kms migrate that took the lease meanwhile must not run beside
// a node still sealing records under the old root key.
type servingState struct{ lost atomic.Bool }

var errServingLost = errors.New("the cluster's serving lease was lost with its connection: calls are refused until it is taken again")

// err is nil while the node holds its share of the lease; nil on a nil
// state (not a node of a cluster).
func (s *servingState) err() error {
	if s != nil && s.lost.Load() {
		return errServingLost
	}
	return nil
}

// shareServing takes the serving lease shared, and takes it again if its
// connection breaks, until stop is called; state says meanwhile whether
// it is held.
func shareServing(ctx context.Context, pg *pgstore.Store, state *servingState, log *slog.Logger) (stop func(), err error) {
	lease, ok, err := pg.TryShare(ctx, pgstore.ServingLease)
	if err != nil {
		return nil, fmt.Errorf("the cluster's serving lease: %w", err)
	}
	if !ok {
		return nil, errors.New("the key store is held by kms root-key rotate or kms migrate: start the node once it has finished")
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	// Taking the lease again waits on the database, which may not answer:
	// stop must not wait for it.
	retryCtx, cancelRetry := context.WithCancel(context.Background())
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				lease.Close()
				return
			case <-lease.Lost():
			}
			state.lost.Store(true)
			log.Error("the cluster's serving lease was lost with its connection; calls are refused while it is taken again")
			for {
				l, ok, err := pg.TryShare(retryCtx, pgstore.ServingLease)
				if err == nil && ok {
					lease = l
					break
				}
				if err == nil {
					log.Error("the key store is held by kms root-key rotate or kms migrate: this node refuses calls; restart it once they have finished")
				}
				select {
				case <-done:
					return
				case <-time.After(5 * time.Second):
				}
			}
			state.lost.Store(false)
			log.Info("the cluster's serving lease is held again; serving")
		}
	}()
	return func() { close(done); cancelRetry(); <-stopped }, nil
}

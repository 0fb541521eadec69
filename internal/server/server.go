// Package server assembles a running KMS server from its options: the root
// key, the data directory and store, the dev bootstrap (account, root
// credentials file), the HTTP listener, the background deletion sweeper and
// graceful shutdown.
package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/openkms/kms/internal/api"
	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
)

// DevAccount is the account a --dev server creates.
const DevAccount = "111122223333"

// Options configure a server.
type Options struct {
	Listen      string // host:port; port 0 picks a free one
	DataDir     string
	Region      string
	Dev         bool
	RootKeyFile string // path of a file holding the root key
	RootKeyText string // the root key itself (from KMS_ROOT_KEY)
	// InitCredentials, outside dev mode, is a file to write the account
	// root's first access key to, on the start that creates it.
	InitCredentials string
	Stdout          io.Writer
	Logger          *slog.Logger
	// SweepInterval is how often keys past their deletion date are deleted
	// (default one minute).
	SweepInterval time.Duration
}

// Run starts the server and blocks until ctx is done, then shuts down
// gracefully: in-flight requests finish (for up to 30 seconds) and the store
// is closed.
func Run(ctx context.Context, o Options) error {
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = time.Minute
	}
	absDir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	o.DataDir = absDir
	if !o.Dev && o.RootKeyFile == "" && o.RootKeyText == "" {
		return errNoRootKey
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	root, err := loadRootKey(o)
	if err != nil {
		return err
	}
	st, err := boltstore.Open(filepath.Join(o.DataDir, "kms.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	if err := checkRootKey(ctx, st, root); err != nil {
		return err
	}
	var creds string
	switch {
	case o.Dev:
		if creds, err = writeCredentials(ctx, st, root, filepath.Join(o.DataDir, "credentials"), true); err != nil {
			return err
		}
	case o.InitCredentials != "":
		if _, err = writeCredentials(ctx, st, root, o.InitCredentials, false); err != nil {
			return err
		}
	}
	dir := identity.New(identity.Config{Store: st, RootKey: root, Region: o.Region, Logger: o.Logger})
	svc, err := service.New(service.Config{Store: st, RootKey: root, Region: o.Region, Logger: o.Logger, PrincipalExists: dir.PrincipalExists})
	if err != nil {
		return err
	}
	trail, err := audit.Open(filepath.Join(o.DataDir, "audit.log"))
	if err != nil {
		return fmt.Errorf("audit trail: %w", err)
	}
	defer trail.Close()
	digester, err := openDigester(ctx, st, root, o.DataDir)
	if err != nil {
		return fmt.Errorf("audit digests: %w", err)
	}
	defer func() {
		digester.Write(trail, time.Now())
		digester.Close()
	}()
	handler := api.NewHandler(svc, dir, o.Logger).WithAudit(trail, o.Region)

	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.Listen, err)
	}
	url := "http://" + ln.Addr().String()
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
	}
	fmt.Fprintf(o.Stdout, "kms server listening on %s (region %s, data in %s)\n", url, o.Region, o.DataDir)
	if o.Dev {
		fmt.Fprintf(o.Stdout, "To use it:\n  export AWS_SHARED_CREDENTIALS_FILE=%s AWS_ENDPOINT_URL=%s AWS_DEFAULT_REGION=%s\n  aws kms create-key\n",
			shellQuote(creds), shellQuote(url), shellQuote(o.Region))
	}

	sweepCtx, stopSweep := context.WithCancel(context.Background())
	swept := make(chan struct{})
	go func() {
		defer close(swept)
		sweep(sweepCtx, svc, dir, o.SweepInterval, o.Logger, func() error { return digester.Write(trail, time.Now()) })
	}()

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		stopSweep()
		<-swept
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	o.Logger.Info("shutting down: waiting for in-flight requests")
	shutCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = srv.Shutdown(shutCtx)
	stopSweep()
	<-swept
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	o.Logger.Info("stopped")
	return nil
}

func sweep(ctx context.Context, svc *service.Service, dir *identity.Directory, every time.Duration, log *slog.Logger, digest func() error) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := digest(); err != nil {
			log.Error("writing the audit digest", "err", err)
		}
		if err := svc.Maintain(ctx); err != nil && ctx.Err() == nil {
			log.Error("background maintenance (deletion, rotation, import expiry)", "err", err)
		}
		if err := dir.DeleteExpiredSessions(ctx); err != nil && ctx.Err() == nil {
			log.Error("deleting expired role sessions", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// loadRootKey finds the root key: a file, the KMS_ROOT_KEY text, or in dev
// mode DataDir/root.key, generated on first start.
func loadRootKey(o Options) (*keys.RootKey, error) {
	switch {
	case o.RootKeyFile != "":
		b, err := os.ReadFile(o.RootKeyFile)
		if err != nil {
			return nil, fmt.Errorf("root key file: %w", err)
		}
		rk, err := keys.ParseRootKey(b)
		if err != nil {
			return nil, fmt.Errorf("root key file %s: %w", o.RootKeyFile, err)
		}
		return rk, nil
	case o.RootKeyText != "":
		rk, err := keys.ParseRootKey([]byte(o.RootKeyText))
		if err != nil {
			return nil, fmt.Errorf("KMS_ROOT_KEY: %w", err)
		}
		return rk, nil
	case o.Dev:
		path := filepath.Join(o.DataDir, "root.key")
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			if _, err := os.Stat(filepath.Join(o.DataDir, "kms.db")); err == nil {
				return nil, fmt.Errorf("%s holds a key store but no root.key: pass the root key it was created with (--root-key-file or KMS_ROOT_KEY)", o.DataDir)
			}
			b = keys.GenerateRootKey()
			if err := writeFileSync(path, b, 0o600); err != nil {
				return nil, fmt.Errorf("create root key: %w", err)
			}
		} else if err != nil {
			return nil, fmt.Errorf("root key: %w", err)
		}
		rk, err := keys.ParseRootKey(b)
		if err != nil {
			return nil, fmt.Errorf("root key %s: %w", path, err)
		}
		return rk, nil
	}
	return nil, errNoRootKey
}

var errNoRootKey = errors.New("no root key: pass --root-key-file FILE or set KMS_ROOT_KEY (or run with --dev to generate one in the data directory)")

// shellQuote quotes s for a POSIX shell if it needs it.
func shellQuote(s string) string {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-:+=@,", r)) {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}

var rootCheckRecord = []byte("meta/rootkey-check")

// checkRootKey makes sure the root key is the one the store was created
// with, so that a wrong key fails at start with a clear message rather than
// on the first request.
func checkRootKey(ctx context.Context, st store.Store, root *keys.RootKey) error {
	return st.Update(ctx, func(tx store.Tx) error {
		sealed, err := tx.Get(rootCheckRecord)
		if errors.Is(err, store.ErrNotFound) {
			return tx.Put(rootCheckRecord, root.Seal(rootCheckRecord, []byte("openkms root key check")))
		}
		if err != nil {
			return err
		}
		if _, err := root.Open(rootCheckRecord, sealed); err != nil {
			return errors.New("the root key is not the one this data directory was created with")
		}
		return nil
	})
}

// writeCredentials bootstraps the account root's access key and writes it
// as an AWS shared-credentials file at path: always in dev mode, and
// otherwise only on the start that creates the key, so that the secret is
// handed out once.
func writeCredentials(ctx context.Context, st store.Store, root *keys.RootKey, path string, always bool) (string, error) {
	existed := identity.HasRoot(ctx, st, DevAccount)
	ak, err := identity.BootstrapRoot(ctx, st, root, DevAccount)
	if err != nil {
		return "", fmt.Errorf("root credentials: %w", err)
	}
	if existed && !always {
		return "", nil
	}
	if path, err = filepath.Abs(path); err != nil {
		return "", err
	}
	content := fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", ak.ID, ak.Secret)
	if err := writeFileSync(path, []byte(content), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}

// writeFileSync writes a file through a temporary name and renames it into
// place after an fsync, so a crash never leaves a half-written file.
func writeFileSync(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

var auditKeyRecord = []byte("meta/audit-signing-key")

// openDigester loads the Ed25519 key that signs audit digests (sealed under
// the root key in the store; made on first start), writes its public half
// to DATA_DIR/audit.pub for anyone who checks the trail, and opens the
// digest file.
func openDigester(ctx context.Context, st store.Store, root *keys.RootKey, dir string) (*audit.Digester, error) {
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
	priv := ed25519.NewKeyFromSeed(seed)
	clear(seed)
	der, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return nil, err
	}
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	if err := writeFileSync(filepath.Join(dir, "audit.pub"), pub, 0o644); err != nil {
		return nil, err
	}
	return audit.OpenDigester(filepath.Join(dir, "audit-digests.log"), priv)
}

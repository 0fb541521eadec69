package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/config"
	"github.com/openkms/kms/internal/console"
	"github.com/openkms/kms/internal/hsm"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/memlock"
	"github.com/openkms/kms/internal/server"
)

func serverCommand() *cobra.Command {
	var (
		o                   server.Options
		configFile          string
		printConfig         bool
		logFormat, logLevel string
		lockMemory          bool
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the KMS server",
		Long: `Run the KMS server.

With --dev it needs nothing else: it creates the data directory, a root key
file in it, account 111122223333 and an AWS credentials file for that
account's root, and prints how to point the aws CLI at it.

Without --dev it needs the root key that encrypts all key material at rest,
one of: --root-key-file FILE, or the KMS_ROOT_KEY environment variable (32
bytes as base64 or hex), or a key in an HSM: --root-key
pkcs11:token=NAME;object=LABEL with --pkcs11-module PATH and the token's PIN
in KMS_PKCS11_PIN (or in the file of the URI's pin-source=file:/path). Given
a key file and --root-key (or KMS_ROOT_KEY) it refuses to start. The token's
key wraps the store's root key, kept in the store; the server asks the
token once, at start.

With --storage postgres://... (or KMS_STORAGE) the records live in that
PostgreSQL database instead of the data directory, and any number of nodes
started with the same database and the same root key form one cluster. The
root key is never stored in the database. In --dev mode the nodes share
the root key and credentials through one --data-dir.

Every flag can also be set in the environment as KMS_<NAME>, upper case
with _ for - (KMS_READ_TIMEOUT=10s), or in the YAML file named by --config
(or KMS_CONFIG), whose keys are the long flag names (read-timeout: 10s). A
flag on the command line wins over the environment, which wins over the
file.
--print-config shows what is in effect and where each value came from.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("config") {
				// The file may be named in the environment too, as every
				// other setting may: a KMS_CONFIG left unread would start
				// the server on the defaults without a word.
				configFile = os.Getenv(config.EnvName("config"))
			}
			sources, err := config.Apply(cmd.Flags(), configFile, os.Getenv, notConfigurable...)
			if err != nil {
				return err
			}
			if err := checkLimits(cmd.Flags()); err != nil {
				return err
			}
			warnSecretsInConfigFile(cmd.ErrOrStderr(), configFile, cmd.Flags(), sources)
			if printConfig {
				config.Print(cmd.OutOrStdout(), cmd.Flags(), sources, append(notConfigurable, "root-key")...)
				printRootKey(cmd.OutOrStdout(), o.RootKeyText, sources["root-key"])
				return nil
			}
			if lockMemory {
				// Before the root key or any key material is read: a
				// server asked to keep them out of swap never runs
				// without.
				if err := memlock.Lock(); err != nil {
					return fmt.Errorf("%s: cannot lock the server's memory: %w", settingFrom("mlock", sources["mlock"]), err)
				}
			}
			o.RootKeyFileFrom = settingFrom("root-key-file", sources["root-key-file"])
			o.RootKeyFrom = settingFrom("root-key", sources["root-key"])
			o.Getenv = os.Getenv
			o.Version = buildVersion().version
			logs := server.NewLogBuffer(os.Stderr, 100*time.Millisecond)
			defer logs.Close()
			if o.Logger, err = newLogger(logs, logFormat, logLevel); err != nil {
				return err
			}
			if lockMemory {
				logMemoryLocked(o.Logger)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() {
				<-ctx.Done()
				stop() // a second signal ends the process at once
			}()
			o.ReloadTLS = notifyChan(ctx, syscall.SIGHUP)
			return server.Run(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "read settings from this YAML file (keys are the long flag names; or KMS_CONFIG names it); flags and KMS_* environment variables win over it")
	f.BoolVar(&printConfig, "print-config", false, "print the effective configuration, from flags, environment, file and defaults, and exit")
	f.BoolVar(&o.Dev, "dev", false, "development mode: generate a root key and root credentials in the data directory")
	f.StringVar(&o.Listen, "listen", "127.0.0.1:8400", "address to listen on (host:port); plain HTTP is refused off loopback without --dev, TLS or --insecure-http")
	f.StringVar(&o.DataDir, "data-dir", "kms-data", "directory holding the key store (and, with --dev, the root key and credentials)")
	f.StringVar(&o.Region, "region", "us-east-1", "the default region: the web console's, and the one keys stored before regions existed belong to")
	f.StringVar(&o.Regions, "regions", "", "the regions this server answers for, comma-separated (default: every public AWS region); a request's region is its signature's")
	f.StringVar(&o.RootKeyFile, "root-key-file", "", "file holding the root key (32 bytes as base64 or hex); or the environment variable KMS_ROOT_KEY holding the key itself")
	f.StringVar(&o.RootKeyText, "root-key", "", "the root key in an HSM, as a PKCS#11 URI (pkcs11:token=NAME;object=LABEL; PIN in KMS_PKCS11_PIN or ?pin-source=file:/path), or the key itself (32 bytes as base64 or hex; better in KMS_ROOT_KEY, which sets this flag)")
	f.StringVar(&o.PKCS11Module, "pkcs11-module", "", "the PKCS#11 module (shared library) of the --root-key token, e.g. /usr/lib/softhsm/libsofthsm2.so")
	f.StringVar(&o.Storage, "storage", "", "keep records in this PostgreSQL database (postgres://user@host:port/db; the password in PGPASSWORD or ~/.pgpass, not here, where ps shows it) shared by the nodes of a cluster")
	f.DurationVar(&o.CacheMaxAge, "cache-max-age", server.DefaultCacheMaxAge, "with --storage: how long a node trusts a cached key or credential should a change notification from another node be lost")
	f.BoolVar(&o.AuthenticateStore, "authenticate-store", false, "authenticate the records of a key store written by an earlier version, as they are, at this start (once: docs/storage.md)")
	f.StringVar(&o.InitCredentials, "init-credentials", "", "on the first start of a new key store (data directory or database), write the root access key of account 111122223333 to this file (AWS credentials format); not read with --dev, which writes DATA_DIR/credentials")
	f.StringVar(&o.TLSCert, "tls-cert", "", "serve HTTPS with the certificate (and chain) in this PEM file; reloaded on SIGHUP and when it changes")
	f.StringVar(&o.TLSKey, "tls-key", "", "the PEM file of --tls-cert's private key")
	f.StringVar(&o.TLSClientCA, "tls-client-ca", "", "require client certificates signed by a CA in this PEM file (mutual TLS, in addition to SigV4)")
	f.BoolVar(&o.DevTLS, "tls", false, "with --dev: make a local CA and a certificate for localhost in the data directory and serve HTTPS")
	f.BoolVar(&o.InsecureHTTP, "insecure-http", false, "allow plain HTTP on a non-loopback address (behind a TLS-terminating proxy)")
	f.StringVar(&o.TrustedProxies, "trusted-proxies", "", "addresses and CIDR prefixes (comma-separated) of proxies in front: a request from one is taken to come from the client its X-Forwarded-For names (audit trail, aws:SourceIp, console sign-in limits)")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.DurationVar(&o.ReadTimeout, "read-timeout", server.DefaultReadTimeout, "the longest a client may take to send a whole request, headers and body")
	f.DurationVar(&o.WriteTimeout, "write-timeout", server.DefaultWriteTimeout, "the longest from the end of a request's headers to the end of its answer")
	f.DurationVar(&o.IdleTimeout, "idle-timeout", server.DefaultIdleTimeout, "how long a keep-alive connection may wait for its next request")
	f.StringVar(&o.AuditSync, "audit-sync", "always", "always: answer a call once its audit record is on stable storage; interval: once written to the OS, fsynced within --audit-sync-interval (a machine crash or power loss may lose the records of that interval; a crash of the server loses none)")
	f.DurationVar(&o.AuditSyncInterval, "audit-sync-interval", server.DefaultAuditSyncInterval, "with --audit-sync=interval: the longest an acknowledged record waits for its fsync")
	f.Int64Var(&o.AuditSegmentBytes, "audit-segment-bytes", audit.DefaultSegmentBytes, "roll the audit trail of the data directory to a new segment file (audit-000002.log, ...) when the active one would grow past this many bytes")
	f.IntVar(&o.KeyQuota, "key-quota", keyrepo.DefaultKeyQuota, "how many keys an account may have in a region, in every state but deleted (AWS's quota); CreateKey and ReplicateKey past it get LimitExceededException")
	f.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", server.DefaultShutdownTimeout, "on SIGTERM or SIGINT, how long the requests in flight may take to finish")
	f.DurationVar(&o.CallTimeout, "call-timeout", server.DefaultCallTimeout, "how long a call may wait on its key store once its request is read; past it the call is answered DependencyTimeoutException (KMS) and its transaction rolled back")
	f.IntVar(&o.MaxConnections, "max-connections", server.DefaultMaxConnections, "the most client connections open at once; at the limit the longest idle makes room, or a newcomer waits")
	f.IntVar(&o.MaxConnectionsPerSource, "max-connections-per-source", 0, "the most connections of one client address (an IPv6 /64), trusted proxies and loopback excepted; at it the address's longest idle makes room, or its newcomer is closed (default 0: a quarter of --max-connections; -1: no limit)")
	f.StringVar(&o.MetricsListen, "metrics-listen", "", "serve GET /metrics on this address (host:port, plain HTTP) instead of beside the API")
	f.StringVar(&o.PprofListen, "pprof-listen", "", "serve Go's runtime profiles (/debug/pprof/) on this address (a loopback host:port, plain HTTP), to diagnose the server")
	f.BoolVar(&lockMemory, "mlock", false, "lock the server's memory into RAM (mlockall) so that no key material is written to swap; refuses to start if it cannot: give it no RLIMIT_MEMLOCK limit (ulimit -l unlimited, systemd LimitMEMLOCK=infinity) or CAP_IPC_LOCK")
	f.BoolVar(&o.NoConsole, "no-console", false, "do not serve the web console at /console/")
	f.DurationVar(&o.ConsoleIdleTimeout, "console-idle-timeout", console.DefaultIdleTimeout, "end a web console session after this long without a request")
	f.DurationVar(&o.ConsoleSessionTimeout, "console-session-timeout", console.DefaultAbsoluteTimeout, "end a web console session this long after sign-in, however it is used")
	f.Float64Var(&o.RateLimit, "rate-limit", 0, "limit each account to this many calls a second in each of KMS, IAM, STS and reading the audit trail, in each region (default 0: no limit); calls over it get ThrottlingException (Throttling in IAM and STS)")
	f.IntVar(&o.RateBurst, "rate-burst", 100, "with --rate-limit: how many calls an account may make at once above the steady rate")
	f.StringVar(&o.AuditorAccounts, "auditor-accounts", "", "accounts (comma-separated) whose root, and whose principals allowed openkms:ReadAllAccountsAuditTrail, read every account's audit records over the API (default with --dev: 111122223333)")
	f.DurationVar(&o.MaxClockSkew, "max-clock-skew", server.DefaultMaxClockSkew, "how far a KMS request's signing time may be from the server's clock (IAM and STS allow 15 minutes, as AWS does)")
	return cmd
}

// positiveSettings are the settings that only a value above zero makes
// sense of: a time, a size or a count. The server reads a zero as its
// default, which a setting given as 0 (or below) must not silently
// become: --read-timeout 0 is not "no timeout", nor --max-connections 0
// "no limit".
var positiveSettings = []string{
	"cache-max-age", "read-timeout", "write-timeout", "idle-timeout", "shutdown-timeout", "call-timeout",
	"audit-sync-interval", "audit-segment-bytes", "key-quota", "max-connections", "rate-burst",
	"console-idle-timeout", "console-session-timeout", "max-clock-skew",
}

// checkLimits refuses a setting, from a flag, the environment or the
// config file, outside the values it can mean, naming each.
func checkLimits(f *pflag.FlagSet) error {
	var errs []error
	for _, name := range positiveSettings {
		fl := f.Lookup(name)
		var positive bool
		switch fl.Value.Type() {
		case "duration":
			d, _ := f.GetDuration(name)
			positive = d > 0
		case "int":
			n, _ := f.GetInt(name)
			positive = n > 0
		case "int64":
			n, _ := f.GetInt64(name)
			positive = n > 0
		default:
			panic("checkLimits: --" + name + " is a " + fl.Value.Type())
		}
		if !positive {
			errs = append(errs, fmt.Errorf("--%s must be more than 0, not %s", name, fl.Value))
		}
	}
	if n, _ := f.GetInt("max-connections-per-source"); n < -1 {
		errs = append(errs, fmt.Errorf("--max-connections-per-source must be -1 (no limit), 0 (a quarter of --max-connections) or more, not %d", n))
	}
	if r, _ := f.GetFloat64("rate-limit"); !(r >= 0) || math.IsInf(r, 1) {
		errs = append(errs, fmt.Errorf("--rate-limit must be 0 (no limit) or a number of calls a second, not %v", r))
	}
	return errors.Join(errs...)
}

// printRootKey adds the root key to --print-config: a PKCS#11 URI without
// its pin-value, never a key.
func printRootKey(w io.Writer, value string, from config.Source) {
	switch {
	case value == "":
	case hsm.IsURI(value):
		if u, err := hsm.ParseURI(value); err == nil {
			value = u.Redacted()
		} else {
			value = "(not a valid PKCS#11 URI)"
		}
		fmt.Fprintf(w, "root-key: %q  # %s\n", value, from)
	default:
		fmt.Fprintf(w, "# the root key: from %s (hidden)\n", settingFrom("root-key", from))
	}
}

// settingFrom names where the setting name of kms server came from, in
// messages: its flag, its key in the --config file, or its environment
// variable.
func settingFrom(name string, from config.Source) string {
	switch from {
	case config.FromFlag:
		return "--" + name
	case config.FromFile:
		return name + " in the --config file"
	}
	return config.EnvName(name)
}

// notConfigurable are the flags of kms server that a file cannot set, nor
// the environment but for KMS_CONFIG, read apart (it names the file).
var notConfigurable = []string{"config", "print-config", "help"}

// notifyChan delivers once per signal sig until ctx is done, and ignores
// sig from then on: stopping the delivery alone would give sig back its
// default action, which for SIGHUP ends the process, so a reload during
// the shutdown would cut it short.
func notifyChan(ctx context.Context, sig os.Signal) <-chan struct{} {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, sig)
	out := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				signal.Ignore(sig)
				return
			case <-sigs:
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out
}

// logMemoryLocked says that the server's memory is locked, and warns
// when what it may lock is bounded: past the bound a write that grows
// the store's map fails, and the Go runtime aborts when its heap cannot
// grow.
func logMemoryLocked(log *slog.Logger) {
	limit, bounded := memlock.Bounded()
	if !bounded {
		log.Info("memory locked into RAM (--mlock): nothing of it is written to swap")
		return
	}
	log.Warn("memory locked into RAM (--mlock), under a bound: past RLIMIT_MEMLOCK a write that grows the key store's file fails and the process aborts when its heap cannot grow; lift the limit (LimitMEMLOCK=infinity) or grant CAP_IPC_LOCK",
		"memlockLimitBytes", limit)
}

// newLogger is the server's logger: text or JSON lines on w, from level on.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

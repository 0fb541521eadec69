package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/openkms/kms/internal/server"
	"github.com/spf13/cobra"
)

func serverCommand() *cobra.Command {
	var o server.Options
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the KMS server",
		Long: `Run the KMS server.

With --dev it needs nothing else: it creates the data directory, a root key
file in it, account 111122223333 and an AWS credentials file for that
account's root, and prints how to point the aws CLI at it.

Without --dev it needs the root key that encrypts all key material at rest:
--root-key-file FILE, or the KMS_ROOT_KEY environment variable (32 bytes as
base64 or hex).

With --storage postgres://... (or KMS_STORAGE) the records live in that
PostgreSQL database instead of the data directory, and any number of nodes
started with the same database and the same root key form one cluster. The
root key is never stored in the database. In --dev mode the nodes share
the root key and credentials through one --data-dir.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.RootKeyText = os.Getenv("KMS_ROOT_KEY")
			if !cmd.Flags().Changed("storage") {
				o.Storage = os.Getenv("KMS_STORAGE")
			}
			o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() {
				<-ctx.Done()
				stop() // a second signal ends the process at once
			}()
			return server.Run(ctx, o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.Dev, "dev", false, "development mode: generate a root key and root credentials in the data directory")
	f.StringVar(&o.Listen, "listen", "127.0.0.1:8400", "address to listen on (host:port)")
	f.StringVar(&o.DataDir, "data-dir", "kms-data", "directory holding the key store (and, with --dev, the root key and credentials)")
	f.StringVar(&o.Region, "region", "us-east-1", "the AWS region this server answers as")
	f.StringVar(&o.RootKeyFile, "root-key-file", "", "file holding the root key (32 bytes as base64 or hex)")
	f.StringVar(&o.Storage, "storage", "", "keep records in this PostgreSQL database (postgres://user:password@host:port/db) shared by the nodes of a cluster; env KMS_STORAGE")
	f.DurationVar(&o.CacheMaxAge, "cache-max-age", server.DefaultCacheMaxAge, "with --storage: how long a node trusts a cached key or credential should a change notification from another node be lost")
	f.DurationVar(&o.ReadTimeout, "read-timeout", server.DefaultReadTimeout, "the longest a client may take to send a whole request, headers and body")
	f.DurationVar(&o.MaxClockSkew, "max-clock-skew", server.DefaultMaxClockSkew, "how far a KMS request's signing time may be from the server's clock (IAM and STS allow 15 minutes, as AWS does)")
	f.StringVar(&o.InitCredentials, "init-credentials", "", "on the first start of a new data directory, write the root access key of account 111122223333 to this file (AWS credentials format)")
	return cmd
}

package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/openkms/kms/internal/auditcli"
)

func auditCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read and check the audit trail"}
	var o auditcli.Options
	verify := &cobra.Command{
		Use:   "verify (--data-dir DIR [--archive-dir DIR]... [--archive] [--live] | --storage DSN | --endpoint URL) [--public-key FILE] [--expect-at-least N]",
		Short: "Walk the audit trail's hash chains and digests and report the first break of each (exit code 1 on any)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return auditcli.Verify(cmd.Context(), auditSource(cmd, o), cmd.OutOrStdout())
		},
	}
	events := &cobra.Command{
		Use:   "events (--data-dir DIR [--archive-dir DIR]... | --storage DSN | --endpoint URL) [--json] [--output FILE] [--since T] [--until T] [--key K] [--principal ARN] [--event NAME] [--errors] [--follow]",
		Short: "List audit records, optionally filtered, as a table or JSON lines",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return auditcli.Events(cmd.Context(), auditSource(cmd, o), cmd.OutOrStdout())
		},
	}
	var e auditcli.ExportOptions
	export := &cobra.Command{
		Use:   "export (--data-dir DIR [--archive-dir DIR]... [--live] | --storage DSN) [--since T] [--until T] [--format jsonl|cloudtrail] [-o FILE] [--no-verify]",
		Short: "Write the audit records of a time range as JSON lines or a CloudTrail log file, once the trail verifies",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return auditcli.Export(cmd.Context(), auditSource(cmd, o), e, cmd.OutOrStdout())
		},
	}
	export.Flags().StringVar(&o.Since, "since", "", "only records at or after this time (RFC 3339)")
	export.Flags().StringVar(&o.Until, "until", "", "only records before this time (RFC 3339)")
	export.Flags().StringVar(&e.Format, "format", "jsonl", "jsonl (the events as stored, one a line) or cloudtrail (a {\"Records\":[...]} file as CloudTrail delivers)")
	export.Flags().StringVarP(&o.Output, "output", "o", "", "write to this file (replaced once complete) instead of stdout")
	export.Flags().BoolVar(&e.NoVerify, "no-verify", false, "export even if the trail does not verify")
	for _, c := range []*cobra.Command{verify, events, export} {
		c.Flags().StringSliceVar(&o.ArchiveDirs, "archive-dir", nil, "with --data-dir: a directory holding segments of its trail moved out of it (repeatable)")
		c.Flags().StringVar(&o.DataDir, "data-dir", "kms-data", "data directory of a (stopped or running) embedded server")
		c.Flags().StringVar(&o.Storage, "storage", "", "PostgreSQL DSN of a cluster (default $KMS_STORAGE, unless --data-dir is given)")
		c.Flags().StringVar(&o.Endpoint, "endpoint", "", "URL of a running server: read its trail over the API, with the AWS credentials of the environment")
		c.Flags().StringVar(&o.Profile, "profile", "", "with --endpoint: the AWS profile to sign with (default: AWS_PROFILE or default)")
		c.Flags().StringVar(&o.Region, "region", "", "with --endpoint: the region to sign for (default: AWS_REGION or AWS_DEFAULT_REGION, the AWS config, or us-east-1)")
		c.MarkFlagsMutuallyExclusive("data-dir", "storage", "endpoint")
	}
	for _, c := range []*cobra.Command{verify, export} {
		c.Flags().BoolVar(&o.Live, "live", false, "with --data-dir: a server runs on it and holds its kms.db locked, so the high-water mark there is left unchecked (without --live a locked kms.db fails the check: any process can lock it)")
	}
	for _, name := range []string{"endpoint", "profile", "region"} {
		export.Flags().Lookup(name).Hidden = true // export reads files or a database
	}
	verify.Flags().StringVar(&o.PublicKey, "public-key", "", "PEM file with the key the digests must be signed with (default: the key kept with the trail)")
	verify.Flags().BoolVar(&o.Archive, "archive", false, "the --data-dir is an archive of the trail's first segments: digests of later records are left to the trail that holds them")
	verify.Flags().Uint64Var(&o.ExpectAtLeast, "expect-at-least", 0, "fail unless the trail holds at least this many records (a count noted earlier, outside the server; default 0: no such check)")
	f := events.Flags()
	f.BoolVar(&o.JSON, "json", false, "one JSON object per line (the CloudTrail-shaped event)")
	f.StringVar(&o.Output, "output", "", "append the records as JSON lines to this file instead of printing them")
	f.StringVar(&o.Since, "since", "", "only records at or after this time (RFC 3339)")
	f.StringVar(&o.Until, "until", "", "only records before this time (RFC 3339)")
	f.StringVar(&o.Key, "key", "", "only records about this key (key id or key ARN, not an alias)")
	f.StringVar(&o.Principal, "principal", "", "only records of this principal ARN")
	f.StringVar(&o.Event, "event", "", "only records of this event name (e.g. Decrypt)")
	f.BoolVar(&o.ErrorsOnly, "errors", false, "only failed calls")
	f.BoolVar(&o.Follow, "follow", false, "keep printing new records as they are written")
	cmd.AddCommand(verify, events, export)
	return cmd
}

// auditSource picks the trail: --endpoint, else --storage, else --data-dir
// if given, else $KMS_STORAGE, else the default data directory.
func auditSource(cmd *cobra.Command, o auditcli.Options) auditcli.Options {
	switch {
	case o.Endpoint != "", o.Storage != "":
		o.DataDir = ""
	case !cmd.Flags().Changed("data-dir") && os.Getenv("KMS_STORAGE") != "":
		o.Storage, o.DataDir = os.Getenv("KMS_STORAGE"), ""
	}
	return o
}

package main

import (
	"github.com/openkms/kms/internal/auditcli"
	"github.com/spf13/cobra"
)

func auditCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read and check the audit trail"}
	var o auditcli.Options
	verify := &cobra.Command{
		Use:   "verify --data-dir DIR",
		Short: "Walk the audit trail's hash chain and report the first break (exit code 1 on any)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return auditcli.Verify(o, cmd.OutOrStdout())
		},
	}
	events := &cobra.Command{
		Use:   "events --data-dir DIR [--json] [filters]",
		Short: "List audit records, optionally filtered, as a table or JSON lines",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return auditcli.Events(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	for _, c := range []*cobra.Command{verify, events} {
		c.Flags().StringVar(&o.DataDir, "data-dir", "kms-data", "data directory of a (stopped or running) embedded server")
	}
	f := events.Flags()
	f.BoolVar(&o.JSON, "json", false, "one JSON object per line (the CloudTrail-shaped event)")
	f.StringVar(&o.Since, "since", "", "only records at or after this time (RFC 3339)")
	f.StringVar(&o.Until, "until", "", "only records before this time (RFC 3339)")
	f.StringVar(&o.Key, "key", "", "only records about this key (id or ARN)")
	f.StringVar(&o.Principal, "principal", "", "only records of this principal ARN")
	f.StringVar(&o.Event, "event", "", "only records of this event name (e.g. Decrypt)")
	f.BoolVar(&o.ErrorsOnly, "errors", false, "only failed calls")
	f.BoolVar(&o.Follow, "follow", false, "keep printing new records as they are written")
	cmd.AddCommand(verify, events)
	return cmd
}

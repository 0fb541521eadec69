package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/openkms/kms/esdk"
	"github.com/openkms/kms/internal/envelope"
)

func envelopeFlags(cmd *cobra.Command, o *envelope.Options) {
	f := cmd.Flags()
	f.StringVarP(&o.Out, "output", "o", "", "output file (default stdout)")
	f.StringVar(&o.Endpoint, "endpoint", "", "KMS endpoint URL (default: AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL or AWS's)")
	f.StringVar(&o.Region, "region", "", "AWS region (default: AWS_REGION or AWS_DEFAULT_REGION, the AWS config, or us-east-1)")
	f.IntVar(&o.Concurrency, "parallel", 0, "frames processed at once, at least 1 (default: one per CPU)")
}

// checkParallel refuses a --parallel given below 1. The library reads 0
// (and less) as one per CPU; on the command line it is a mistake, and
// says so, as --frame-size 0 does.
func checkParallel(cmd *cobra.Command, o *envelope.Options) error {
	if cmd.Flags().Changed("parallel") && o.Concurrency < 1 {
		return fmt.Errorf("--parallel %d: give at least 1 frame at a time (without --parallel, one per CPU)", o.Concurrency)
	}
	return nil
}

// isTerminal reports whether f is a terminal, for the progress line.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func encryptCommand() *cobra.Command {
	var o envelope.Options
	var ctxPairs []string
	cmd := &cobra.Command{
		Use:   "encrypt --key KEY [--key KEY2 ...] [--context k=v ...] [-o OUT] [IN]",
		Short: "Encrypt a file or stdin in the AWS Encryption SDK message format with a data key from KMS",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.In = args[0]
			}
			o.Context = map[string]string{}
			for _, p := range ctxPairs {
				k, v, ok := strings.Cut(p, "=")
				if !ok || k == "" {
					return fmt.Errorf("--context %q: want key=value", p)
				}
				if old, dup := o.Context[k]; dup {
					return fmt.Errorf("--context %s=%s and %s=%s: a key of the encryption context may have one value", k, old, k, v)
				}
				o.Context[k] = v
			}
			if o.FrameSize < 1 || o.FrameSize > esdk.MaxFrameLength {
				// The library reads 0 as its default; on the command
				// line it is a mistake, and says so.
				return fmt.Errorf("--frame-size %d: a frame is 1 byte to %d bytes (64 MiB)", o.FrameSize, esdk.MaxFrameLength)
			}
			if err := checkParallel(cmd, &o); err != nil {
				return err
			}
			o.Stdin, o.Stdout = cmd.InOrStdin(), cmd.OutOrStdout()
			if isTerminal(os.Stderr) {
				o.Progress = os.Stderr
			}
			return envelope.Encrypt(cmd.Context(), o)
		},
	}
	envelopeFlags(cmd, &o)
	f := cmd.Flags()
	f.StringArrayVar(&o.Keys, "key", nil, "KMS key id, ARN, alias name or alias ARN (repeat to encrypt the data key under several)")
	f.StringArrayVar(&ctxPairs, "context", nil, "encryption context pair key=value (repeatable)")
	f.IntVar(&o.FrameSize, "frame-size", 4096, "frame length in bytes, 1 to 67108864 (64 MiB)")
	f.BoolVar(&o.Signed, "signed", false, "sign the message with ECDSA P-384 (algorithm suite 0x0578)")
	return cmd
}

func decryptCommand() *cobra.Command {
	var o envelope.Options
	cmd := &cobra.Command{
		Use:   "decrypt [-o OUT] [IN]",
		Short: "Decrypt an AWS Encryption SDK message from a file or stdin",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.In = args[0]
			}
			if err := checkParallel(cmd, &o); err != nil {
				return err
			}
			if o.MaxEncryptedDataKeys < 0 {
				// The library reads a negative limit as none: a typo
				// must not switch the limit off.
				return fmt.Errorf("--max-encrypted-data-keys %d: give 0 (no limit) or more", o.MaxEncryptedDataKeys)
			}
			o.Stdin, o.Stdout = cmd.InOrStdin(), cmd.OutOrStdout()
			if isTerminal(os.Stderr) {
				o.Progress = os.Stderr
			}
			return envelope.Decrypt(cmd.Context(), o)
		},
	}
	envelopeFlags(cmd, &o)
	cmd.Flags().StringArrayVar(&o.Keys, "key", nil, "only decrypt a message whose data key is under one of these KMS keys (id, ARN, alias name or alias ARN; repeatable)")
	cmd.Flags().IntVar(&o.MaxEncryptedDataKeys, "max-encrypted-data-keys", 10, "refuse a message with more encrypted data keys, before any is sent to KMS (each is a KMS call; 0: no limit)")
	return cmd
}

// Command kms is a key management service compatible with the AWS KMS API.
//
//	kms server --dev    start a development server with a generated root key
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{
		Use:           "kms",
		Short:         "A self-hosted key management service compatible with the AWS KMS API",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serverCommand())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "kms:", err)
		os.Exit(1)
	}
}

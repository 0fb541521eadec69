// Command kms is a key management service compatible with the AWS KMS API.
//
//	kms server --dev    start a development server with a generated root key
//	kms encrypt         encrypt a file in the AWS Encryption SDK format with a KMS data key
//	kms decrypt         decrypt one
//	kms migrate         copy the key store to another data directory or PostgreSQL database
//	kms version         print the version, commit and Go version
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/openkms/kms/internal/auditcli"
)

func main() {
	root := &cobra.Command{
		Use:           "kms",
		Short:         "A self-hosted key management service compatible with the AWS KMS API",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serverCommand(), encryptCommand(), decryptCommand(), auditCommand(), migrateCommand(), backupCommand(), restoreCommand(), rootKeyCommand(), versionCommand())
	if err := root.Execute(); err != nil {
		if errors.Is(err, auditcli.ErrBroken) {
			os.Exit(1)
		}
		// One line, even for joined errors.
		fmt.Fprintln(os.Stderr, "kms:", strings.ReplaceAll(err.Error(), "\n", "; "))
		os.Exit(1)
	}
}

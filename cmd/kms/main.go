// Command kms is a key management service compatible with the AWS KMS API.
//
//	kms server --dev    start a development server with a generated root key
//	kms encrypt         encrypt a file in the AWS Encryption SDK format with a KMS data key
//	kms decrypt         decrypt one
//	kms audit           list, verify and export the audit trail
//	kms backup          write a snapshot of the key store and its audit trail to a file
//	kms restore         restore one into an empty key store
//	kms migrate         copy the key store to another data directory or PostgreSQL database
//	kms root-key        make a root key, or rotate the store to a new one
//	kms version         print the version, commit and Go version
//	kms completion      print a shell completion script
package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/openkms/kms/internal/auditcli"
	"github.com/openkms/kms/internal/nodump"
)

func main() {
	// Every command may hold a root key, key material or plaintext in
	// the clear: keep them out of core dumps and from other processes of
	// the same user before any is read.
	if err := nodump.Set(); err != nil {
		fmt.Fprintln(os.Stderr, "kms: keeping this process's memory from other processes:", err)
		os.Exit(1)
	}
	root := &cobra.Command{
		Use:           "kms",
		Short:         "A self-hosted key management service compatible with the AWS KMS API",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			warnSecretsOnCommandLine(cmd.ErrOrStderr(), cmd.Flags())
		},
	}
	root.AddCommand(serverCommand(), lockFlag(encryptCommand()), lockFlag(decryptCommand()), auditCommand(), lockFlag(migrateCommand()),
		lockFlag(backupCommand()), lockFlag(restoreCommand()), rootKeyCommand(), versionCommand())
	if err := root.Execute(); err != nil {
		if errors.Is(err, auditcli.ErrBroken) {
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "kms:", oneLine(err.Error()))
		os.Exit(1)
	}
}

// oneLine returns an error message as one line of plain text: the lines
// of joined errors separated by "; ", and every other rune a terminal
// could act on (control, bidirectional and other format characters, and
// bytes that are not UTF-8) escaped as Go escapes it. Messages quote what
// came from outside (a key ARN read from a file, a server's words).
func oneLine(msg string) string {
	msg = strings.ReplaceAll(msg, "\n", "; ")
	var b strings.Builder
	for i, r := range msg {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(msg[i:], "\uFFFD"):
			fmt.Fprintf(&b, "\\x%02x", msg[i])
		case strconv.IsPrint(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String()
}

// Package e2e holds the end-to-end tests of the KMS, IAM and STS APIs: the
// real HTTP handler (internal/api) over the real service and a bbolt store
// in a temporary directory, called through aws-sdk-go-v2 clients that sign
// their requests, as a user's program would. The command-line tests of the
// built binary are in cmd/kms.
package e2e

#!/usr/bin/env bash
# Runs every test of the project: vet, the unit and end-to-end tests (which
# build the kms binary and drive it with the aws CLI), and a short fuzzing
# run of each parser of untrusted bytes.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-10s}

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...
# The official AWS Encryption SDK for JavaScript, for the interoperability
# tests (they fail in CI, and skip elsewhere, without it).
if command -v npm >/dev/null; then
  (cd test/esdk-js && npm install --no-audit --no-fund --silent)
fi
go test -count=1 -race ./...

# Fuzz the parsers of bytes that come from clients or from disk.
go test -run '^$' -fuzz '^FuzzOpen$' -fuzztime "$fuzztime" ./internal/keys
go test -run '^$' -fuzz '^FuzzRootKeyOpen$' -fuzztime "$fuzztime" ./internal/keys
go test -run '^$' -fuzz '^FuzzHandler$' -fuzztime "$fuzztime" ./internal/api
go test -run '^$' -fuzz '^FuzzParse$' -fuzztime "$fuzztime" ./internal/policy
go test -run '^$' -fuzz '^FuzzParseVerify$' -fuzztime "$fuzztime" ./internal/sigv4
go test -run '^$' -fuzz '^FuzzParseHeader$' -fuzztime "$fuzztime" ./esdk
go test -run '^$' -fuzz '^FuzzAppendString$' -fuzztime "$fuzztime" ./internal/audit
go test -run '^$' -fuzz '^FuzzRecordIsValidJSON$' -fuzztime "$fuzztime" ./internal/audit
go test -run '^$' -fuzz '^FuzzVerify$' -fuzztime "$fuzztime" ./internal/audit
go test -run '^$' -fuzz '^FuzzCheckLine$' -fuzztime "$fuzztime" ./internal/audit
go test -run '^$' -fuzz '^FuzzEventFields$' -fuzztime "$fuzztime" ./internal/audit
go test -run '^$' -fuzz '^FuzzParseSegmentName$' -fuzztime "$fuzztime" ./internal/audit
go test -run '^$' -fuzz '^FuzzRegistryRow$' -fuzztime "$fuzztime" ./internal/audit
go test -run '^$' -fuzz '^FuzzParsePayload$' -fuzztime "$fuzztime" ./internal/store/pgstore
go test -run '^$' -fuzz '^FuzzScanParams$' -fuzztime "$fuzztime" ./internal/api
go test -run '^$' -fuzz '^FuzzBadText$' -fuzztime "$fuzztime" ./internal/api
go test -run '^$' -fuzz '^FuzzParse$' -fuzztime "$fuzztime" ./internal/backup
go test -run '^$' -fuzz '^FuzzParsePKCS11URI$' -fuzztime "$fuzztime" ./internal/hsm

#!/usr/bin/env bash
# Runs every test of the project: vet, the unit and end-to-end tests (which
# build the kms binary and drive it with the aws CLI), and a short fuzzing
# run of each parser of untrusted bytes.
set -euo pipefail
cd "$(dirname "$0")/.."

# A few seconds per target in every run; FUZZTIME and BRIEF_FUZZTIME
# lengthen them for a longer search. Inputs a search found failing are kept
# under the package's testdata/fuzz, which plain go test runs.
fuzztime=${FUZZTIME:-4s}
# The later fuzz targets run briefly, to keep the whole run short; plain
# go test above already ran their seed corpora.
brieftime=${BRIEF_FUZZTIME:-2s}

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...
# The official AWS Encryption SDK for JavaScript, for the interoperability
# tests, and the AWS SDK for JavaScript v3's KMS client, for its end-to-end
# test (they fail in CI, and skip elsewhere, without them).
if command -v npm >/dev/null; then
  (cd test/esdk-js && npm install --no-audit --no-fund --silent --prefer-offline)
  (cd test/sdk-js && npm install --no-audit --no-fund --silent --prefer-offline)
fi
# fuzz TARGET PACKAGE [TIME] fuzzes TARGET for TIME (default $fuzztime).
# Go 1.26's fuzzing coordinator can fail a run with a bare "context
# deadline exceeded" when -fuzztime ends while a worker is busy
# (go.dev/issue/75804, fixed in Go 1.27): such a run, which wrote no
# failing input, is run once more, for a number of inputs rather than a
# time (-fuzztime 1000x: the coordinator then stops by count, without the
# deadline that races). Any other failure, and a second one, fails.
fuzz() {
  local out time=${3:-$fuzztime}
  if out=$(go test -run '^$' -fuzz "^$1\$" -fuzztime "$time" "$2" 2>&1); then
    echo "$out"
    return 0
  fi
  echo "$out"
  if grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input written' <<<"$out"; then
    echo "fuzz $1: stopped by Go's fuzzing deadline race, not by an input; running it again"
    go test -run '^$' -fuzz "^$1\$" -fuzztime 1000x "$2"
    return
  fi
  return 1
}

# The parsers of bytes that come from clients or from disk: TARGET PACKAGE
# [TIME].
fuzz_targets=(
  "FuzzOpen ./internal/keys"
  "FuzzRootKeyOpen ./internal/keys"
  "FuzzHandler ./internal/api"
  "FuzzParse ./internal/policy"
  "FuzzParseVerify ./internal/sigv4"
  "FuzzParseHeader ./esdk"
  "FuzzDecrypt ./esdk"
  "FuzzAppendString ./internal/audit"
  "FuzzRecordIsValidJSON ./internal/audit"
  "FuzzVerify ./internal/audit"
  "FuzzCheckLine ./internal/audit"
  "FuzzEventFields ./internal/audit"
  "FuzzParseSegmentName ./internal/audit"
  "FuzzSegmentData ./internal/audit"
  "FuzzSegmentReader ./internal/audit"
  "FuzzRegistryRow ./internal/audit"
  "FuzzParsePayload ./internal/store/pgstore"
  "FuzzScanParams ./internal/api"
  "FuzzBadText ./internal/api"
  "FuzzParse ./internal/backup"
  "FuzzParsePKCS11URI ./internal/hsm"
  "FuzzDecodePage ./internal/auditcli"
  "FuzzForwardedClient ./internal/server"
  "FuzzQueryHandler ./internal/api $brieftime"
  "FuzzTrailHandler ./internal/api $brieftime"
  "FuzzConsoleAPI ./internal/console $brieftime"
  "FuzzParsePresigned ./internal/sigv4 $brieftime"
  "FuzzParseAsymmetric ./internal/keys $brieftime"
  "FuzzPeerKey ./internal/keys $brieftime"
  "FuzzMLKEMDecapsulate ./internal/keys $brieftime"
  "FuzzResolve ./internal/keyrepo $brieftime"
  "FuzzVerifyDigests ./internal/audit $brieftime"
  "FuzzGCMStream ./esdk $brieftime"
)

# cmd/kms drives the built binary through clusters, SIGKILLs and the aws
# CLI: 7 to 8 minutes on a 2-core machine, and past go test's default
# 10 minutes when that machine is loaded. 30 minutes still ends a hang.
# Its binary is built as users build it, without the race detector, so the
# detector there would watch only the tests' own harness, for a fifth more
# CPU on the run's longest package: cmd/kms runs without it, from the
# start, while the other packages run with it and then the fuzzing, which
# fills what CPU its waits leave.
cmdkms_out=$(mktemp)
trap 'rm -f "$cmdkms_out"' EXIT
go test -count=1 -timeout 30m ./cmd/kms >"$cmdkms_out" 2>&1 &
cmdkms=$!
status=0
if go test -count=1 -race -timeout 30m $(go list ./... | grep -v '/cmd/kms$'); then
  for target in "${fuzz_targets[@]}"; do
    # shellcheck disable=SC2086 # TARGET PACKAGE [TIME], split on purpose
    fuzz $target || { status=1; break; }
  done
else
  status=1
fi
wait "$cmdkms" || status=1
cat "$cmdkms_out"
exit "$status"

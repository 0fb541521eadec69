#!/usr/bin/env bash
# The project's load benchmark: signed, authorized and audited Encrypt,
# Decrypt and GenerateDataKey through the built server, side by side with
# the bare net/http baseline in ../shared/bench, alternating runs in one
# go. Prints, per operation and concurrency, the best of the rounds: ops/s
# of both, their ratio, p50 and p99 latency, and errors.
#
#   scripts/bench.sh                 # c=16 and c=1, 3 rounds of 5 s each
#   ROUNDS=5 DURATION=10s CONCURRENCY="16" scripts/bench.sh
#   STORAGE=postgres://... scripts/bench.sh   # a node on PostgreSQL
#
# Needs the aws CLI (to create the key) and the shared bench sources.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${ROUNDS:-3}
duration=${DURATION:-5s}
concurrency=${CONCURRENCY:-16 1}
ops=${OPS:-Encrypt Decrypt GenerateDataKey}
bench_src=${BENCH_SRC:-../shared/bench}
kms_port=${KMS_PORT:-18400}
base_port=${BASE_PORT:-18401}

if [ ! -d "$bench_src/loadgen" ] || [ ! -d "$bench_src/baseline" ]; then
  echo "bench.sh: the load generator and baseline are not at $bench_src (set BENCH_SRC)" >&2
  exit 1
fi
command -v aws >/dev/null || { echo "bench.sh: the aws CLI is needed to create the key" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "building kms, loadgen and baseline..." >&2
go build -o "$work/kms" ./cmd/kms
(cd "$bench_src/loadgen" && go build -o "$work/loadgen" .)
(cd "$bench_src/baseline" && go build -o "$work/baseline" .)

server_args=(server --dev --listen "127.0.0.1:$kms_port" --data-dir "$work/data" ${SERVER_ARGS:-})
if [ -n "${STORAGE:-}" ]; then
  server_args+=(--storage "$STORAGE")
fi
"$work/kms" "${server_args[@]}" >"$work/kms.out" 2>"$work/kms.err" &
pids+=($!)
"$work/baseline" -listen "127.0.0.1:$base_port" >"$work/baseline.out" 2>&1 &
pids+=($!)

for _ in $(seq 100); do
  if curl -fsS "http://127.0.0.1:$kms_port/healthz" >/dev/null 2>&1; then break; fi
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$kms_port/healthz" >/dev/null || { cat "$work/kms.err" >&2; exit 1; }

creds=$work/data/credentials
ak=$(awk -F' *= *' '/aws_access_key_id/{print $2; exit}' "$creds")
sk=$(awk -F' *= *' '/aws_secret_access_key/{print $2; exit}' "$creds")
key=$(AWS_SHARED_CREDENTIALS_FILE=$creds AWS_DEFAULT_REGION=us-east-1 \
  aws kms --endpoint-url "http://127.0.0.1:$kms_port" create-key --query KeyMetadata.KeyId --output text)

# run URL OP C prints loadgen's last line: ops/s=... p50_ms=... p99_ms=... errors=...
run() {
  "$work/loadgen" -url "$1" -op "$2" -keyid "$key" -c "$3" -d "$duration" \
    -sigv4 -access-key "$ak" -secret-key "$sk" -region us-east-1 | tail -1
}
field() { sed -n "s|.*$1=\([^ ]*\).*|\1|p" <<<"$2"; }

printf '%-16s %3s  %9s %9s %6s  %8s %8s  %8s %8s  %s\n' \
  operation c kms_ops/s base_ops/s ratio kms_p50 kms_p99 base_p50 base_p99 errors
for c in $concurrency; do
  for op in $ops; do
    best_kms="" best_base=""
    for _ in $(seq "$rounds"); do
      b=$(run "http://127.0.0.1:$base_port/" "$op" "$c")
      k=$(run "http://127.0.0.1:$kms_port/" "$op" "$c")
      if [ -z "$best_base" ] || awk -v a="$(field ops/s "$b")" -v b="$(field ops/s "$best_base")" 'BEGIN{exit !(a>b)}'; then best_base=$b; fi
      if [ -z "$best_kms" ] || awk -v a="$(field ops/s "$k")" -v b="$(field ops/s "$best_kms")" 'BEGIN{exit !(a>b)}'; then best_kms=$k; fi
    done
    ko=$(field ops/s "$best_kms") bo=$(field ops/s "$best_base")
    printf '%-16s %3s  %9.0f %9.0f %6.2f  %8s %8s  %8s %8s  %s\n' "$op" "$c" "$ko" "$bo" \
      "$(awk -v a="$ko" -v b="$bo" 'BEGIN{print a/b}')" \
      "$(field p50_ms "$best_kms")" "$(field p99_ms "$best_kms")" \
      "$(field p50_ms "$best_base")" "$(field p99_ms "$best_base")" "$(field errors "$best_kms")"
  done
done

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
#   BEFORE=v1.2 scripts/bench.sh     # also the server built at another git
#                                    # revision, in the same alternation, the
#                                    # two taking turns after the baseline
#                                    # (an even number of rounds)
#
# Needs the aws CLI (to create the key) and the shared bench sources.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${ROUNDS:-3}
if [ -n "${BEFORE:-}" ] && [ $((rounds % 2)) = 1 ]; then
  rounds=$((rounds + 1)) # each build first after the baseline as often
fi
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
if [ -n "${BEFORE:-}" ]; then
  mkdir "$work/before-src"
  git archive "$BEFORE" | tar -x -C "$work/before-src"
  (cd "$work/before-src" && go build -o "$work/kms-before" ./cmd/kms)
fi
(cd "$bench_src/loadgen" && go build -o "$work/loadgen" .)
(cd "$bench_src/baseline" && go build -o "$work/baseline" .)

# start_kms BIN PORT DIR VAR: a --dev server, waited for until it serves;
# sets VAR_key, VAR_ak and VAR_sk to its key id, access key and secret.
start_kms() {
  local bin=$1 port=$2 dir=$3 var=$4
  local args=(server --dev --listen "127.0.0.1:$port" --data-dir "$dir" ${SERVER_ARGS:-})
  if [ -n "${STORAGE:-}" ]; then
    args+=(--storage "$STORAGE")
  fi
  "$bin" "${args[@]}" >"$dir.out" 2>"$dir.err" &
  pids+=($!)
  for _ in $(seq 100); do
    if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || { cat "$dir.err" >&2; exit 1; }
  # Another process answering on the port is not ours.
  kill -0 "${pids[-1]}" 2>/dev/null || { echo "bench.sh: kms on port $port exited:" >&2; cat "$dir.err" >&2; exit 1; }
  local creds=$dir/credentials
  printf -v "${var}_ak" '%s' "$(awk -F' *= *' '/aws_access_key_id/{print $2; exit}' "$creds")"
  printf -v "${var}_sk" '%s' "$(awk -F' *= *' '/aws_secret_access_key/{print $2; exit}' "$creds")"
  printf -v "${var}_key" '%s' "$(AWS_SHARED_CREDENTIALS_FILE=$creds AWS_DEFAULT_REGION=us-east-1 \
    aws kms --endpoint-url "http://127.0.0.1:$port" create-key --query KeyMetadata.KeyId --output text)"
}

"$work/baseline" -listen "127.0.0.1:$base_port" >"$work/baseline.out" 2>&1 &
pids+=($!)
start_kms "$work/kms" "$kms_port" "$work/data" now
key=$now_key ak=$now_ak sk=$now_sk
if [ -n "${BEFORE:-}" ]; then
  start_kms "$work/kms-before" "$((kms_port + 2))" "$work/data-before" before
  bkey=$before_key bak=$before_ak bsk=$before_sk
fi

# run URL OP C prints loadgen's last line: ops/s=... p50_ms=... p99_ms=... errors=...
# (the server built at BEFORE with BEFORE's key and credentials when URL is
# its port).
run() {
  local k=$key a=$ak s=$sk
  if [ "$1" = "http://127.0.0.1:$((kms_port + 2))/" ]; then k=$bkey a=$bak s=$bsk; fi
  "$work/loadgen" -url "$1" -op "$2" -keyid "$k" -c "$3" -d "$duration" \
    -sigv4 -access-key "$a" -secret-key "$s" -region us-east-1 | tail -1
}
better() { awk -v a="$(field ops/s "$1")" -v b="$(field ops/s "$2")" 'BEGIN{exit !(a>b)}'; }
field() { sed -n "s|.*$1=\([^ ]*\).*|\1|p" <<<"$2"; }

printf '%-16s %3s  %9s %9s %6s  %8s %8s  %8s %8s  %s\n' \
  operation c kms_ops/s base_ops/s ratio kms_p50 kms_p99 base_p50 base_p99 errors
for c in $concurrency; do
  for op in $ops; do
    best_kms="" best_base="" best_before=""
    for round in $(seq "$rounds"); do
      b=$(run "http://127.0.0.1:$base_port/" "$op" "$c")
      if [ -z "$best_base" ] || better "$b" "$best_base"; then best_base=$b; fi
      # The server run right after the baseline finds the disk idle; the
      # one after it, the disk still writing the first's trail (worth
      # 10-15% at c=1). With BEFORE the two take turns in that place.
      if [ -n "${BEFORE:-}" ] && [ $((round % 2)) = 0 ]; then
        o=$(run "http://127.0.0.1:$((kms_port + 2))/" "$op" "$c")
        k=$(run "http://127.0.0.1:$kms_port/" "$op" "$c")
      else
        k=$(run "http://127.0.0.1:$kms_port/" "$op" "$c")
        if [ -n "${BEFORE:-}" ]; then
          o=$(run "http://127.0.0.1:$((kms_port + 2))/" "$op" "$c")
        fi
      fi
      if [ -z "$best_kms" ] || better "$k" "$best_kms"; then best_kms=$k; fi
      if [ -n "${BEFORE:-}" ]; then
        if [ -z "$best_before" ] || better "$o" "$best_before"; then best_before=$o; fi
      fi
    done
    ko=$(field ops/s "$best_kms") bo=$(field ops/s "$best_base")
    printf '%-16s %3s  %9.0f %9.0f %6.2f  %8s %8s  %8s %8s  %s\n' "$op" "$c" "$ko" "$bo" \
      "$(awk -v a="$ko" -v b="$bo" 'BEGIN{print a/b}')" \
      "$(field p50_ms "$best_kms")" "$(field p99_ms "$best_kms")" \
      "$(field p50_ms "$best_base")" "$(field p99_ms "$best_base")" "$(field errors "$best_kms")"
    if [ -n "${BEFORE:-}" ]; then
      bo2=$(field ops/s "$best_before")
      printf '%-16s %3s  %9.0f %9.0f %6.2f  %8s %8s  %8s %8s  %s\n' "  at $BEFORE" "$c" "$bo2" "$bo" \
        "$(awk -v a="$bo2" -v b="$bo" 'BEGIN{print a/b}')" \
        "$(field p50_ms "$best_before")" "$(field p99_ms "$best_before")" \
        "$(field p50_ms "$best_base")" "$(field p99_ms "$best_base")" "$(field errors "$best_before")"
    fi
  done
done

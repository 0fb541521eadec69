#!/usr/bin/env bash
# How fast kms encrypt and kms decrypt stream a large file, beside what
# the machine can do and beside age: file to file and stdin to stdout
# through pipes, each case alternated with the others, best of ROUNDS.
#
#   scripts/bench-files.sh                  # 1 GiB, 3 rounds
#   SIZE_MIB=256 ROUNDS=5 scripts/bench-files.sh
#   BENCH_DIR=/dev/shm scripts/bench-files.sh   # files on tmpfs
#
# Baselines: cp (and cp followed by an fsync of the copy, since kms -o
# fsyncs a regular output file before renaming it into place), cat|cat
# for pipes, and the time one core needs to run AES-256-GCM over the
# data (openssl speed -evp aes-256-gcm -bytes 16384). "goal" is kms's
# time over 1.5 x max(copy, AES): at most 1.0 meets it. Not run by CI:
# it needs the aws CLI, openssl and age, and a few GiB of disk.
#
# For files the goal is out of reach of anything that makes its output
# durable wherever the disk takes longer to absorb the file than 1.5 x cp
# takes to copy it into the page cache. On the 2-core VM these figures
# were first taken on, cp of 1 GiB took about 0.2 s and cp+fsync 0.7 to
# 1.0 s, while writing 1 GiB from memory with the fsync included took
# 0.5 s at best by any method tried (buffered, with or without early
# writeback or fallocate, or O_DIRECT); kms -o, which must fsync, is
# judged against cp+fsync on the last line, and against age, which does
# not fsync. Other load on such a machine moves every figure by tens of
# percent between runs: compare runs made side by side, or raise ROUNDS.
set -euo pipefail
cd "$(dirname "$0")/.."

size_mib=${SIZE_MIB:-1024}
rounds=${ROUNDS:-3}
for tool in aws openssl age age-keygen; do
  command -v "$tool" >/dev/null || { echo "bench-files.sh: $tool is needed" >&2; exit 1; }
done

work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/kms-bench-files.XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "building kms..." >&2
go build -o "$work/kms" ./cmd/kms
kms=$work/kms

"$kms" server --dev --listen 127.0.0.1:0 --data-dir "$work/data" >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
url=""
for _ in $(seq 100); do
  url=$(sed -n 's|^kms server listening on \(http://[^ ]*\) .*|\1|p' "$work/server.out")
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { cat "$work/server.err" >&2; exit 1; }
export AWS_SHARED_CREDENTIALS_FILE=$work/data/credentials AWS_CONFIG_FILE=/dev/null \
  AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_ENDPOINT_URL=$url
key=$(aws kms create-key --query KeyMetadata.Arn --output text)

echo "writing ${size_mib} MiB of random plaintext..." >&2
head -c "${size_mib}M" /dev/urandom >"$work/in"
age-keygen -o "$work/age.key" 2>/dev/null
recipient=$(age-keygen -y "$work/age.key")
"$kms" encrypt --key "$key" -o "$work/in.kms" "$work/in"
age -r "$recipient" -o "$work/in.age" "$work/in"

# ms CMD... runs CMD (a shell command line) after removing the outputs and
# syncing, so that no case pays for another's writeback, and prints its
# wall time in milliseconds.
ms() {
  rm -f "$work/out"
  sync
  local s e
  s=$(date +%s%N)
  bash -c "$1"
  e=$(date +%s%N)
  echo $(((e - s) / 1000000))
}

declare -A cmd best
cmd[cp]="cp '$work/in' '$work/out'"
cmd[cp+fsync]="cp '$work/in' '$work/out' && sync '$work/out'"
cmd[kms.enc.file]="'$kms' encrypt --key '$key' -o '$work/out' '$work/in'"
cmd[age.enc.file]="age -r '$recipient' -o '$work/out' '$work/in'"
cmd[kms.dec.file]="'$kms' decrypt -o '$work/out' '$work/in.kms'"
cmd[age.dec.file]="age -d -i '$work/age.key' -o '$work/out' '$work/in.age'"
cmd[cat.pipe]="cat '$work/in' | cat | cat >/dev/null"
cmd[kms.enc.pipe]="cat '$work/in' | '$kms' encrypt --key '$key' | cat >/dev/null"
cmd[age.enc.pipe]="cat '$work/in' | age -r '$recipient' | cat >/dev/null"
cmd[kms.dec.pipe]="cat '$work/in.kms' | '$kms' decrypt | cat >/dev/null"
cmd[age.dec.pipe]="cat '$work/in.age' | age -d -i '$work/age.key' | cat >/dev/null"
order=(cp cp+fsync kms.enc.file age.enc.file kms.dec.file age.dec.file cat.pipe kms.enc.pipe age.enc.pipe kms.dec.pipe age.dec.pipe)

for r in $(seq "$rounds"); do
  echo "round $r of $rounds..." >&2
  for c in "${order[@]}"; do
    t=$(ms "${cmd[$c]}")
    if [ -z "${best[$c]:-}" ] || [ "$t" -lt "${best[$c]}" ]; then best[$c]=$t; fi
  done
done
rm -f "$work/out"

# One core of AES-256-GCM: openssl prints thousands of bytes per second.
kbps=$(openssl speed -evp aes-256-gcm -bytes 16384 -seconds 3 2>/dev/null | awk '/^AES-256-GCM/ {sub(/k$/, "", $2); print $2}')
aes=$(awk -v k="$kbps" -v m="$size_mib" 'BEGIN {printf "%d", m * 1048576 / (k * 1000) * 1000}')

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
maxof() { if [ "$1" -gt "$2" ]; then echo "$1"; else echo "$2"; fi; }

echo
echo "${size_mib} MiB, best of $rounds, milliseconds; AES-256-GCM on one core: ${aes} ms"
echo "cp ${best[cp]}, cp+fsync ${best[cp+fsync]}, cat|cat|cat ${best[cat.pipe]}"
echo
printf '%-14s %7s %7s %9s %9s %7s\n' case kms age kms/age kms/base goal
row() { # name kms age base
  printf '%-14s %7d %7d %9s %9s %7s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")" "$(ratio "$2" "$4")" "$(ratio "$2" "$(awk -v b="$4" 'BEGIN {print 1.5 * b}')")"
}
file_base=$(maxof "${best[cp]}" "$aes")
fsync_base=$(maxof "${best[cp+fsync]}" "$aes")
pipe_base=$(maxof "${best[cat.pipe]}" "$aes")
row "encrypt file" "${best[kms.enc.file]}" "${best[age.enc.file]}" "$file_base"
row "decrypt file" "${best[kms.dec.file]}" "${best[age.dec.file]}" "$file_base"
row "encrypt pipe" "${best[kms.enc.pipe]}" "${best[age.enc.pipe]}" "$pipe_base"
row "decrypt pipe" "${best[kms.dec.pipe]}" "${best[age.dec.pipe]}" "$pipe_base"
echo
echo "base: max(copy, AES) with copy = cp for files, cat|cat|cat for pipes."
echo "With cp+fsync as the file baseline (kms -o fsyncs, cp and age do not):"
echo "  encrypt file kms/base $(ratio "${best[kms.enc.file]}" "$fsync_base"), decrypt file kms/base $(ratio "${best[kms.dec.file]}" "$fsync_base")"

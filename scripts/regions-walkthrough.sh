#!/usr/bin/env bash
# Multi-Region keys with the aws CLI alone.
#
#   scripts/regions-walkthrough.sh [ENDPOINT_URL]
#
# Runs against a running kms server (for example `kms server --dev`) that
# serves us-east-1, eu-west-1 and ap-southeast-2 (by default it serves every
# public AWS region). The endpoint is $1, or else $AWS_ENDPOINT_URL; the
# account root's credentials come from the usual places, e.g. the
# credentials file that `kms server --dev` writes. Each call names its
# region with --region, as a client in that region would.
#
# It creates a multi-Region key in us-east-1, replicates it to eu-west-1 and
# ap-southeast-2, decrypts in one region what another encrypted, moves the
# primary to eu-west-1, rotates it and sees the rotation in every region,
# shows that a single-Region key is invisible from another region, and
# schedules the deletion of the key everywhere: the primary waits for its
# replicas (PendingReplicaDeletion). It fails if any step does not come out
# as AWS KMS would have it. Works with aws CLI v1 and v2; needs bash, base64
# and cmp.
set -euo pipefail

endpoint=${1:-${AWS_ENDPOINT_URL:-}}
if [[ -z $endpoint ]]; then
	echo "usage: $0 ENDPOINT_URL   (or set AWS_ENDPOINT_URL), e.g. $0 http://127.0.0.1:8400" >&2
	exit 2
fi
export AWS_PAGER=""
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

kms() { aws kms --endpoint-url "$endpoint" --output text "$@"; }
fail() { echo "regions walkthrough: $*" >&2; exit 1; }
expect() { # expect WHAT GOT WANT
	[[ $2 == "$3" ]] || fail "$1: got '$2', want '$3'"
	echo "$1: $2"
}

echo "== a multi-Region key in us-east-1, replicated to eu-west-1 and ap-southeast-2"
key=$(kms create-key --region us-east-1 --multi-region --description "global orders" --query KeyMetadata.KeyId)
[[ $key == mrk-* ]] || fail "create-key --multi-region gave the id $key"
echo "key $key"
kms replicate-key --region us-east-1 --key-id "$key" --replica-region eu-west-1 \
	--description "orders, Ireland" --query ReplicaKeyMetadata.Arn
kms replicate-key --region us-east-1 --key-id "$key" --replica-region ap-southeast-2 --query ReplicaKeyMetadata.Arn
for r in us-east-1 eu-west-1 ap-southeast-2; do
	expect "$r primary" "$(kms describe-key --region "$r" --key-id "$key" \
		--query KeyMetadata.MultiRegionConfiguration.PrimaryKey.Region)" us-east-1
done

echo "== encrypted in us-east-1, decrypted in ap-southeast-2 and eu-west-1"
printf 'order 42, card ending 1111' >order.txt
kms encrypt --region us-east-1 --key-id "$key" --plaintext fileb://order.txt \
	--encryption-context order=42 --query CiphertextBlob | base64 -d >order.bin
for r in ap-southeast-2 eu-west-1; do
	kms decrypt --region "$r" --ciphertext-blob fileb://order.bin --encryption-context order=42 \
		--query Plaintext | base64 -d >back.txt
	cmp -s order.txt back.txt || fail "$r did not decrypt what us-east-1 encrypted"
	echo "$r decrypted it"
done

echo "== the primary moves to eu-west-1"
kms update-primary-region --region us-east-1 --key-id "$key" --primary-region eu-west-1
for r in us-east-1 eu-west-1 ap-southeast-2; do
	expect "$r primary" "$(kms describe-key --region "$r" --key-id "$key" \
		--query KeyMetadata.MultiRegionConfiguration.PrimaryKey.Region)" eu-west-1
done

echo "== a rotation of the primary is seen in every region"
kms rotate-key-on-demand --region eu-west-1 --key-id "$key" >/dev/null
for r in us-east-1 eu-west-1 ap-southeast-2; do
	expect "$r rotations" "$(kms list-key-rotations --region "$r" --key-id "$key" --query 'length(Rotations)')" 1
done
kms decrypt --region us-east-1 --ciphertext-blob fileb://order.bin --encryption-context order=42 \
	--query Plaintext | base64 -d >back.txt
cmp -s order.txt back.txt || fail "the ciphertext made before the rotation no longer decrypts"

echo "== a single-Region key is invisible from another region"
single=$(kms create-key --region us-east-1 --description "local" --query KeyMetadata.KeyId)
if out=$(kms describe-key --region eu-west-1 --key-id "$single" 2>&1); then
	fail "eu-west-1 sees the us-east-1 key $single"
fi
[[ $out == *NotFoundException* ]] || fail "describe-key in eu-west-1: $out"
echo "eu-west-1: NotFoundException"
kms schedule-key-deletion --region us-east-1 --key-id "$single" --pending-window-in-days 7 >/dev/null

echo "== deleting the primary waits for its replicas"
expect "primary" "$(kms schedule-key-deletion --region eu-west-1 --key-id "$key" \
	--pending-window-in-days 7 --query KeyState)" PendingReplicaDeletion
for r in us-east-1 ap-southeast-2; do
	expect "$r" "$(kms schedule-key-deletion --region "$r" --key-id "$key" \
		--pending-window-in-days 7 --query KeyState)" PendingDeletion
done
echo "regions walkthrough passed"

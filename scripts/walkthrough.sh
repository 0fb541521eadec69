#!/usr/bin/env bash
# Key administrators and key users, with the aws CLI alone.
#
#   scripts/walkthrough.sh [ENDPOINT_URL]
#
# Runs against a running kms server (for example `kms server --dev`). The
# endpoint is $1, or else $AWS_ENDPOINT_URL; the account root's credentials
# come from the usual places (AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE, ...),
# e.g. the credentials file that `kms server --dev` writes.
#
# As the root it creates the IAM users myKeyManager and myKeyUser, an access
# key for each (written as profiles `manager` and `user` into a temporary
# credentials file, so the root's own profile is left alone), and a key whose
# policy is the one the AWS console writes: the account root may delegate
# kms:* through IAM, myKeyManager administers the key, myKeyUser uses it.
# Then, as each user, it shows what each may and may not do, and fails if any
# step does not come out as AWS KMS would have it.
#
# At the end the demo key is left pending deletion (7 days; the manager
# schedules it, cancels, and schedules it again), and the two users and their
# access keys are deleted, so the script can be run again on the same server.
# Works with aws CLI v1 and v2; needs bash, base64 and cmp, not jq.
set -euo pipefail

endpoint=${1:-${AWS_ENDPOINT_URL:-}}
if [[ -z $endpoint ]]; then
	echo "usage: $0 ENDPOINT_URL   (or set AWS_ENDPOINT_URL), e.g. $0 http://127.0.0.1:8400" >&2
	exit 2
fi
if ! command -v aws >/dev/null 2>&1; then
	echo "walkthrough: the aws command line (v1 or v2) is not on PATH" >&2
	exit 2
fi
region=${AWS_REGION:-${AWS_DEFAULT_REGION:-}}
if [[ -z $region ]]; then
	region=$(aws configure get region 2>/dev/null || true)
fi
region=${region:-us-east-1}

export AWS_PAGER=""                                                 # v2: never page
export AWS_EC2_METADATA_DISABLED=${AWS_EC2_METADATA_DISABLED:-true} # no IMDS lookups if credentials are missing

manager=myKeyManager
user=myKeyUser

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kms-walkthrough.XXXXXX")
creds=$tmp/credentials # profiles manager and user
config=$tmp/config
: >"$config"
exec 3>&1 # what the script says goes here even from inside $(...)

# Work in the temporary directory, so fileb:// paths are short; keep relative
# AWS file settings pointing where they did.
for v in AWS_SHARED_CREDENTIALS_FILE AWS_CONFIG_FILE; do
	if [[ -n ${!v:-} && ${!v} != /* && ${!v} != "~"* ]]; then
		export "$v=$PWD/${!v}"
	fi
done
cd "$tmp"

# ---------------------------------------------------------------- helpers

heading() { printf '\n== %s\n' "$*" >&3; }
say() { printf '   %s\n' "$*" >&3; }

# show WHO aws-args...: print the command as it could be typed (without the
# --endpoint-url and --region every command gets).
show() {
	local who=$1 a line=
	shift
	for a in "$@"; do
		if [[ $a =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
			line+=" $a"
		else
			line+=" '${a//"'"/"'\\''"}'"
		fi
	done
	printf '   [%s] $ aws%s\n' "$who" "$line" >&3
}

fail() {
	printf '\nwalkthrough FAILED: %s\n' "$*" >&2
	exit 1
}

# as WHO aws-args...: run the aws CLI as root (the caller's own credentials)
# or as profile manager/user from the temporary credentials file.
as() {
	local who=$1
	shift
	if [[ $who == root ]]; then
		aws "$@" --endpoint-url "$endpoint" --region "$region"
	else
		(
			unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_SECURITY_TOKEN
			export AWS_SHARED_CREDENTIALS_FILE=$creds AWS_CONFIG_FILE=$config AWS_PROFILE=$who
			aws "$@" --endpoint-url "$endpoint" --region "$region"
		)
	fi
}

# ok WHO aws-args...: the command must succeed; prints its stdout.
ok() {
	local who=$1
	shift
	show "$who" "$@"
	local rc=0
	as "$who" "$@" 2>"$tmp/stderr" || rc=$?
	if ((rc != 0)); then
		cat "$tmp/stderr" >&2
		fail "[$who] aws $* exited $rc; it should have succeeded"
	fi
}

# expect_denied WHO aws-args...: the command must fail with
# AccessDeniedException; any other outcome fails the walkthrough.
expect_denied() {
	local who=$1
	shift
	show "$who" "$@"
	local rc=0
	as "$who" "$@" >"$tmp/stdout" 2>"$tmp/stderr" || rc=$?
	if ((rc == 0)); then
		cat "$tmp/stdout" >&2
		fail "[$who] aws $* succeeded; it should have been refused with AccessDeniedException"
	fi
	if ! grep -q AccessDeniedException "$tmp/stderr"; then
		cat "$tmp/stderr" >&2
		fail "[$who] aws $* failed (exit $rc), but not with AccessDeniedException"
	fi
	say "   refused: $(grep -m1 AccessDeniedException "$tmp/stderr" | sed 's/^[[:space:]]*//')"
}

# expect VALUE WANT WHAT
expect() {
	[[ $1 == "$2" ]] || fail "$3 is '$1', want '$2'"
	say "   $3: $1"
}

# Clean up on every exit: the users and access keys this run created (so the
# script can run again), and the temporary files.
created_users=()
access_keys=() # "user access-key-id"
cleanup() {
	local rc=$? u id
	set +e
	for u in "${created_users[@]+"${created_users[@]}"}"; do
		for id in $(as root iam list-access-keys --user-name "$u" \
			--query 'AccessKeyMetadata[].AccessKeyId' --output text 2>/dev/null); do
			as root iam delete-access-key --user-name "$u" --access-key-id "$id" >/dev/null 2>&1
		done
		as root iam delete-user --user-name "$u" >/dev/null 2>&1 ||
			echo "walkthrough: could not delete IAM user $u" >&2
	done
	cd /
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT

say "endpoint $endpoint, region $region"

# ---------------------------------------------------------------- root

heading "As the account root: who am I"
out=$(ok root sts get-caller-identity --query '[Account,Arn]' --output text)
read -r account root_arn <<<"$out" || true
say "   account $account, caller $root_arn"
[[ $account =~ ^[0-9]{12}$ ]] || fail "account id '$account' is not 12 digits"

heading "As the account root: create the users $manager and $user with an access key each"
printf '# written by scripts/walkthrough.sh\n' >"$creds"
chmod 600 "$creds"
for pair in "manager:$manager" "user:$user"; do
	profile=${pair%%:*} name=${pair#*:}
	show root iam create-user --user-name "$name"
	rc=0
	as root iam create-user --user-name "$name" --query User.Arn --output text >"$tmp/stdout" 2>"$tmp/stderr" || rc=$?
	if ((rc != 0)); then
		cat "$tmp/stderr" >&2
		if grep -q EntityAlreadyExists "$tmp/stderr"; then
			echo "walkthrough: $name is left over from an earlier run; remove it with" >&2
			echo "  aws iam list-access-keys --user-name $name   # then for each: aws iam delete-access-key --user-name $name --access-key-id ID" >&2
			echo "  aws iam delete-user --user-name $name" >&2
		fi
		fail "[root] aws iam create-user --user-name $name exited $rc"
	fi
	created_users+=("$name")
	say "   $(cat "$tmp/stdout")"
	out=$(ok root iam create-access-key --user-name "$name" \
		--query 'AccessKey.[AccessKeyId,SecretAccessKey]' --output text)
	read -r key_id secret <<<"$out" || true
	[[ -n ${key_id:-} && -n ${secret:-} ]] || fail "create-access-key for $name printed no key"
	access_keys+=("$name $key_id")
	printf '[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$profile" "$key_id" "$secret" >>"$creds"
	say "   access key $key_id -> profile [$profile] in a temporary credentials file"
done

for pair in "manager:$manager" "user:$user"; do
	profile=${pair%%:*} name=${pair#*:}
	arn=$(ok "$profile" sts get-caller-identity --query Arn --output text)
	expect "$arn" "arn:aws:iam::$account:user/$name" "profile $profile signs as"
done

heading "As the account root: create a key with the console's key policy"
cat >"$tmp/policy.json" <<EOF
{
  "Version": "2012-10-17",
  "Id": "key-consolepolicy-3",
  "Statement": [
    {
      "Sid": "Enable IAM User Permissions",
      "Effect": "Allow",
      "Principal": {"AWS": "arn:aws:iam::$account:root"},
      "Action": "kms:*",
      "Resource": "*"
    },
    {
      "Sid": "Allow access for Key Administrators",
      "Effect": "Allow",
      "Principal": {"AWS": "arn:aws:iam::$account:user/$manager"},
      "Action": [
        "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*",
        "kms:Update*", "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*",
        "kms:TagResource", "kms:UntagResource",
        "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"
      ],
      "Resource": "*"
    },
    {
      "Sid": "Allow use of the key",
      "Effect": "Allow",
      "Principal": {"AWS": "arn:aws:iam::$account:user/$user"},
      "Action": [
        "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*",
        "kms:GenerateDataKey*", "kms:DescribeKey"
      ],
      "Resource": "*"
    },
    {
      "Sid": "Allow attachment of persistent resources",
      "Effect": "Allow",
      "Principal": {"AWS": "arn:aws:iam::$account:user/$user"},
      "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
      "Resource": "*",
      "Condition": {"Bool": {"kms:GrantIsForAWSResource": true}}
    }
  ]
}
EOF
say "   statement 1: the account root gets kms:* -- this only lets IAM policies grant access;"
say "                the two users have no IAM policies, so it gives them nothing"
say "   statement 2: $manager administers the key (Create* Describe* Enable* List* Put* Update*"
say "                Revoke* Disable* Get* Delete* TagResource UntagResource ScheduleKeyDeletion CancelKeyDeletion)"
say "   statement 3: $user uses the key (Encrypt Decrypt ReEncrypt* GenerateDataKey* DescribeKey)"
say "   statement 4: $user may create, list and revoke grants for AWS resources"
key=$(ok root kms create-key --description "walkthrough: administrators and users" \
	--policy "file://policy.json" --query KeyMetadata.KeyId --output text)
say "   key $key"

# A ciphertext for the manager to try to decrypt; the root may make it
# because statement 1 names the account root.
printf 'made by the account root' >"$tmp/root.txt"
ok root kms encrypt --key-id "$key" --plaintext "fileb://root.txt" \
	--query CiphertextBlob --output text | base64 -d >"$tmp/root.bin"
[[ -s $tmp/root.bin ]] || fail "the root's encrypt printed no ciphertext"

# ---------------------------------------------------------------- manager

heading "As $manager (profile manager): administer the key"
state=$(ok manager kms describe-key --key-id "$key" --query KeyMetadata.KeyState --output text)
expect "$state" Enabled "KeyState"
ok manager kms disable-key --key-id "$key" >/dev/null
state=$(ok manager kms describe-key --key-id "$key" --query KeyMetadata.KeyState --output text)
expect "$state" Disabled "KeyState"
ok manager kms enable-key --key-id "$key" >/dev/null
ok manager kms tag-resource --key-id "$key" --tags TagKey=owner,TagValue="$manager" >/dev/null
tags=$(ok manager kms list-resource-tags --key-id "$key" --query 'Tags[].[TagKey,TagValue]' --output text)
expect "$(printf '%s' "$tags" | tr '\t' '=')" "owner=$manager" "tags"

heading "As $manager: using the key is refused"
printf 'the manager tries' >"$tmp/manager.txt"
expect_denied manager kms encrypt --key-id "$key" --plaintext "fileb://manager.txt"
expect_denied manager kms decrypt --ciphertext-blob "fileb://root.bin"

# ---------------------------------------------------------------- user

heading "As $user (profile user): use the key"
head -c 300 /dev/urandom >"$tmp/secret.bin"
ok user kms encrypt --key-id "$key" --plaintext "fileb://secret.bin" \
	--query CiphertextBlob --output text | base64 -d >"$tmp/secret.enc"
[[ -s $tmp/secret.enc ]] || fail "encrypt printed no ciphertext"
say "   300 random bytes -> $(wc -c <"$tmp/secret.enc" | tr -d ' ')-byte ciphertext"
ok user kms decrypt --ciphertext-blob "fileb://secret.enc" \
	--query Plaintext --output text | base64 -d >"$tmp/secret.out"
cmp -s "$tmp/secret.bin" "$tmp/secret.out" || fail "decrypt did not give back the bytes encrypted"
say "   decrypted: the same 300 bytes"
out=$(ok user kms generate-data-key --key-id "$key" --key-spec AES_256 \
	--query '[Plaintext,CiphertextBlob]' --output text)
read -r dk_plain dk_blob <<<"$out" || true
printf '%s' "$dk_plain" | base64 -d >"$tmp/dk.plain"
printf '%s' "$dk_blob" | base64 -d >"$tmp/dk.enc"
[[ $(wc -c <"$tmp/dk.plain" | tr -d ' ') == 32 ]] || fail "the data key is not 32 bytes"
ok user kms decrypt --ciphertext-blob "fileb://dk.enc" \
	--query Plaintext --output text | base64 -d >"$tmp/dk.out"
cmp -s "$tmp/dk.plain" "$tmp/dk.out" || fail "the encrypted data key does not decrypt to the data key"
say "   a 32-byte data key, and its encrypted copy decrypts to it"

heading "As $user: administering the key is refused"
expect_denied user kms disable-key --key-id "$key"
expect_denied user kms put-key-policy --key-id "$key" --policy-name default --policy "file://policy.json"

# ---------------------------------------------------------------- root

heading "As the account root: turn $user's access key off, then on again"
user_key=$(ok root iam list-access-keys --user-name "$user" --query 'AccessKeyMetadata[0].AccessKeyId' --output text)
ok root iam update-access-key --user-name "$user" --access-key-id "$user_key" --status Inactive >/dev/null
status=$(ok root iam list-access-keys --user-name "$user" --query 'AccessKeyMetadata[0].Status' --output text)
expect "$status" Inactive "status of $user_key"
show user kms decrypt --ciphertext-blob "fileb://secret.enc"
rc=0
as user kms decrypt --ciphertext-blob "fileb://secret.enc" >"$tmp/stdout" 2>"$tmp/stderr" || rc=$?
((rc != 0)) || fail "a request signed with an inactive access key succeeded"
grep -q UnrecognizedClientException "$tmp/stderr" || {
	cat "$tmp/stderr" >&2
	fail "a request signed with an inactive access key failed (exit $rc), but not with UnrecognizedClientException"
}
say "   refused: $(grep -m1 UnrecognizedClientException "$tmp/stderr" | sed 's/^[[:space:]]*//')"
ok root iam update-access-key --user-name "$user" --access-key-id "$user_key" --status Active >/dev/null
ok user kms decrypt --ciphertext-blob "fileb://secret.enc" --query Plaintext --output text | base64 -d >"$tmp/secret.out"
cmp -s "$tmp/secret.bin" "$tmp/secret.out" || fail "decrypt with the reactivated key did not give back the bytes"
say "   active again: the same secret signs, and the ciphertext decrypts"

# ---------------------------------------------------------------- manager

heading "As $manager: schedule the key's deletion"
state=$(ok manager kms schedule-key-deletion --key-id "$key" --pending-window-in-days 7 \
	--query KeyState --output text)
expect "$state" PendingDeletion "KeyState"
ok manager kms cancel-key-deletion --key-id "$key" >/dev/null
state=$(ok manager kms describe-key --key-id "$key" --query KeyMetadata.KeyState --output text)
expect "$state" Disabled "KeyState after cancelling"
ok manager kms schedule-key-deletion --key-id "$key" --pending-window-in-days 7 >/dev/null
say "   scheduled again, to leave the server clean: the demo key is deleted in 7 days"

heading "As the account root: delete the two users and their access keys"
for pair in "${access_keys[@]}"; do
	read -r name id <<<"$pair"
	ok root iam delete-access-key --user-name "$name" --access-key-id "$id" >/dev/null
done
for name in "${created_users[@]}"; do
	ok root iam delete-user --user-name "$name" >/dev/null
done
created_users=()

printf '\nwalkthrough passed\n'

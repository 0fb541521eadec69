#!/bin/bash
# usage: gen.sh BIN OUTDIR PORT
#
# Makes the fixture of one earlier version: starts BIN (a kms binary built
# from that version) with --dev on OUTDIR/data, makes keys of every kind
# through the aws CLI (an alias, tags, a rotated key, a disabled one, one
# pending deletion, a key policy, an IAM user with an identity policy and a
# grant, sign, RSA, HMAC, imported and, where the version has them,
# multi-Region keys), ciphertexts of them and a file through kms encrypt,
# then stops the server. ids.env names the keys and says what the user
# alice could do. Needs the aws CLI, openssl and python3.
BIN=$1 OUT=$2 PORT=$3
mkdir -p "$OUT/ct"
D=$OUT/data
cd "$OUT"
log() { echo "== $*" >&2; }
try() { "$@" 2>>"$OUT/fail.log" || { echo "FAIL: $*" | tee -a "$OUT/fail.log" >&2; return 1; }; }
$BIN server --dev --data-dir "$D" --listen 127.0.0.1:$PORT >"$OUT/server.out" 2>"$OUT/server.err" &
SPID=$!
echo $SPID >"$OUT/server.pid"
for i in $(seq 50); do grep -q listening "$OUT/server.out" 2>/dev/null && break; sleep 0.2; done
cat "$OUT/server.out"
CRED=$(grep -o 'AWS_SHARED_CREDENTIALS_FILE=[^ ]*' "$OUT/server.out" | cut -d= -f2)
export AWS_SHARED_CREDENTIALS_FILE=$CRED AWS_ENDPOINT_URL=http://127.0.0.1:$PORT AWS_DEFAULT_REGION=us-east-1
unset AWS_PROFILE
A="aws --output text"
ids=$OUT/ids.env
: >"$ids"
mk() { # name, args...
  local n=$1; shift
  local id
  id=$(try $A kms create-key "$@" --query KeyMetadata.KeyId) || return 1
  echo "$n=$id" >>"$ids"
  eval "$n=$id"
}
printf 'hello from %s\n' "$(basename "$OUT")" >pt.txt
enc() { # keyvar file [context]
  local k=$1 f=$2; shift 2
  try aws kms encrypt --key-id "$k" --plaintext fileb://pt.txt "$@" --query CiphertextBlob --output text | base64 -d >"ct/$f"
}
mk K_SYM --description "symmetric with alias and tags" --tags TagKey=team,TagValue=blue
try aws kms create-alias --alias-name alias/app --target-key-id "$K_SYM"
enc alias/app sym.bin --encryption-context app=orders
try aws kms generate-data-key --key-id alias/app --key-spec AES_256 --encryption-context purpose=dk --output json >dk.json
python3 -c 'import json,base64,sys;d=json.load(open("dk.json"));open("ct/dk.bin","wb").write(base64.b64decode(d["CiphertextBlob"]));open("dk.plain","wb").write(base64.b64decode(d["Plaintext"]))'
head -c 6000 /dev/urandom | base64 >file.txt
try $BIN encrypt --endpoint "$AWS_ENDPOINT_URL" --region us-east-1 --key alias/app --context file=one -o file.enc file.txt

mk K_ROT --description "rotated"
enc "$K_ROT" rot-v1.bin
try aws kms enable-key-rotation --key-id "$K_ROT"
try aws kms rotate-key-on-demand --key-id "$K_ROT" && echo ROTATED_ON_DEMAND=1 >>"$ids"
enc "$K_ROT" rot-v2.bin

mk K_DIS --description "disabled"
enc "$K_DIS" dis.bin
try aws kms disable-key --key-id "$K_DIS"

mk K_DEL --description "pending deletion"
enc "$K_DEL" del.bin
echo "K_DEL_DATE=$(try aws kms schedule-key-deletion --key-id "$K_DEL" --pending-window-in-days 7 --query DeletionDate --output text)" >>"$ids"

# IAM: alice may use K_SYM only (identity policy); a grant on K_ROT with a constraint.
try aws iam create-user --user-name alice
try aws iam create-access-key --user-name alice --output json >alice-key.json
python3 - <<'EOF'
import json
k=json.load(open("alice-key.json"))["AccessKey"]
open("alice.creds","w").write("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n"%(k["AccessKeyId"],k["SecretAccessKey"]))
EOF
ACCT=$(aws sts get-caller-identity --query Account --output text)
echo "ACCOUNT=$ACCT" >>"$ids"
cat >alice-policy.json <<EOF
{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt","kms:GenerateDataKey"],"Resource":"arn:aws:kms:us-east-1:$ACCT:key/$K_SYM"}]}
EOF
try aws iam put-user-policy --user-name alice --policy-name use-sym --policy-document file://alice-policy.json
try aws kms create-grant --key-id "$K_ROT" --grantee-principal "arn:aws:iam::$ACCT:user/alice" --operations Encrypt Decrypt --constraints EncryptionContextSubset={app=grant} --name alice-grant --query GrantId --output text >grant.id
# key policy: root delegates; alice may Decrypt; Encrypt is denied to alice explicitly.
cat >kp.json <<EOF
{"Version":"2012-10-17","Statement":[
 {"Sid":"root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::$ACCT:root"},"Action":"kms:*","Resource":"*"},
 {"Sid":"alice-decrypt","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::$ACCT:user/alice"},"Action":"kms:Decrypt","Resource":"*"},
 {"Sid":"no-encrypt","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::$ACCT:user/alice"},"Action":"kms:Encrypt","Resource":"*"}]}
EOF
mk K_POL --description "custom policy" --policy file://kp.json
enc "$K_POL" pol.bin
# alice's view, before the upgrade
(
  export AWS_SHARED_CREDENTIALS_FILE=$OUT/alice.creds
  aws kms encrypt --key-id "$K_SYM" --plaintext fileb://pt.txt --query CiphertextBlob --output text >/dev/null 2>&1 && echo "ALICE_SYM_ENCRYPT=ok" || echo "ALICE_SYM_ENCRYPT=denied"
  aws kms encrypt --key-id "$K_DIS" --plaintext fileb://pt.txt >/dev/null 2>&1 && echo "ALICE_DIS_ENCRYPT=ok" || echo "ALICE_DIS_ENCRYPT=denied"
  aws kms encrypt --key-id "$K_ROT" --plaintext fileb://pt.txt --encryption-context app=grant >/dev/null 2>&1 && echo "ALICE_GRANT_ENCRYPT=ok" || echo "ALICE_GRANT_ENCRYPT=denied"
  aws kms encrypt --key-id "$K_ROT" --plaintext fileb://pt.txt >/dev/null 2>&1 && echo "ALICE_GRANT_NOCTX_ENCRYPT=ok" || echo "ALICE_GRANT_NOCTX_ENCRYPT=denied"
  aws kms decrypt --ciphertext-blob fileb://ct/pol.bin >/dev/null 2>&1 && echo "ALICE_POL_DECRYPT=ok" || echo "ALICE_POL_DECRYPT=denied"
  aws kms encrypt --key-id "$K_POL" --plaintext fileb://pt.txt >/dev/null 2>&1 && echo "ALICE_POL_ENCRYPT=ok" || echo "ALICE_POL_ENCRYPT=denied"
) >>"$ids"

mk K_SIGN --key-spec ECC_NIST_P256 --key-usage SIGN_VERIFY --description sign
try aws kms sign --key-id "$K_SIGN" --message fileb://pt.txt --message-type RAW --signing-algorithm ECDSA_SHA_256 --query Signature --output text | base64 -d >ct/sig.bin
try aws kms get-public-key --key-id "$K_SIGN" --query PublicKey --output text | base64 -d >sign.pub.der
mk K_RSA --key-spec RSA_2048 --key-usage ENCRYPT_DECRYPT --description rsa
enc "$K_RSA" rsa.bin --encryption-algorithm RSAES_OAEP_SHA_256
mk K_HMAC --key-spec HMAC_256 --key-usage GENERATE_VERIFY_MAC --description hmac
try aws kms generate-mac --key-id "$K_HMAC" --message fileb://pt.txt --mac-algorithm HMAC_SHA_256 --query Mac --output text | base64 -d >ct/mac.bin

mk K_IMP --origin EXTERNAL --description imported
try aws kms get-parameters-for-import --key-id "$K_IMP" --wrapping-algorithm RSAES_OAEP_SHA_256 --wrapping-key-spec RSA_2048 --output json >imp.json
python3 -c 'import json,base64;d=json.load(open("imp.json"));open("imp.pub","wb").write(base64.b64decode(d["PublicKey"]));open("imp.token","wb").write(base64.b64decode(d["ImportToken"]))'
head -c 32 /dev/urandom >imp.material
openssl pkeyutl -encrypt -pubin -keyform DER -in imp.material -inkey imp.pub -out imp.wrapped -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256
try aws kms import-key-material --key-id "$K_IMP" --encrypted-key-material fileb://imp.wrapped --import-token fileb://imp.token --expiration-model KEY_MATERIAL_DOES_NOT_EXPIRE
enc "$K_IMP" imp.bin
rm -f imp.token imp.wrapped imp.pub imp.json

if mk K_MRK --multi-region --description multiregion; then
  try aws kms replicate-key --key-id "$K_MRK" --replica-region us-west-2 >/dev/null && echo "MRK_REPLICA=us-west-2" >>"$ids"
  enc "$K_MRK" mrk.bin
fi
kill -TERM $SPID; wait $SPID
# Keep what the test reads.
rm -f dk.json alice-key.json alice-policy.json kp.json grant.id sign.pub.der imp.material \
  list-keys.json list-aliases.json server.pid server.out server.err fail.log

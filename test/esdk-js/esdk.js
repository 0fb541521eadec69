// Usage: node esdk.js encrypt|decrypt IN OUT [KEY_ARN] [SUITE] [k=v ...]
// Encrypts or decrypts a file with the official AWS Encryption SDK for
// JavaScript, asking the KMS endpoint in AWS_ENDPOINT_URL for data keys.
// SUITE is 0478 or 0578 (committing, under REQUIRE_ENCRYPT_REQUIRE_DECRYPT),
// or 0178 or 0378 (message format version 1, without key commitment, as
// the SDKs before 2.0 wrote: under FORBID_ENCRYPT_ALLOW_DECRYPT). Decrypt
// reads committing messages only.
'use strict'
const fs = require('fs')
const { KMS } = require('@aws-sdk/client-kms')
const {
  KmsKeyringNode, buildClient, CommitmentPolicy, AlgorithmSuiteIdentifier,
} = require('@aws-crypto/client-node')

const { decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)

const suites = {
  '0478': [AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY, CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT],
  '0578': [AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY_ECDSA_P384, CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT],
  '0178': [AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA256, CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT],
  '0378': [AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384, CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT],
}

async function main () {
  const [mode, inPath, outPath, keyArn, suite, ...pairs] = process.argv.slice(2)
  const endpoint = process.env.AWS_ENDPOINT_URL
  const clientProvider = (region) => new KMS({ region: region || process.env.AWS_REGION || 'us-east-1', endpoint })
  const data = fs.readFileSync(inPath)
  if (mode === 'encrypt') {
    const keyring = new KmsKeyringNode({ generatorKeyId: keyArn, clientProvider })
    const encryptionContext = {}
    for (const p of pairs) { const i = p.indexOf('='); encryptionContext[p.slice(0, i)] = p.slice(i + 1) }
    if (!suites[suite]) throw new Error(`unknown suite ${suite}`)
    const [suiteId, policy] = suites[suite]
    const { result } = await buildClient(policy).encrypt(keyring, data, { encryptionContext, suiteId })
    fs.writeFileSync(outPath, result)
  } else {
    const keyring = new KmsKeyringNode({ discovery: true, clientProvider })
    const { plaintext, messageHeader } = await decrypt(keyring, data)
    fs.writeFileSync(outPath, plaintext)
    process.stdout.write(JSON.stringify({ suite: messageHeader.suiteId, encryptionContext: messageHeader.encryptionContext }) + '\n')
  }
}

main().catch((e) => { console.error(e && e.stack ? e.stack : e); process.exit(1) })

// Usage: node esdk.js encrypt|decrypt IN OUT [KEY_ARN] [SUITE] [k=v ...]
// Encrypts or decrypts a file with the official AWS Encryption SDK for
// JavaScript, asking the KMS endpoint in AWS_ENDPOINT_URL for data keys.
// SUITE is 0478 or 0578 (committing, under REQUIRE_ENCRYPT_REQUIRE_DECRYPT),
// or any message format version 1 suite the SDK has, without key
// commitment, as the SDKs before 2.0 wrote: 0014, 0046, 0078 (no key
// derivation), 0114, 0146, 0178 (HKDF-SHA256), 0214 (HKDF-SHA256, ECDSA
// P-256), 0346, 0378 (HKDF-SHA384, ECDSA P-384), under
// FORBID_ENCRYPT_ALLOW_DECRYPT. Decrypt reads committing messages only.
'use strict'
const fs = require('fs')
const { KMS } = require('@aws-sdk/client-kms')
const {
  KmsKeyringNode, buildClient, CommitmentPolicy, AlgorithmSuiteIdentifier,
} = require('@aws-crypto/client-node')

const { decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)

// Every suite of the SDK's AlgorithmSuiteIdentifier, by its hex ID.
const legacy = CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT
const suites = {
  '0478': [AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY, CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT],
  '0578': [AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY_ECDSA_P384, CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT],
  '0014': [AlgorithmSuiteIdentifier.ALG_AES128_GCM_IV12_TAG16, legacy],
  '0046': [AlgorithmSuiteIdentifier.ALG_AES192_GCM_IV12_TAG16, legacy],
  '0078': [AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16, legacy],
  '0114': [AlgorithmSuiteIdentifier.ALG_AES128_GCM_IV12_TAG16_HKDF_SHA256, legacy],
  '0146': [AlgorithmSuiteIdentifier.ALG_AES192_GCM_IV12_TAG16_HKDF_SHA256, legacy],
  '0178': [AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA256, legacy],
  '0214': [AlgorithmSuiteIdentifier.ALG_AES128_GCM_IV12_TAG16_HKDF_SHA256_ECDSA_P256, legacy],
  '0346': [AlgorithmSuiteIdentifier.ALG_AES192_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384, legacy],
  '0378': [AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384, legacy],
}
for (const [hex, [id]] of Object.entries(suites)) {
  if (id !== parseInt(hex, 16)) throw new Error(`suite ${hex} is ${id} in this SDK`)
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

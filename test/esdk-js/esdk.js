// Usage: node esdk.js encrypt|decrypt IN OUT [KEY_ARN] [SUITE] [k=v ...]
// Encrypts or decrypts a file with the official AWS Encryption SDK for
// JavaScript, asking the KMS endpoint in AWS_ENDPOINT_URL for data keys.
'use strict'
const fs = require('fs')
const { KMS } = require('@aws-sdk/client-kms')
const {
  KmsKeyringNode, buildClient, CommitmentPolicy, AlgorithmSuiteIdentifier,
} = require('@aws-crypto/client-node')

const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)

async function main () {
  const [mode, inPath, outPath, keyArn, suite, ...pairs] = process.argv.slice(2)
  const endpoint = process.env.AWS_ENDPOINT_URL
  const clientProvider = (region) => new KMS({ region: region || process.env.AWS_REGION || 'us-east-1', endpoint })
  const data = fs.readFileSync(inPath)
  if (mode === 'encrypt') {
    const keyring = new KmsKeyringNode({ generatorKeyId: keyArn, clientProvider })
    const encryptionContext = {}
    for (const p of pairs) { const i = p.indexOf('='); encryptionContext[p.slice(0, i)] = p.slice(i + 1) }
    const suiteId = suite === '0578'
      ? AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY_ECDSA_P384
      : AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY
    const { result } = await encrypt(keyring, data, { encryptionContext, suiteId })
    fs.writeFileSync(outPath, result)
  } else {
    const keyring = new KmsKeyringNode({ discovery: true, clientProvider })
    const { plaintext, messageHeader } = await decrypt(keyring, data)
    fs.writeFileSync(outPath, plaintext)
    process.stdout.write(JSON.stringify({ suite: messageHeader.suiteId, encryptionContext: messageHeader.encryptionContext }) + '\n')
  }
}

main().catch((e) => { console.error(e && e.stack ? e.stack : e); process.exit(1) })

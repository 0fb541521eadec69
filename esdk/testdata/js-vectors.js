// Writes esdk/testdata/js-vectors.json with the official AWS Encryption SDK
// for JavaScript: npm install @aws-crypto/client-node@5.0.2, then
// node js-vectors.js > js-vectors.json
const { buildClient, CommitmentPolicy, RawAesKeyringNode, RawAesWrappingSuiteIdentifier, AlgorithmSuiteIdentifier } = require('@aws-crypto/client-node')
const key = Buffer.alloc(32); for (let i = 0; i < 32; i++) key[i] = i
const keyHex = key.toString('hex')
const keyring = new RawAesKeyringNode({ keyName: 'test-key', keyNamespace: 'test-namespace', unencryptedMasterKey: key, wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING })
function pt(n) { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 8)) & 0xff; return b }
const committing = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT)
const legacy = buildClient(CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT)
const cases = []
const shapes = [[4096, 0], [4096, 1], [4096, 4095], [4096, 4096], [4096, 4097], [100, 1000], [1, 3], [1024, 5000], [512, 1024]]
// The other version 1 suites (shorter keys, P-256, no key derivation) in
// fewer shapes: empty, frame-aligned, one byte over, many frames.
const fewShapes = [[4096, 0], [4096, 4096], [4096, 4097], [100, 1000], [1, 3]]
for (const [suites, sizes] of [[[0x0478, 0x0578, 0x0178, 0x0378], shapes], [[0x0114, 0x0146, 0x0214, 0x0346, 0x0014, 0x0046, 0x0078], fewShapes]]) {
  for (const suite of suites) {
    for (const [frameLength, size] of sizes) {
      for (const ec of [{}, { purpose: 'interop', 'key with spaces': 'välue' }]) {
        cases.push({ suite, frameLength, size, ec })
      }
    }
  }
}
;(async () => {
  const out = []
  for (const c of cases) {
    const client = (c.suite === 0x0478 || c.suite === 0x0578) ? committing : legacy
    const { result } = await client.encrypt(keyring, pt(c.size), { suiteId: c.suite, frameLength: c.frameLength, encryptionContext: c.ec })
    out.push({ suite: c.suite, frame_length: c.frameLength, size: c.size, context: c.ec, message: result.toString('base64') })
  }
  process.stdout.write(JSON.stringify({ generator: '@aws-crypto/client-node ' + require('@aws-crypto/client-node/package.json').version, wrapping_key: keyHex, key_namespace: 'test-namespace', key_name: 'test-key', vectors: out }, null, 1) + '\n')
})().catch(e => { console.error(e); process.exit(1) })

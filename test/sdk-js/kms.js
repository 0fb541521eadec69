// Usage: node kms.js
// Drives the server at KMS_ENDPOINT with the AWS SDK for JavaScript v3
// (@aws-sdk/client-kms), configured as a user would: `endpoint`, a region
// and static credentials. The root's access key is in
// KMS_ACCESS_KEY_ID/KMS_SECRET_ACCESS_KEY, an IAM user's without any
// permission in KMS_NOPERM_ACCESS_KEY_ID/KMS_NOPERM_SECRET_ACCESS_KEY and
// its ARN in KMS_NOPERM_ARN. One client takes all of its configuration
// from AWS_ENDPOINT_URL, AWS_REGION and AWS_ACCESS_KEY_ID/
// AWS_SECRET_ACCESS_KEY instead, as a user's would. Each check prints
// "ok NAME" or "FAIL NAME" with the reason; the exit code is 1 if any
// failed.
'use strict'
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const kms = require('@aws-sdk/client-kms')
const {
  KMSClient, KMSServiceException, paginateListKeys, paginateListAliases,
  CreateKeyCommand, DescribeKeyCommand, EncryptCommand, DecryptCommand,
  GenerateDataKeyCommand, GenerateDataKeyWithoutPlaintextCommand, ReEncryptCommand,
  GenerateRandomCommand, SignCommand, VerifyCommand, GetPublicKeyCommand,
  GenerateMacCommand, VerifyMacCommand, CreateAliasCommand, UpdateAliasCommand,
  DeleteAliasCommand, TagResourceCommand, ListResourceTagsCommand,
  PutKeyPolicyCommand, GetKeyPolicyCommand, CreateGrantCommand, ListGrantsCommand,
  RetireGrantCommand, RevokeGrantCommand, EnableKeyRotationCommand,
  GetKeyRotationStatusCommand, RotateKeyOnDemandCommand, ListKeyRotationsCommand,
  ScheduleKeyDeletionCommand, CancelKeyDeletionCommand, DisableKeyCommand,
  EnableKeyCommand, ListKeysCommand, GenerateDataKeyPairCommand, DeriveSharedSecretCommand,
  EncapsulateCommand, DecapsulateCommand,
} = kms

const env = (name) => {
  const v = process.env[name]
  if (!v) throw new Error(`${name} is not set`)
  return v
}
const endpoint = env('KMS_ENDPOINT')
const region = env('KMS_REGION')
const newClient = (accessKeyId, secretAccessKey) =>
  new KMSClient({ endpoint, region, credentials: { accessKeyId, secretAccessKey } })
const client = newClient(env('KMS_ACCESS_KEY_ID'), env('KMS_SECRET_ACCESS_KEY'))
const send = (command) => client.send(command)

const text = (s) => new TextEncoder().encode(s)
const run = crypto.randomBytes(4).toString('hex') // keeps alias names apart

// noMessage is what the SDK shows as the message of an error whose body
// has none, as AWS sends InvalidCiphertextException,
// KMSInvalidSignatureException and KMSInvalidMacException.
const noMessage = 'UnknownError'

// rejects runs promise, which must fail with an error of class cls (a
// modelled exception class, or the name of an unmodelled error), HTTP
// status 400, after one attempt (the SDK sends no 4xx again) and, if
// message is given, with that message. It returns the error.
async function rejects (promise, cls, message) {
  let err
  try {
    await promise
  } catch (e) {
    err = e
  }
  const name = typeof cls === 'string' ? cls : cls.name
  assert.ok(err, `succeeded, want ${name}`)
  if (typeof cls === 'string') {
    assert.ok(err instanceof KMSServiceException, `${err.name} (${err.message}) is no KMSServiceException`)
  } else {
    assert.ok(err instanceof cls, `${err.name} (${err.message}) is no ${name}`)
  }
  assert.equal(err.name, name, err.message)
  assert.equal(err.$fault, 'client')
  assert.equal(err.$metadata.httpStatusCode, 400, `${name} status`)
  assert.equal(err.$metadata.attempts, 1, `${name} attempts`)
  if (message !== undefined) assert.equal(err.message, message, `${name} message`)
  return err
}

function bytesEqual (got, want, what) {
  assert.ok(got instanceof Uint8Array, `${what} is a ${typeof got}, not a Uint8Array`)
  assert.ok(Buffer.from(got).equals(Buffer.from(want)), `${what} differs`)
}

const keys = {} // made once by the first check, used by the others

const checks = {
  async createKeys () {
    const made = await Promise.all([
      send(new CreateKeyCommand({ Description: 'sdk-js symmetric' })),
      send(new CreateKeyCommand({ Description: 'sdk-js second', Tags: [{ TagKey: 'team', TagValue: 'js' }] })),
      send(new CreateKeyCommand({ KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' })),
      send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' })),
      send(new CreateKeyCommand({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' })),
    ])
    const [sym, sym2, rsa, ecc, hmac] = made.map((r) => r.KeyMetadata)
    Object.assign(keys, { sym, sym2, rsa, ecc, hmac })
    for (const [m, spec, usage] of [
      [sym, 'SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT'], [sym2, 'SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT'],
      [rsa, 'RSA_2048', 'SIGN_VERIFY'], [ecc, 'ECC_NIST_P256', 'SIGN_VERIFY'],
      [hmac, 'HMAC_256', 'GENERATE_VERIFY_MAC'],
    ]) {
      assert.equal(m.KeySpec, spec)
      assert.equal(m.KeyUsage, usage)
      assert.equal(m.KeyState, 'Enabled')
      assert.equal(m.Enabled, true)
      assert.equal(m.Arn, `arn:aws:kms:${region}:${m.AWSAccountId}:key/${m.KeyId}`)
      assert.ok(m.CreationDate instanceof Date && Math.abs(m.CreationDate - Date.now()) < 60e3, `CreationDate ${m.CreationDate}`)
    }
    assert.deepEqual(rsa.SigningAlgorithms.slice().sort(), [
      'RSASSA_PKCS1_V1_5_SHA_256', 'RSASSA_PKCS1_V1_5_SHA_384', 'RSASSA_PKCS1_V1_5_SHA_512',
      'RSASSA_PSS_SHA_256', 'RSASSA_PSS_SHA_384', 'RSASSA_PSS_SHA_512'])
    assert.deepEqual(ecc.SigningAlgorithms, ['ECDSA_SHA_256'])
    assert.deepEqual(hmac.MacAlgorithms, ['HMAC_SHA_256'])
    assert.deepEqual(sym.EncryptionAlgorithms, ['SYMMETRIC_DEFAULT'])
  },

  // Configured the way the README's exports configure the aws CLI:
  // AWS_ENDPOINT_URL, the region and the access key from the environment.
  async fromEnvironment () {
    const c = new KMSClient({})
    assert.equal(await c.config.region(), region)
    const { KeyMetadata } = await c.send(new DescribeKeyCommand({ KeyId: keys.sym.KeyId }))
    assert.equal(KeyMetadata.Arn, keys.sym.Arn)
  },

  async describeKey () {
    const { KeyMetadata: m } = await send(new DescribeKeyCommand({ KeyId: keys.sym.Arn }))
    assert.equal(m.KeyId, keys.sym.KeyId)
    assert.equal(m.Description, 'sdk-js symmetric')
    assert.equal(m.Origin, 'AWS_KMS')
    assert.equal(m.KeyManager, 'CUSTOMER')
    assert.equal(m.CreationDate.getTime(), keys.sym.CreationDate.getTime())
  },

  async listKeysPaginator () {
    const seen = new Set()
    let pages = 0
    for await (const page of paginateListKeys({ client, pageSize: 2 }, {})) {
      pages++
      assert.ok(page.Keys.length <= 2, `a page of ${page.Keys.length} keys, Limit 2`)
      assert.equal(page.Truncated, page.NextMarker !== undefined, 'Truncated and NextMarker disagree')
      for (const k of page.Keys) {
        assert.ok(!seen.has(k.KeyId), `key ${k.KeyId} listed twice`)
        seen.add(k.KeyId)
      }
    }
    assert.ok(pages >= 3, `${pages} pages of 2 for at least 5 keys`)
    for (const k of Object.values(keys)) assert.ok(seen.has(k.KeyId), `${k.KeyId} not listed`)
  },

  async listAliasesPaginator () {
    const names = [1, 2, 3].map((i) => `alias/sdk-js-list-${run}-${i}`)
    for (const AliasName of names) await send(new CreateAliasCommand({ AliasName, TargetKeyId: keys.sym2.KeyId }))
    const got = []
    let pages = 0
    for await (const page of paginateListAliases({ client, pageSize: 2 }, { KeyId: keys.sym2.KeyId })) {
      pages++
      assert.ok(page.Aliases.length <= 2, `a page of ${page.Aliases.length} aliases, Limit 2`)
      got.push(...page.Aliases)
    }
    assert.equal(pages, 2)
    assert.deepEqual(got.map((a) => a.AliasName).sort(), names)
    for (const a of got) {
      assert.equal(a.TargetKeyId, keys.sym2.KeyId)
      assert.equal(a.AliasArn, `arn:aws:kms:${region}:${keys.sym2.AWSAccountId}:${a.AliasName}`)
    }
  },

  async encryptDecrypt () {
    const plain = crypto.randomBytes(100)
    // Characters that JSON encoders escape differently.
    const EncryptionContext = { purpose: 'sdk-js', order: '42', '名前': '<値> & "✓" \u2028' }
    const enc = await send(new EncryptCommand({ KeyId: keys.sym.KeyId, Plaintext: plain, EncryptionContext }))
    assert.equal(enc.KeyId, keys.sym.Arn)
    assert.equal(enc.EncryptionAlgorithm, 'SYMMETRIC_DEFAULT')
    assert.ok(enc.CiphertextBlob instanceof Uint8Array && enc.CiphertextBlob.length > plain.length)
    const dec = await send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext }))
    bytesEqual(dec.Plaintext, plain, 'Decrypt')
    assert.equal(dec.KeyId, keys.sym.Arn)
    // The context is bound to the ciphertext.
    await rejects(send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { purpose: 'sdk-js' } })),
      kms.InvalidCiphertextException, noMessage)
  },

  async generateDataKey () {
    const dk = await send(new GenerateDataKeyCommand({ KeyId: keys.sym.Arn, KeySpec: 'AES_256' }))
    assert.equal(dk.Plaintext.length, 32)
    assert.equal(dk.KeyId, keys.sym.Arn)
    const dec = await send(new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob, KeyId: keys.sym.KeyId }))
    bytesEqual(dec.Plaintext, dk.Plaintext, 'the decrypted data key')
    const short = await send(new GenerateDataKeyCommand({ KeyId: keys.sym.Arn, NumberOfBytes: 7 }))
    assert.equal(short.Plaintext.length, 7)

    const EncryptionContext = { tenant: 'a' }
    const np = await send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keys.sym.KeyId, KeySpec: 'AES_128', EncryptionContext }))
    assert.equal(np.Plaintext, undefined)
    const npDec = await send(new DecryptCommand({ CiphertextBlob: np.CiphertextBlob, EncryptionContext }))
    assert.equal(npDec.Plaintext.length, 16)
  },

  async reEncrypt () {
    const plain = text('moved between keys')
    const enc = await send(new EncryptCommand({ KeyId: keys.sym.KeyId, Plaintext: plain, EncryptionContext: { a: '1' } }))
    const re = await send(new ReEncryptCommand({
      CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: { a: '1' },
      DestinationKeyId: keys.sym2.KeyId, DestinationEncryptionContext: { b: '2' },
    }))
    assert.equal(re.SourceKeyId, keys.sym.Arn)
    assert.equal(re.KeyId, keys.sym2.Arn)
    const dec = await send(new DecryptCommand({ CiphertextBlob: re.CiphertextBlob, EncryptionContext: { b: '2' } }))
    bytesEqual(dec.Plaintext, plain, 'the re-encrypted plaintext')
    assert.equal(dec.KeyId, keys.sym2.Arn)
  },

  async generateRandom () {
    const a = await send(new GenerateRandomCommand({ NumberOfBytes: 64 }))
    const b = await send(new GenerateRandomCommand({ NumberOfBytes: 64 }))
    assert.ok(a.Plaintext instanceof Uint8Array)
    assert.equal(a.Plaintext.length, 64)
    assert.ok(!Buffer.from(a.Plaintext).equals(Buffer.from(b.Plaintext)), 'two random draws are equal')
  },

  async signVerify () {
    const message = text('a message to sign, signed by the server and checked by Node')
    const digest = crypto.createHash('sha256').update(message).digest()
    const cases = [
      { key: keys.rsa, alg: 'RSASSA_PSS_SHA_256', nodeKey: (k) => ({ key: k, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }) },
      { key: keys.ecc, alg: 'ECDSA_SHA_256', nodeKey: (k) => ({ key: k, dsaEncoding: 'der' }) },
    ]
    for (const { key, alg, nodeKey } of cases) {
      const pub = await send(new GetPublicKeyCommand({ KeyId: key.KeyId }))
      assert.equal(pub.KeyId, key.Arn)
      assert.equal(pub.KeySpec, key.KeySpec)
      assert.ok(pub.SigningAlgorithms.includes(alg))
      const publicKey = crypto.createPublicKey({ key: Buffer.from(pub.PublicKey), format: 'der', type: 'spki' })
      for (const [MessageType, Message] of [['RAW', message], ['DIGEST', digest]]) {
        const what = `${alg} ${MessageType}`
        const sig = await send(new SignCommand({ KeyId: key.KeyId, Message, MessageType, SigningAlgorithm: alg }))
        assert.equal(sig.KeyId, key.Arn)
        assert.equal(sig.SigningAlgorithm, alg)
        assert.ok(crypto.verify('sha256', message, nodeKey(publicKey), sig.Signature), `Node rejects the ${what} signature`)
        // A message and its digest are the same message to Verify.
        for (const [vt, vm] of [['RAW', message], ['DIGEST', digest]]) {
          const v = await send(new VerifyCommand({ KeyId: key.Arn, Message: vm, MessageType: vt, Signature: sig.Signature, SigningAlgorithm: alg }))
          assert.equal(v.SignatureValid, true, `${what} signature verified as ${vt}`)
          assert.equal(v.KeyId, key.Arn)
        }
      }
      // AWS's Verify answers a wrong signature with an error, never with
      // SignatureValid false.
      const other = await send(new SignCommand({ KeyId: key.KeyId, Message: text('another'), SigningAlgorithm: alg }))
      await rejects(send(new VerifyCommand({ KeyId: key.KeyId, Message: message, Signature: other.Signature, SigningAlgorithm: alg })),
        kms.KMSInvalidSignatureException, noMessage)
    }
  },

  // The private key of a data key pair is the one for its public key, and
  // the server's ECDH secret is the one Node derives from the other side.
  async keyPairAndAgreement () {
    const pair = await send(new GenerateDataKeyPairCommand({ KeyId: keys.sym.KeyId, KeyPairSpec: 'ECC_NIST_P256', EncryptionContext: { use: 'pair' } }))
    assert.equal(pair.KeyId, keys.sym.Arn)
    const priv = crypto.createPrivateKey({ key: Buffer.from(pair.PrivateKeyPlaintext), format: 'der', type: 'pkcs8' })
    bytesEqual(crypto.createPublicKey(priv).export({ format: 'der', type: 'spki' }), pair.PublicKey, 'the public key of the private key')
    const dec = await send(new DecryptCommand({ CiphertextBlob: pair.PrivateKeyCiphertextBlob, EncryptionContext: { use: 'pair' } }))
    bytesEqual(dec.Plaintext, pair.PrivateKeyPlaintext, 'the decrypted private key')

    const { KeyMetadata: agree } = await send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'KEY_AGREEMENT' }))
    const { PublicKey } = await send(new GetPublicKeyCommand({ KeyId: agree.KeyId }))
    const ours = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const shared = await send(new DeriveSharedSecretCommand({
      KeyId: agree.KeyId, KeyAgreementAlgorithm: 'ECDH',
      PublicKey: ours.publicKey.export({ format: 'der', type: 'spki' }),
    }))
    assert.equal(shared.KeyId, agree.Arn)
    const want = crypto.diffieHellman({ privateKey: ours.privateKey, publicKey: crypto.createPublicKey({ key: Buffer.from(PublicKey), format: 'der', type: 'spki' }) })
    bytesEqual(shared.SharedSecret, want, 'the shared secret')
  },

  // ML-KEM: the SDK reads the key's EncapsulationAlgorithms, a secret
  // that Encapsulate makes Decapsulate recovers, a ciphertext of the
  // wrong length is InvalidCiphertextException, and a data key pair's
  // private key is in the 86-byte PKCS#8 seed form.
  async mlkem () {
    const { KeyMetadata: kem } = await send(new CreateKeyCommand({ KeySpec: 'ML_KEM_768', KeyUsage: 'ENCAPSULATE_DECAPSULATE' }))
    assert.deepEqual(kem.EncapsulationAlgorithms, ['ML_KEM'])
    const pub = await send(new GetPublicKeyCommand({ KeyId: kem.KeyId }))
    assert.deepEqual(pub.EncapsulationAlgorithms, ['ML_KEM'])
    const enc = await send(new EncapsulateCommand({ KeyId: kem.KeyId, EncapsulationAlgorithm: 'ML_KEM' }))
    assert.equal(enc.KeyId, kem.Arn)
    assert.equal(enc.SharedSecret.length, 32)
    assert.equal(enc.SharedSecretCiphertextBlob.length, 1088)
    const dec = await send(new DecapsulateCommand({ KeyId: kem.Arn, SharedSecretCiphertextBlob: enc.SharedSecretCiphertextBlob, EncapsulationAlgorithm: 'ML_KEM' }))
    bytesEqual(dec.SharedSecret, enc.SharedSecret, 'the decapsulated secret')
    await rejects(send(new DecapsulateCommand({ KeyId: kem.KeyId, SharedSecretCiphertextBlob: enc.SharedSecretCiphertextBlob.slice(1), EncapsulationAlgorithm: 'ML_KEM' })),
      kms.InvalidCiphertextException, noMessage)
    const pair = await send(new GenerateDataKeyPairCommand({ KeyId: keys.sym.KeyId, KeyPairSpec: 'ML_KEM_1024' }))
    assert.equal(pair.KeyPairSpec, 'ML_KEM_1024')
    assert.equal(pair.PrivateKeyPlaintext.length, 86)
  },

  async macs () {
    const Message = text('mac me')
    const mac = await send(new GenerateMacCommand({ KeyId: keys.hmac.KeyId, Message, MacAlgorithm: 'HMAC_SHA_256' }))
    assert.equal(mac.KeyId, keys.hmac.Arn)
    assert.equal(mac.Mac.length, 32)
    const again = await send(new GenerateMacCommand({ KeyId: keys.hmac.Arn, Message, MacAlgorithm: 'HMAC_SHA_256' }))
    bytesEqual(again.Mac, mac.Mac, 'a second MAC of the same message')
    const v = await send(new VerifyMacCommand({ KeyId: keys.hmac.KeyId, Message, Mac: mac.Mac, MacAlgorithm: 'HMAC_SHA_256' }))
    assert.equal(v.MacValid, true)
    const bad = Uint8Array.from(mac.Mac)
    bad[0] ^= 1
    await rejects(send(new VerifyMacCommand({ KeyId: keys.hmac.KeyId, Message, Mac: bad, MacAlgorithm: 'HMAC_SHA_256' })),
      kms.KMSInvalidMacException, noMessage)
  },

  async aliases () {
    const AliasName = `alias/sdk-js-${run}`
    await send(new CreateAliasCommand({ AliasName, TargetKeyId: keys.sym.KeyId }))
    const enc = await send(new EncryptCommand({ KeyId: AliasName, Plaintext: text('via alias') }))
    assert.equal(enc.KeyId, keys.sym.Arn)
    await rejects(send(new CreateAliasCommand({ AliasName, TargetKeyId: keys.sym2.KeyId })), kms.AlreadyExistsException,
      `An alias with the name arn:aws:kms:${region}:${keys.sym.AWSAccountId}:${AliasName} already exists`)
    await send(new UpdateAliasCommand({ AliasName, TargetKeyId: keys.sym2.KeyId }))
    const moved = await send(new EncryptCommand({ KeyId: AliasName, Plaintext: text('via alias') }))
    assert.equal(moved.KeyId, keys.sym2.Arn)
    const { KeyMetadata } = await send(new DescribeKeyCommand({ KeyId: `arn:aws:kms:${region}:${keys.sym.AWSAccountId}:${AliasName}` }))
    assert.equal(KeyMetadata.KeyId, keys.sym2.KeyId)
    await send(new DeleteAliasCommand({ AliasName }))
    await rejects(send(new EncryptCommand({ KeyId: AliasName, Plaintext: text('x') })), kms.NotFoundException)
  },

  async tags () {
    await send(new TagResourceCommand({ KeyId: keys.sym2.KeyId, Tags: [{ TagKey: 'env', TagValue: 'test' }, { TagKey: 'team', TagValue: 'node' }] }))
    const { Tags, Truncated } = await send(new ListResourceTagsCommand({ KeyId: keys.sym2.Arn }))
    assert.equal(Truncated, false)
    const byKey = Object.fromEntries(Tags.map((t) => [t.TagKey, t.TagValue]))
    assert.deepEqual(byKey, { env: 'test', team: 'node' })
  },

  async keyPolicy () {
    const account = keys.sym2.AWSAccountId
    const policy = {
      Version: '2012-10-17',
      Id: 'sdk-js',
      Statement: [
        { Sid: 'Root', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'kms:*', Resource: '*' },
        { Sid: 'User', Effect: 'Allow', Principal: { AWS: env('KMS_NOPERM_ARN') }, Action: 'kms:DescribeKey', Resource: '*' },
      ],
    }
    await send(new PutKeyPolicyCommand({ KeyId: keys.sym2.KeyId, PolicyName: 'default', Policy: JSON.stringify(policy) }))
    const got = await send(new GetKeyPolicyCommand({ KeyId: keys.sym2.KeyId, PolicyName: 'default' }))
    assert.deepEqual(JSON.parse(got.Policy), policy)
    // The policy is in force: the user it names may describe the key, and
    // nothing more.
    const user = newClient(env('KMS_NOPERM_ACCESS_KEY_ID'), env('KMS_NOPERM_SECRET_ACCESS_KEY'))
    const d = await user.send(new DescribeKeyCommand({ KeyId: keys.sym2.Arn }))
    assert.equal(d.KeyMetadata.KeyId, keys.sym2.KeyId)
    await rejects(user.send(new EncryptCommand({ KeyId: keys.sym2.Arn, Plaintext: text('x') })), 'AccessDeniedException')
  },

  async grants () {
    const user = newClient(env('KMS_NOPERM_ACCESS_KEY_ID'), env('KMS_NOPERM_SECRET_ACCESS_KEY'))
    const grantee = env('KMS_NOPERM_ARN')
    const encrypt = (GrantTokens) => user.send(new EncryptCommand({ KeyId: keys.sym.Arn, Plaintext: text('granted'), GrantTokens }))
    await rejects(encrypt(), 'AccessDeniedException')

    const g1 = await send(new CreateGrantCommand({ KeyId: keys.sym.KeyId, GranteePrincipal: grantee, Operations: ['Encrypt', 'Decrypt'], Name: 'one' }))
    const g2 = await send(new CreateGrantCommand({ KeyId: keys.sym.Arn, GranteePrincipal: grantee, Operations: ['Encrypt'], Name: 'two' }))
    assert.ok(g1.GrantId && g1.GrantToken && g2.GrantId && g2.GrantToken)
    const enc = await encrypt([g1.GrantToken])
    assert.equal(enc.KeyId, keys.sym.Arn)

    const { Grants } = await send(new ListGrantsCommand({ KeyId: keys.sym.KeyId }))
    const listed = Object.fromEntries(Grants.map((g) => [g.GrantId, g]))
    assert.deepEqual(Object.keys(listed).sort(), [g1.GrantId, g2.GrantId].sort())
    assert.equal(listed[g1.GrantId].GranteePrincipal, grantee)
    assert.equal(listed[g1.GrantId].KeyId, keys.sym.Arn)
    assert.equal(listed[g1.GrantId].Name, 'one')
    assert.deepEqual(listed[g1.GrantId].Operations.slice().sort(), ['Decrypt', 'Encrypt'])
    assert.ok(listed[g1.GrantId].CreationDate instanceof Date)

    // A grantee must exist, as on AWS.
    const nobody = `arn:aws:iam::${keys.sym.AWSAccountId}:user/nobody-${run}`
    await rejects(send(new CreateGrantCommand({ KeyId: keys.sym.KeyId, GranteePrincipal: nobody, Operations: ['Encrypt'] })),
      kms.InvalidArnException, `ARN does not refer to a valid principal: ${nobody}`)

    await send(new RetireGrantCommand({ GrantToken: g1.GrantToken }))
    await send(new RevokeGrantCommand({ KeyId: keys.sym.KeyId, GrantId: g2.GrantId }))
    const after = await send(new ListGrantsCommand({ KeyId: keys.sym.KeyId }))
    assert.deepEqual(after.Grants, [])
    await rejects(encrypt(), 'AccessDeniedException')
  },

  async rotation () {
    const KeyId = keys.sym2.KeyId
    const before = await send(new EncryptCommand({ KeyId, Plaintext: text('before rotation') }))
    await send(new EnableKeyRotationCommand({ KeyId, RotationPeriodInDays: 90 }))
    const st = await send(new GetKeyRotationStatusCommand({ KeyId }))
    assert.equal(st.KeyRotationEnabled, true)
    assert.equal(st.RotationPeriodInDays, 90)
    assert.equal(st.KeyId, keys.sym2.Arn)
    assert.ok(st.NextRotationDate instanceof Date && st.NextRotationDate > Date.now(), `NextRotationDate ${st.NextRotationDate}`)
    const r = await send(new RotateKeyOnDemandCommand({ KeyId }))
    assert.equal(r.KeyId, keys.sym2.Arn)
    const { Rotations, Truncated } = await send(new ListKeyRotationsCommand({ KeyId }))
    assert.equal(Truncated, false)
    assert.equal(Rotations.length, 1)
    assert.equal(Rotations[0].RotationType, 'ON_DEMAND')
    assert.ok(Rotations[0].RotationDate instanceof Date)
    const dec = await send(new DecryptCommand({ CiphertextBlob: before.CiphertextBlob }))
    bytesEqual(dec.Plaintext, text('before rotation'), 'a ciphertext from before the rotation')
  },

  async deletionAndDisabling () {
    const { KeyMetadata: k } = await send(new CreateKeyCommand({ Description: 'sdk-js doomed' }))
    const s = await send(new ScheduleKeyDeletionCommand({ KeyId: k.KeyId, PendingWindowInDays: 7 }))
    assert.equal(s.KeyState, 'PendingDeletion')
    assert.equal(s.PendingWindowInDays, 7)
    assert.equal(s.KeyId, k.Arn)
    const days = (s.DeletionDate - Date.now()) / 86400e3
    assert.ok(days > 6.9 && days <= 7.1, `DeletionDate ${s.DeletionDate} is ${days} days away`)
    await rejects(send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: text('x') })), kms.KMSInvalidStateException,
      `${k.Arn} is pending deletion.`)
    const c = await send(new CancelKeyDeletionCommand({ KeyId: k.KeyId }))
    assert.equal(c.KeyId, k.Arn)
    const { KeyMetadata: m } = await send(new DescribeKeyCommand({ KeyId: k.KeyId }))
    assert.equal(m.KeyState, 'Disabled')
    assert.equal(m.DeletionDate, undefined)

    await send(new EnableKeyCommand({ KeyId: k.KeyId }))
    await send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: text('x') }))
    await send(new DisableKeyCommand({ KeyId: k.KeyId }))
    await rejects(send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: text('x') })), kms.DisabledException, `${k.Arn} is disabled.`)
  },

  async notFound () {
    const id = crypto.randomUUID()
    const err = await rejects(send(new DescribeKeyCommand({ KeyId: id })), kms.NotFoundException,
      `Key 'arn:aws:kms:${region}:${keys.sym.AWSAccountId}:key/${id}' does not exist`)
    assert.ok(err.$metadata.requestId, 'no request id')
    await rejects(send(new EncryptCommand({ KeyId: 'not-a-key-id', Plaintext: text('x') })), kms.NotFoundException,
      "Invalid keyId 'not-a-key-id'")
  },

  async tamperedCiphertext () {
    const enc = await send(new EncryptCommand({ KeyId: keys.sym.KeyId, Plaintext: text('do not touch') }))
    const blob = Uint8Array.from(enc.CiphertextBlob)
    blob[blob.length - 1] ^= 0x80
    await rejects(send(new DecryptCommand({ CiphertextBlob: blob })), kms.InvalidCiphertextException, noMessage)
  },

  async validation () {
    // The JavaScript SDK checks no constraint before sending: the server's
    // ValidationException is what the caller sees.
    await rejects(send(new DescribeKeyCommand({})), 'ValidationException',
      "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
    await rejects(send(new EncryptCommand({ KeyId: keys.sym.KeyId, Plaintext: new Uint8Array(0) })), 'ValidationException',
      "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length greater than or equal to 1")
    await rejects(send(new GenerateRandomCommand({ NumberOfBytes: 0 })), 'ValidationException',
      "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1")
    await rejects(send(new GenerateRandomCommand({ NumberOfBytes: 1025 })), 'ValidationException',
      "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024")
    await rejects(send(new EncryptCommand({ KeyId: keys.sym.KeyId, Plaintext: new Uint8Array(4097) })), 'ValidationException',
      "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096")
    await rejects(send(new ScheduleKeyDeletionCommand({ KeyId: keys.sym.KeyId, PendingWindowInDays: 3 })), 'ValidationException',
      'PendingWindowInDays must be between 7 and 30')
    await rejects(send(new SignCommand({ KeyId: keys.ecc.KeyId, Message: new Uint8Array(31), MessageType: 'DIGEST', SigningAlgorithm: 'ECDSA_SHA_256' })),
      'ValidationException', 'Digest is invalid length for algorithm ECDSA_SHA_256.')
    await rejects(send(new EncryptCommand({ KeyId: keys.ecc.KeyId, Plaintext: text('x') })), kms.InvalidKeyUsageException,
      `${keys.ecc.Arn} key usage is SIGN_VERIFY which is not valid for Encrypt.`)
    await rejects(send(new ListKeysCommand({ Marker: 'not-a-marker' })), kms.InvalidMarkerException)
  },

  async accessDenied () {
    const user = newClient(env('KMS_NOPERM_ACCESS_KEY_ID'), env('KMS_NOPERM_SECRET_ACCESS_KEY'))
    await rejects(user.send(new EncryptCommand({ KeyId: keys.sym.Arn, Plaintext: text('x') })), 'AccessDeniedException',
      `User: ${env('KMS_NOPERM_ARN')} is not authorized to perform: kms:Encrypt on resource: ${keys.sym.Arn} because no identity-based policy allows the kms:Encrypt action`)
    // An action on no key is refused on resource "*".
    await rejects(user.send(new ListKeysCommand({})), 'AccessDeniedException',
      `User: ${env('KMS_NOPERM_ARN')} is not authorized to perform: kms:ListKeys on resource: * because no identity-based policy allows the kms:ListKeys action`)
  },

  async badCredentials () {
    const unknown = newClient('AKIAIOSFODNN7EXAMPLE', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY')
    await rejects(unknown.send(new DescribeKeyCommand({ KeyId: keys.sym.KeyId })), 'UnrecognizedClientException',
      'The security token included in the request is invalid.')
    const wrongSecret = newClient(env('KMS_ACCESS_KEY_ID'), 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY')
    await rejects(wrongSecret.send(new DescribeKeyCommand({ KeyId: keys.sym.KeyId })), 'InvalidSignatureException',
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.')
  },

  // A client whose clock is off by more than AWS's five minutes: the SDK
  // reads the server's time from the Date header of the refusal and signs
  // with it from then on. It sends a "Signature expired" refusal again at
  // once; another refusal only when its new offset is over four minutes,
  // which a skew made with systemClockOffset on a right clock is not.
  async clockSkew () {
    const skewed = (minutes) => new KMSClient({
      endpoint, region, systemClockOffset: minutes * 60e3,
      credentials: { accessKeyId: env('KMS_ACCESS_KEY_ID'), secretAccessKey: env('KMS_SECRET_ACCESS_KEY') },
    })
    const behind = skewed(-20)
    const r = await behind.send(new DescribeKeyCommand({ KeyId: keys.sym.KeyId }))
    assert.equal(r.$metadata.attempts, 2)
    assert.ok(Math.abs(behind.config.systemClockOffset) < 60e3, `offset ${behind.config.systemClockOffset} ms after correction`)

    const ahead = skewed(20)
    const err = await rejects(ahead.send(new DescribeKeyCommand({ KeyId: keys.sym.KeyId })), 'InvalidSignatureException')
    assert.match(err.message, /^Signature not yet current: \d{8}T\d{6}Z is still later than \d{8}T\d{6}Z \(\d{8}T\d{6}Z \+ 5 min\.\)$/)
    assert.ok(Math.abs(ahead.config.systemClockOffset) < 60e3, `offset ${ahead.config.systemClockOffset} ms after correction`)
    const again = await ahead.send(new DescribeKeyCommand({ KeyId: keys.sym.KeyId }))
    assert.equal(again.$metadata.attempts, 1)
  },
}

async function main () {
  let failed = 0
  for (const [name, check] of Object.entries(checks)) {
    try {
      await check()
      console.log(`ok ${name}`)
    } catch (e) {
      failed++
      console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`)
      if (name === 'createKeys') break // every other check needs its keys
    }
  }
  if (failed) {
    console.log(`${failed} failed`)
    process.exit(1)
  }
}

main().catch((e) => { console.error(e && e.stack ? e.stack : e); process.exit(1) })

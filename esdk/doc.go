// Package esdk encrypts and decrypts streams in the AWS Encryption SDK
// message format, so that what it encrypts decrypts with the official AWS
// Encryption SDKs (C, Java, JavaScript, Python, .NET, the aws-encryption-cli)
// and what they encrypt decrypts here.
//
// It implements the AWS Encryption SDK Specification
// (github.com/awslabs/aws-encryption-sdk-specification): data-format/
// message-header.md, message-body.md, message-body-aad.md and
// message-footer.md, framework/algorithm-suites.md and client-apis/
// encrypt.md and decrypt.md. docs/envelope-format.md documents every byte
// as this package writes it.
//
// # Format
//
// A message is a header, a body and, for signed suites, a footer.
// All integers are big-endian.
//
//	header (version 2)
//	  0x02 | uint16 suite | message ID (32 random bytes)
//	  uint16 n | encryption context (n bytes: uint16 count, then count
//	      pairs of uint16-length-prefixed UTF-8 key and value, sorted by key)
//	  uint16 count | count × (uint16 len | provider ID | uint16 len |
//	      provider info | uint16 len | encrypted data key)
//	  0x02 (framed) | uint32 frame length | commitment key (32 bytes)
//	  AES-GCM tag (16 bytes) over all of the above, zero IV, no plaintext
//	body (framed)
//	  regular frame: uint32 seq | IV | frame length bytes of ciphertext | tag
//	  final frame:   0xFFFFFFFF | uint32 seq | IV | uint32 n | n bytes | tag
//	body (non-framed, content type 0x01 and frame length 0; read only)
//	  IV | uint64 n | n bytes | tag
//	footer (signed suites)
//	  uint16 n | ECDSA P-384 signature (DER) of SHA-384(header | body)
//
// The data key comes from a Keyring (for KMS, one "aws-kms" encrypted data
// key per KMS key, its provider info the key ARN). HKDF-SHA512, salted with
// the message ID, derives from it the AES-256-GCM key (info: suite ID,
// "DERIVEKEY") and the 32-byte commitment key stored in the header (info:
// "COMMITKEY"), so that a message decrypts under exactly one data key.
// Frames are numbered from 1; the IV of frame i is eight zero bytes then
// uint32 i; each frame's AAD binds the message ID, whether it is the final
// frame, its number and its plaintext length. Reordered, duplicated,
// dropped, truncated or altered frames fail to decrypt, and so does any
// byte after the message.
//
// # Suites
//
// NewEncrypter writes SuiteCommitKey (0x0478, the default) or
// SuiteCommitKeyECDSAP384 (0x0578), message format version 2, framed. In
// the signed suite a fresh P-384 key signs each message and its public key
// travels in the encryption context under "aws-crypto-public-key".
// NewDecrypter reads those, and with DecryptOptions.AllowNonCommitting also
// every version 1 suite of the specification, which the official SDKs
// wrote before 2.0: AES-256, AES-192 or AES-128 (a data key of 32, 24 or 16
// bytes) under a key derived with HKDF (SHA-256, or SHA-384 with ECDSA
// P-384; 0x0214 is AES-128 with HKDF-SHA256 and ECDSA P-256), or under the
// data key itself (the NO_KDF suites 0x0014, 0x0046, 0x0078). A data key of
// another length than the suite's is refused before it is used.
//
// NewDecrypter also reads non-framed messages (content type 0x01, frame
// length 0; in either header version, any suite it reads), which the
// official Python, Java and C SDKs write when asked for a frame length of
// 0: the body is one IV, a 64-bit length (at most MaxNonFramedLength,
// 2^36 - 32), one AES-GCM ciphertext and one tag, under the body AAD
// "AWSKMSEncryptionClient Single Block" with sequence number 1. Nothing of
// such a body is authenticated before its end, so the decrypter reads it
// whole, keeping its plaintext sealed under a key of its own in memory and
// then in a temporary file (DecryptOptions.TempDir), and returns none of
// it before the tag, the signature and the end of the message have
// verified. It never writes one.
//
// # Streaming and its limits
//
// Both directions work on a bounded window of frames, sealed or opened in
// parallel (Concurrency runs of about 1 MiB to encrypt, 256 KiB to
// decrypt) and written or returned in order. The decrypter returns
// plaintext only after the frame that carries it has authenticated. A streamed signed message cannot be known to be
// signed before its end: the decrypter holds back the plaintext of the last
// frame (the last non-empty one) until the signature verifies, and returns
// io.EOF only after it has, but plaintext returned before is authenticated
// without being known to be signed. A caller that must not act on unsigned
// data waits for io.EOF, and discards what it read on any error; or sets
// DecryptOptions.Buffer, and the reader returns nothing before the whole
// message has verified, keeping the plaintext meanwhile sealed, as for a
// non-framed message, in memory and then in a temporary file.
//
// A message holds at most 2^32 - 1 frames: 16 TiB at the default 4096-byte
// frame length. The encryption context serializes to at most 65535 bytes,
// a header to at most MaxHeaderSize.
//
// Every authentication failure is the one error ErrAuthentication. Errors
// are sticky: after one, every call returns it and no more data.
//
// # Data-key caching
//
// By default every message gets a fresh data key: one keyring call (one
// KMS request) per message. An application that encrypts many small
// messages can wrap its keyring in a CachingKeyring, which reuses a data
// key for messages of the same suite and encryption context within the
// limits of CacheLimits, like the AWS Encryption SDK's caching CMM, and
// caches decrypted data keys for MaxAge. Encryption uses the cache only
// when EncryptOptions.MaxPlaintextLength gives the plaintext's length (or
// a bound on it), so that MaxBytes can be enforced, and only for the
// unsigned suite SuiteCommitKey:
//
//	kr := esdk.NewCachingKeyring(kmskeyring.New(client, keyARN), esdk.CacheLimits{
//		MaxAge:      5 * time.Minute,
//		MaxMessages: 1000,
//		MaxBytes:    100 << 20,
//	})
//	w, err := esdk.NewEncrypter(ctx, &buf, kr, esdk.EncryptOptions{
//		EncryptionContext:  ec,
//		MaxPlaintextLength: int64(len(msg)),
//	})
//
// Share one CachingKeyring between goroutines (it is safe for concurrent
// use; its inner keyring must be too) and use it for decryption as well.
package esdk

"""A second reader of the formats the kms binary writes, from their
documents alone, in Python's standard library: the ciphertext blob
(docs/ciphertext-blob.md), the AWS Encryption SDK message of `kms
encrypt` (docs/envelope-format.md), a data directory's audit trail
(docs/audit.md) and the backup file (docs/backup.md), with a PostgreSQL
store's audit tables in it (docs/audit.md, "In PostgreSQL").

It checks layouts, lengths, hashes, the digests' Ed25519 signatures and
the backup's tag; the AES-GCM and ECDSA parts it leaves to the Go tests
and the official SDKs' interop tests (the standard library has neither).
cmd/kms/formats_python_test.go runs it against the built binary.

    read_formats.py blob FILE KEY_ID PLAINTEXT_LEN
    read_formats.py esdk FILE KEY_ARN PLAINTEXT_LEN FRAME_LEN CONTEXT_JSON
    read_formats.py audit DIR            (exit 1 and "BROKEN ..." if it is)
    read_formats.py tamper DIR edit|delete|reorder
    read_formats.py backup FILE ROOT_KEY_FILE DATA_DIR|-   (- : a PostgreSQL store's)

Each prints "ok ..." and exits 0, or says what differs and exits 1.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import struct
import sys
import uuid


class Mismatch(Exception):
    pass


def need(cond, what):
    if not cond:
        raise Mismatch(what)


class Reader:
    def __init__(self, b, off=0):
        self.b, self.o = b, off

    def take(self, n):
        need(self.o + n <= len(self.b), "truncated at byte %d (%d more wanted)" % (self.o, n))
        v = self.b[self.o:self.o + n]
        self.o += n
        return v

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack(">H", self.take(2))[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def u64(self):
        return struct.unpack(">Q", self.take(8))[0]


# --- docs/ciphertext-blob.md ------------------------------------------------

BLOB_HEADER, BLOB_TAG = 45, 16


def parse_blob(b):
    """Returns (key id bytes, version, nonce) of a blob, checking its layout."""
    need(len(b) >= BLOB_HEADER + BLOB_TAG, "a blob of %d bytes, under 61" % len(b))
    r = Reader(b)
    need(r.u8() == 0x01, "format byte %#x, want 0x01" % b[0])
    kid = r.take(16)
    version = r.u32()
    need(version >= 1, "version 0")
    nonce = r.take(24)
    need(kid[6] >> 4 in (4, 0), "key id %s is neither a version 4 UUID nor a multi-Region id" % kid.hex())
    return kid, version, nonce


def cmd_blob(path, key_id, pt_len):
    b = open(path, "rb").read()
    kid, version, _ = parse_blob(b)
    need(kid == uuid.UUID(key_id).bytes, "key id %s, want %s" % (kid.hex(), key_id))
    need(len(b) == int(pt_len) + 61, "%d bytes for %s of plaintext, want n + 61" % (len(b), pt_len))
    return "blob of key %s, version %d, %d bytes" % (uuid.UUID(bytes=kid), version, len(b))


# --- docs/envelope-format.md ------------------------------------------------

SUITES = {b"\x04\x78": False, b"\x05\x78": True}  # suite: signed


def parse_der_signature(sig):
    r = Reader(sig)
    need(r.u8() == 0x30, "signature is not a DER SEQUENCE")
    need(r.u8() == len(sig) - 2, "signature's SEQUENCE length")
    for _ in range(2):
        need(r.u8() == 0x02, "signature's SEQUENCE holds a non-INTEGER")
        r.take(r.u8())
    need(r.o == len(sig), "bytes after the signature's INTEGERs")


def cmd_esdk(path, key_arn, pt_len, frame_len, context_json):
    b = open(path, "rb").read()
    r = Reader(b)
    need(r.u8() == 2, "header version, want 02")
    suite = r.take(2)
    need(suite in SUITES, "suite %s" % suite.hex())
    signed = SUITES[suite]
    r.take(32)  # message ID
    aad_len = r.u16()
    context, keys = {}, []
    if aad_len:
        a = Reader(r.take(aad_len))
        count = a.u16()
        need(count >= 1, "a pair count of 0")
        for _ in range(count):
            k = a.take(a.u16()).decode("utf-8")
            v = a.take(a.u16()).decode("utf-8")
            need(k not in context, "key %r twice" % k)
            context[k] = v
            keys.append(k)
        need(a.o == aad_len, "AAD length %d, the pairs take %d" % (aad_len, a.o))
        need(keys == sorted(keys, key=lambda k: k.encode()), "context keys not in UTF-8 byte order")
    want = json.loads(context_json)
    if signed:
        pub = base64.b64decode(context.pop("aws-crypto-public-key", ""), validate=True)
        need(len(pub) == 49 and pub[0] in (2, 3), "aws-crypto-public-key is not a compressed P-384 point")
    need(context == want, "context %r, want %r" % (context, want))
    edks = r.u16()
    need(edks >= 1, "no encrypted data key")
    for _ in range(edks):
        provider = r.take(r.u16())
        info = r.take(r.u16()).decode("utf-8")
        blob = r.take(r.u16())
        need(provider == b"aws-kms", "provider %r" % provider)
        need(info == key_arn, "provider info %r, want the key ARN %r" % (info, key_arn))
        need(len(blob) == 32 + 61, "an encrypted data key of %d bytes, want a blob of 32 bytes' plaintext" % len(blob))
        kid, _, _ = parse_blob(blob)
        need(key_arn.endswith("key/" + str(uuid.UUID(bytes=kid))), "the data key's blob names key %s" % kid.hex())
    need(r.u8() == 2, "content type, want 02 (framed)")
    fl = r.u32()
    need(fl == int(frame_len), "frame length %d, want %s" % (fl, frame_len))
    r.take(32)  # commitment key
    r.take(16)  # header tag
    total, seq = 0, 1
    while True:
        s = r.u32()
        if s == 0xFFFFFFFF:
            need(r.u32() == seq, "final frame's sequence number")
            need(r.take(12) == bytes(8) + struct.pack(">I", seq), "final frame's IV")
            n = r.u32()
            need(n <= fl, "final frame of %d bytes, over the frame length" % n)
            r.take(n + 16)
            total += n
            break
        need(s == seq, "frame %d where %d was expected" % (s, seq))
        need(r.take(12) == bytes(8) + struct.pack(">I", seq), "frame %d's IV" % seq)
        r.take(fl + 16)
        total += fl
        seq += 1
    need(total == int(pt_len), "frames hold %d bytes, want %s" % (total, pt_len))
    need(total % fl != 0 or n == 0, "a plaintext that fills its frames ends with an empty final frame")
    if signed:
        sl = r.u16()
        need(sl == 103, "signature length %d, want 103" % sl)
        parse_der_signature(r.take(sl))
    need(r.o == len(b), "%d bytes after the message" % (len(b) - r.o))
    return "message in suite %s, %d frames of %d, %d bytes of plaintext" % (suite.hex(), seq, fl, total)


# --- Ed25519 verification (RFC 8032, section 5.1.7) --------------------------

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _x(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        return None
    return P - x if (x & 1) != sign else x


def _add(a, b):
    e1 = (a[1] - a[0]) * (b[1] - b[0]) % P
    h1 = (a[1] + a[0]) * (b[1] + b[0]) % P
    c = 2 * a[3] * b[3] * D % P
    dd = 2 * a[2] * b[2] % P
    e, f, g, h = h1 - e1, dd - c, dd + c, h1 + e1
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(s, pt):
    q = (0, 1, 1, 0)
    while s:
        if s & 1:
            q = _add(q, pt)
        pt, s = _add(pt, pt), s >> 1
    return q


def _point(b):
    y = int.from_bytes(b, "little")
    x = _x(y & ((1 << 255) - 1), y >> 255)
    return None if x is None else (x, y & ((1 << 255) - 1), 1, x * (y & ((1 << 255) - 1)) % P)


_GY = 4 * pow(5, P - 2, P) % P
_G = (_x(_GY, 0), _GY, 1, _x(_GY, 0) * _GY % P)


def ed25519_verify(pub, msg, sig):
    if len(sig) != 64:
        return False
    a, r, s = _point(pub), _point(sig[:32]), int.from_bytes(sig[32:], "little")
    if a is None or r is None or s >= L:
        return False
    h = int.from_bytes(hashlib.sha512(sig[:32] + pub + msg).digest(), "little") % L
    lhs, rhs = _mul(s, _G), _add(r, _mul(h, a))
    return (lhs[0] * rhs[2] - rhs[0] * lhs[2]) % P == 0 and (lhs[1] * rhs[2] - rhs[1] * lhs[2]) % P == 0


# --- docs/audit.md ----------------------------------------------------------

SEGMENT = re.compile(r"^audit(?:-(\d{6,}))?\.log$")


def segment_number(name):
    """The segment a file name is, or None: audit.log is 1, audit-NNNNNN.log n > 1."""
    m = SEGMENT.match(name)
    if not m:
        return None
    if m.group(1) is None:
        return 1
    n = int(m.group(1))
    return n if n > 1 and m.group(1) == "%06d" % n else None


def segments(d):
    segs = sorted((segment_number(n), n) for n in os.listdir(d) if segment_number(n))
    for i, (n, name) in enumerate(segs):
        need(n == i + 1, "segment %d is missing" % (i + 1))
    return [name for _, name in segs]


def segment_lines(d, name):
    data = open(os.path.join(d, name), "rb").read()
    if b"\0" in data:  # the zeros ahead of the records
        data = data[:data.index(b"\0")]
    need(data == b"" or data.endswith(b"\n"), "%s ends in part of a line" % name)
    return data.split(b"\n")[:-1]


def split_record(line):
    """Returns the hash a line claims and the bytes of its event as written."""
    m = re.match(rb'^\{"hash":"([0-9a-f]{64})","event":(.*)\}$', line, re.S)
    need(m is not None, "a line that is not {\"hash\":...,\"event\":...}")
    return m.group(1).decode(), m.group(2)


def public_key(d):
    return pem_public_key(open(os.path.join(d, "audit.pub")).read())


def pem_public_key(pem):
    der = base64.b64decode("".join(l for l in pem.splitlines() if not l.startswith("-----")))
    need(len(der) == 44 and der[:12] == bytes.fromhex("302a300506032b6570032100"), "audit.pub is not an Ed25519 public key")
    return der[12:]


def check_digest(pub, line, hashes, what, registry=None):
    dg = json.loads(line)
    msg = "openkms audit digest v1\n%d\n%s\n%s\n" % (dg["sequence"], dg["hash"], dg["time"])
    if registry is not None:  # a chain in PostgreSQL names the chain registry's head
        msg = "openkms audit digest v2\n%d\n%s\n%s\n%d\n%s\n" % (dg["sequence"], dg["hash"], dg["time"], dg["chains"], dg["chainsHash"])
        need(registry.get(dg["chains"]) == dg["chainsHash"], "%s names registry entry %d, which the registry does not hold" % (what, dg["chains"]))
    need(ed25519_verify(pub, msg.encode(), base64.b64decode(dg["signature"])), "%s: signature does not verify" % what)
    need(hashes.get(dg["sequence"]) == dg["hash"], "%s names record %d, which the trail does not hold with that hash" % (what, dg["sequence"]))


def check_trail(d):
    prev, hashes, n = "0" * 64, {}, 0
    for name in segments(d):
        for i, line in enumerate(segment_lines(d, name), 1):
            where = "%s, line %d" % (name, i)
            claimed, event = split_record(line)
            e = json.loads(event)
            n += 1
            need(e["sequence"] == n, "%s: sequence %s where %d was expected" % (where, e["sequence"], n))
            need(e["previousHash"] == prev, "%s: previousHash is not the hash of the record before" % where)
            need(hashlib.sha256(prev.encode() + event).hexdigest() == claimed, "%s: hash does not match the record" % where)
            prev = hashes[n] = claimed
    pub = public_key(d)
    digests = open(os.path.join(d, "audit-digests.log"), "rb").read().splitlines()
    need(digests, "no digest")
    for i, line in enumerate(digests, 1):
        check_digest(pub, line, hashes, "digest %d" % i)
    check_digest(pub, open(os.path.join(d, "audit-head.json"), "rb").read().strip(), hashes, "audit-head.json")
    return n, len(digests)


def cmd_audit(d):
    try:
        n, digests = check_trail(d)
    except Mismatch as e:
        print("BROKEN", e)
        sys.exit(1)
    return "trail of %d records in %d segments; %d digests verify" % (n, len(segments(d)), digests)


def check_postgres_trail(rows):
    """Checks the PostgreSQL audit tables' rows as docs/audit.md, "In
    PostgreSQL", describes them: each chain's records and signed digests,
    and the chain registry. Returns the numbers of chains and records."""
    registry, prev = {}, "0" * 64
    for i, row in enumerate(sorted(rows["kms_audit_registry"], key=lambda r: r["seq"]), 1):
        m = re.match(r'^\{"hash":"([0-9a-f]{64})","entry":(.*)\}$', row["line"], re.S)
        need(m is not None, "registry entry %d is not {\"hash\":...,\"entry\":...}" % i)
        entry = json.loads(m.group(2))
        need(row["seq"] == i and entry["sequence"] == i, "registry entry %d where %d was expected" % (row["seq"], i))
        need(entry["chain"] == row["chain"] and entry["previousHash"] == prev, "registry entry %d's chain or previousHash" % i)
        need(hashlib.sha256(prev.encode() + m.group(2).encode()).hexdigest() == m.group(1), "registry entry %d's hash" % i)
        prev = registry[i] = m.group(1)
    keys = {r["chain"]: pem_public_key(r["public_key"]) for r in rows["kms_audit_keys"]}
    chains = {r["chain"] for r in rows["kms_audit_chains"]}
    need(chains == {r["chain"] for r in rows["kms_audit_registry"]}, "chains and registry name other chains")
    total = 0
    for chain in sorted(chains):
        prev, hashes = "0" * 64, {}
        records = sorted((r for r in rows["kms_audit_records"] if r["chain"] == chain), key=lambda r: r["seq"])
        for n, row in enumerate(records, 1):
            claimed, event = split_record(row["line"].encode())
            e = json.loads(event)
            need(row["seq"] == n and e["sequence"] == n, "chain %s: record %d where %d was expected" % (chain, row["seq"], n))
            need(e["previousHash"] == prev, "chain %s, record %d: previousHash" % (chain, n))
            need(hashlib.sha256(prev.encode() + event).hexdigest() == claimed, "chain %s, record %d: hash" % (chain, n))
            prev = hashes[n] = claimed
        digests = [r for r in rows["kms_audit_digests"] if r["chain"] == chain]
        need(digests or not records, "chain %s: records and no digest" % chain)
        for row in digests:
            need(json.loads(row["line"])["sequence"] == row["seq"], "chain %s: a digest row's seq" % chain)
            check_digest(keys[chain], row["line"].encode(), hashes, "chain %s, digest of record %d" % (chain, row["seq"]), registry)
        total += len(records)
    return len(chains), total


def cmd_tamper(d, how):
    """Edits, deletes or swaps records in the middle of a trail, in place."""
    names = segments(d)
    name = names[len(names) // 2]
    lines = segment_lines(d, name)
    need(len(lines) >= 2, "%s holds fewer than 2 records" % name)
    if how == "edit":
        claimed, event = split_record(lines[0])
        edited = event.replace(b'"awsRegion":"', b'"awsRegion":"x', 1)
        need(edited != event, "no awsRegion to edit")
        lines[0] = b'{"hash":"' + claimed.encode() + b'","event":' + edited + b"}"
    elif how == "delete":
        del lines[0]
    elif how == "reorder":
        lines[0], lines[1] = lines[1], lines[0]
    else:
        raise Mismatch("tamper how? %r" % how)
    open(os.path.join(d, name), "wb").write(b"".join(l + b"\n" for l in lines))
    return "%s: %s" % (how, name)


# --- docs/backup.md ---------------------------------------------------------

AUDIT_FILE = re.compile(r"^audit[A-Za-z0-9._-]*$")
AUDIT_TABLES = ["kms_audit_chains", "kms_audit_keys", "kms_audit_records", "kms_audit_digests", "kms_audit_registry"]


def root_key(path):
    s = open(path).read().strip()
    return bytes.fromhex(s) if len(s) == 64 else base64.b64decode(s, validate=True)


def cmd_backup(path, root_key_file, data_dir):
    b = open(path, "rb").read()
    r = Reader(b)
    need(r.take(15) == b"openkms-backup\n", "magic")
    version = r.u8()
    need(version == 3, "format version %d, want 3" % version)
    struct.unpack(">q", r.take(8))  # when the snapshot was taken
    entries, last_kind, last_key = [], 1, None
    while True:
        kind = r.u8()
        if kind == 0xFF:
            break
        need(kind in (1, 2, 3), "entry kind %d" % kind)
        need(kind >= last_kind, "kind %d after kind %d" % (kind, last_kind))
        last_kind = kind
        nl = r.u32()
        need(nl <= 4096, "a name of %d bytes" % nl)
        name = r.take(nl)
        vl = r.u64()
        need(kind == 2 or vl <= 16 << 20, "a value of %d bytes" % vl)
        value = r.take(vl)
        if kind == 1:
            need(name and (last_key is None or name > last_key), "records out of order at %r" % name)
            last_key = name
        elif kind == 2:
            need(AUDIT_FILE.match(name.decode()) and len(name) <= 255, "audit file name %r" % name)
        else:
            need(name.decode() in AUDIT_TABLES, "audit row of table %r" % name)
            json.loads(value)
        entries.append((kind, name.decode(), value))
    need(r.u64() == len(entries), "entry count")
    checksum = hashlib.sha256(b[:r.o]).digest()
    need(r.take(32) == checksum, "checksum")
    backup_key = hmac.new(root_key(root_key_file), b"openkms backup authentication key v1", hashlib.sha256).digest()
    tag = hmac.new(backup_key, b"openkms backup v2\n" + checksum, hashlib.sha256).digest()
    need(hmac.compare_digest(r.take(32), tag), "authentication tag")
    need(r.o == len(b), "bytes after the tag")
    records = sum(1 for kind, _, _ in entries if kind == 1)
    if data_dir == "-":  # a PostgreSQL store's: records and audit rows
        need(all(kind != 2 for kind, _, _ in entries), "audit files in a PostgreSQL store's backup")
        rows = {t: [json.loads(v) for kind, name, v in entries if kind == 3 and name == t] for t in AUDIT_TABLES}
        need(rows["kms_audit_records"], "no audit rows")
        chains, n = check_postgres_trail(rows)
        return "backup of %d records and %d audit chains of %d records, tag good" % (records, chains, n)
    files = {name: value for kind, name, value in entries if kind == 2}
    on_disk = {n for n in os.listdir(data_dir) if n.startswith("audit")}
    need(set(files) == on_disk, "audit files %s, the data directory has %s" % (sorted(files), sorted(on_disk)))
    for name, value in files.items():
        need(value == open(os.path.join(data_dir, name), "rb").read(), "%s differs from the data directory's" % name)
    seg_order = [name for kind, name, _ in entries if kind == 2 and segment_number(name)]
    need(seg_order == segments(data_dir) and [n for _, n, _ in entries[-len(seg_order):]] == seg_order,
         "segments not last, in their order: %s" % seg_order)
    return "backup of %d records and %d audit files, tag good" % (records, len(files))


COMMANDS = {"blob": cmd_blob, "esdk": cmd_esdk, "audit": cmd_audit, "tamper": cmd_tamper, "backup": cmd_backup}

if __name__ == "__main__":
    try:
        print("ok", COMMANDS[sys.argv[1]](*sys.argv[2:]))
    except Mismatch as e:
        print("MISMATCH", e)
        sys.exit(1)

"""boto3 against a running kms server, as a boto3 user would drive it.

Run by cmd/kms's TestBoto3 with the server's endpoint and credentials in the
environment (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_DEFAULT_REGION). Only the standard library and boto3 are used.

Error codes, messages and statuses are those AWS KMS gives (the
"Validation-error message format" and "Error codes and HTTP status"
sections of the AWS KMS behaviour reference). The ServerValidation cases
switch botocore's own parameter validation off, so that what AWS's server
refuses reaches the server.
"""

import base64
import hashlib
import json
import os
import sys
import unittest
import uuid

import boto3
import botocore.config
import botocore.exceptions

ENDPOINT = os.environ["AWS_ENDPOINT_URL"]
REGION = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")


def client(**config):
    # No retries unless a case asks for them: a refused call is seen once.
    config.setdefault("retries", {"mode": "standard", "total_max_attempts": 1})
    return boto3.client("kms", endpoint_url=ENDPOINT, region_name=REGION,
                        config=botocore.config.Config(**config))


def unchecked():
    """A client that sends what botocore would refuse before sending."""
    return client(parameter_validation=False)


def every(kms, operation, key, **kwargs):
    """Every item of a listing, through boto3's paginator, two to a page,
    and the number of pages it took."""
    items, pages = [], 0
    for page in kms.get_paginator(operation).paginate(PaginationConfig={"PageSize": 2}, **kwargs):
        pages += 1
        items.extend(page[key])
    return items, pages


class Case(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kms = client()

    def new_key(self, **kwargs):
        return self.kms.create_key(**kwargs)["KeyMetadata"]

    def assertError(self, ctx, code, message=None, status=400):
        """ctx is an assertRaises context: its error has AWS's code, message
        (when given) and HTTP status, and was sent once."""
        resp = ctx.exception.response
        self.assertEqual(resp["Error"]["Code"], code, resp)
        if message is not None:
            self.assertEqual(resp["Error"]["Message"], message, resp)
        self.assertEqual(resp["ResponseMetadata"]["HTTPStatusCode"], status, resp)
        self.assertEqual(resp["ResponseMetadata"].get("RetryAttempts", 0), 0, resp)
        self.assertTrue(resp["ResponseMetadata"].get("RequestId"), resp)


class MainPaths(Case):
    def test_symmetric_key_encrypt_decrypt_with_context(self):
        meta = self.new_key(Description="boto3 symmetric")
        self.assertEqual(meta["KeySpec"], "SYMMETRIC_DEFAULT")
        self.assertEqual(meta["KeyUsage"], "ENCRYPT_DECRYPT")
        self.assertEqual(meta["KeyState"], "Enabled")
        self.assertTrue(meta["Enabled"])
        self.assertEqual(meta["Description"], "boto3 symmetric")
        self.assertEqual(meta["EncryptionAlgorithms"], ["SYMMETRIC_DEFAULT"])
        self.assertTrue(meta["Arn"].endswith(":key/" + meta["KeyId"]))
        self.assertEqual(self.kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]["Arn"], meta["Arn"])

        context = {"purpose": "boto3", "tenant": "t-1"}
        enc = self.kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"secret bytes", EncryptionContext=context)
        self.assertEqual(enc["KeyId"], meta["Arn"])
        self.assertEqual(enc["EncryptionAlgorithm"], "SYMMETRIC_DEFAULT")
        self.assertIsInstance(enc["CiphertextBlob"], bytes)
        dec = self.kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext=dict(reversed(context.items())))
        self.assertEqual(dec["Plaintext"], b"secret bytes")
        self.assertEqual(dec["KeyId"], meta["Arn"])
        self.assertEqual(dec["EncryptionAlgorithm"], "SYMMETRIC_DEFAULT")

    def test_generate_data_key(self):
        meta = self.new_key()
        dk = self.kms.generate_data_key(KeyId=meta["Arn"], KeySpec="AES_256", EncryptionContext={"k": "v"})
        self.assertEqual(len(dk["Plaintext"]), 32)
        self.assertEqual(dk["KeyId"], meta["Arn"])
        self.assertEqual(self.kms.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext={"k": "v"})["Plaintext"], dk["Plaintext"])
        self.assertEqual(len(self.kms.generate_data_key(KeyId=meta["KeyId"], NumberOfBytes=7)["Plaintext"]), 7)
        self.assertEqual(len(self.kms.generate_data_key(KeyId=meta["KeyId"], KeySpec="AES_128")["Plaintext"]), 16)
        wp = self.kms.generate_data_key_without_plaintext(KeyId=meta["KeyId"], KeySpec="AES_256")
        self.assertNotIn("Plaintext", wp)
        self.assertEqual(len(self.kms.decrypt(CiphertextBlob=wp["CiphertextBlob"])["Plaintext"]), 32)
        self.assertEqual(len(self.kms.generate_random(NumberOfBytes=1024)["Plaintext"]), 1024)

    def test_re_encrypt(self):
        src, dst = self.new_key(), self.new_key()
        blob = self.kms.encrypt(KeyId=src["KeyId"], Plaintext=b"move me", EncryptionContext={"a": "1"})["CiphertextBlob"]
        re = self.kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"a": "1"},
                                 DestinationKeyId=dst["KeyId"], DestinationEncryptionContext={"b": "2"})
        self.assertEqual(re["SourceKeyId"], src["Arn"])
        self.assertEqual(re["KeyId"], dst["Arn"])
        self.assertEqual(re["SourceEncryptionAlgorithm"], "SYMMETRIC_DEFAULT")
        self.assertEqual(re["DestinationEncryptionAlgorithm"], "SYMMETRIC_DEFAULT")
        dec = self.kms.decrypt(CiphertextBlob=re["CiphertextBlob"], EncryptionContext={"b": "2"})
        self.assertEqual((dec["Plaintext"], dec["KeyId"]), (b"move me", dst["Arn"]))

    def test_sign_verify_ecc_nist_p256(self):
        meta = self.new_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
        self.assertEqual(meta["SigningAlgorithms"], ["ECDSA_SHA_256"])
        self.assertNotIn("EncryptionAlgorithms", meta)
        msg = b"signed by boto3"
        sig = self.kms.sign(KeyId=meta["KeyId"], Message=msg, MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256")
        self.assertEqual((sig["KeyId"], sig["SigningAlgorithm"]), (meta["Arn"], "ECDSA_SHA_256"))
        self.assertEqual(sig["Signature"][0], 0x30, "an ECDSA signature is DER")
        ok = self.kms.verify(KeyId=meta["KeyId"], Message=msg, MessageType="RAW",
                             Signature=sig["Signature"], SigningAlgorithm="ECDSA_SHA_256")
        self.assertTrue(ok["SignatureValid"])
        # A message and its digest are the same message.
        ok = self.kms.verify(KeyId=meta["KeyId"], Message=hashlib.sha256(msg).digest(), MessageType="DIGEST",
                             Signature=sig["Signature"], SigningAlgorithm="ECDSA_SHA_256")
        self.assertTrue(ok["SignatureValid"])
        pub = self.kms.get_public_key(KeyId=meta["KeyId"])
        self.assertEqual((pub["KeySpec"], pub["KeyUsage"]), ("ECC_NIST_P256", "SIGN_VERIFY"))
        self.assertEqual(pub["PublicKey"][0], 0x30, "a public key is DER SubjectPublicKeyInfo")

    def test_generate_verify_mac(self):
        meta = self.new_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
        self.assertEqual(meta["MacAlgorithms"], ["HMAC_SHA_256"])
        mac = self.kms.generate_mac(KeyId=meta["KeyId"], Message=b"mac me", MacAlgorithm="HMAC_SHA_256")
        self.assertEqual((mac["KeyId"], mac["MacAlgorithm"], len(mac["Mac"])), (meta["Arn"], "HMAC_SHA_256", 32))
        ok = self.kms.verify_mac(KeyId=meta["KeyId"], Message=b"mac me", MacAlgorithm="HMAC_SHA_256", Mac=mac["Mac"])
        self.assertTrue(ok["MacValid"])
        with self.assertRaises(self.kms.exceptions.KMSInvalidMacException) as ctx:
            self.kms.verify_mac(KeyId=meta["KeyId"], Message=b"mac me!", MacAlgorithm="HMAC_SHA_256", Mac=mac["Mac"])
        self.assertError(ctx, "KMSInvalidMacException", "")

    def test_aliases(self):
        first, second = self.new_key(), self.new_key()
        name = "alias/boto3-" + uuid.uuid4().hex[:8]
        self.kms.create_alias(AliasName=name, TargetKeyId=first["KeyId"])
        self.assertEqual(self.kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"], first["KeyId"])
        alias_arn = first["Arn"].rsplit(":", 1)[0] + ":" + name
        self.assertEqual(self.kms.describe_key(KeyId=alias_arn)["KeyMetadata"]["KeyId"], first["KeyId"])
        blob = self.kms.encrypt(KeyId=name, Plaintext=b"via alias")["CiphertextBlob"]
        self.assertEqual(self.kms.decrypt(CiphertextBlob=blob)["KeyId"], first["Arn"])
        listed = self.kms.list_aliases(KeyId=first["KeyId"])["Aliases"]
        self.assertEqual([(a["AliasName"], a["AliasArn"], a["TargetKeyId"]) for a in listed], [(name, alias_arn, first["KeyId"])])
        self.kms.update_alias(AliasName=name, TargetKeyId=second["KeyId"])
        self.assertEqual(self.kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"], second["KeyId"])
        self.kms.delete_alias(AliasName=name)
        with self.assertRaises(self.kms.exceptions.NotFoundException) as ctx:
            self.kms.describe_key(KeyId=name)
        self.assertError(ctx, "NotFoundException")

    def test_tags(self):
        meta = self.new_key(Tags=[{"TagKey": "team", "TagValue": "a"}])
        self.kms.tag_resource(KeyId=meta["KeyId"], Tags=[{"TagKey": "team", "TagValue": "b"}, {"TagKey": "env", "TagValue": ""}])
        tags = self.kms.list_resource_tags(KeyId=meta["KeyId"])
        self.assertFalse(tags["Truncated"])
        self.assertEqual({t["TagKey"]: t["TagValue"] for t in tags["Tags"]}, {"team": "b", "env": ""})
        self.kms.untag_resource(KeyId=meta["KeyId"], TagKeys=["team", "absent"])
        self.assertEqual(self.kms.list_resource_tags(KeyId=meta["KeyId"])["Tags"], [{"TagKey": "env", "TagValue": ""}])

    def test_grants(self):
        meta = self.new_key()
        account = meta["Arn"].split(":")[4]
        grantee = "arn:aws:iam::%s:root" % account
        g = self.kms.create_grant(KeyId=meta["KeyId"], GranteePrincipal=grantee, RetiringPrincipal=grantee,
                                  Operations=["Encrypt", "Decrypt"], Name="boto3-grant",
                                  Constraints={"EncryptionContextSubset": {"app": "boto3"}})
        self.assertTrue(g["GrantId"] and g["GrantToken"])
        # A grant token is accepted where the model takes GrantTokens.
        blob = self.kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x", EncryptionContext={"app": "boto3"},
                                GrantTokens=[g["GrantToken"]])["CiphertextBlob"]
        self.assertEqual(self.kms.decrypt(CiphertextBlob=blob, EncryptionContext={"app": "boto3"})["Plaintext"], b"x")
        grants = self.kms.list_grants(KeyId=meta["KeyId"])["Grants"]
        self.assertEqual(len(grants), 1)
        self.assertEqual(grants[0]["GrantId"], g["GrantId"])
        self.assertEqual(grants[0]["KeyId"], meta["Arn"])
        self.assertEqual(grants[0]["Name"], "boto3-grant")
        self.assertEqual(sorted(grants[0]["Operations"]), ["Decrypt", "Encrypt"])
        self.assertEqual(grants[0]["Constraints"], {"EncryptionContextSubset": {"app": "boto3"}})
        retirable = self.kms.list_retirable_grants(RetiringPrincipal=grantee)["Grants"]
        self.assertIn(g["GrantId"], [r["GrantId"] for r in retirable])
        self.kms.retire_grant(GrantToken=g["GrantToken"])
        self.assertEqual(self.kms.list_grants(KeyId=meta["KeyId"])["Grants"], [])
        g2 = self.kms.create_grant(KeyId=meta["KeyId"], GranteePrincipal=grantee, Operations=["DescribeKey"])
        self.kms.revoke_grant(KeyId=meta["KeyId"], GrantId=g2["GrantId"])
        self.assertEqual(self.kms.list_grants(KeyId=meta["KeyId"])["Grants"], [])

    def test_key_policy(self):
        meta = self.new_key()
        self.assertEqual(self.kms.list_key_policies(KeyId=meta["KeyId"])["PolicyNames"], ["default"])
        policy = json.loads(self.kms.get_key_policy(KeyId=meta["KeyId"], PolicyName="default")["Policy"])
        self.assertEqual(policy["Version"], "2012-10-17")
        account = meta["Arn"].split(":")[4]
        policy["Statement"].append({
            "Sid": "DenyBoto3Sign", "Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::%s:root" % account},
            "Action": "kms:Sign", "Resource": "*",
        })
        self.kms.put_key_policy(KeyId=meta["KeyId"], PolicyName="default", Policy=json.dumps(policy))
        got = self.kms.get_key_policy(KeyId=meta["KeyId"])
        self.assertEqual(json.loads(got["Policy"]), policy)
        self.assertEqual(got["PolicyName"], "default")

    def test_rotation(self):
        meta = self.new_key()
        self.assertFalse(self.kms.get_key_rotation_status(KeyId=meta["KeyId"])["KeyRotationEnabled"])
        old = self.kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"before rotation")["CiphertextBlob"]
        self.kms.enable_key_rotation(KeyId=meta["KeyId"], RotationPeriodInDays=180)
        status = self.kms.get_key_rotation_status(KeyId=meta["KeyId"])
        self.assertTrue(status["KeyRotationEnabled"])
        self.assertEqual(status["RotationPeriodInDays"], 180)
        self.assertIn("NextRotationDate", status)
        self.assertEqual(self.kms.rotate_key_on_demand(KeyId=meta["KeyId"])["KeyId"], meta["Arn"])
        rotations, _ = every(self.kms, "list_key_rotations", "Rotations", KeyId=meta["KeyId"])
        self.assertEqual([r["RotationType"] for r in rotations], ["ON_DEMAND"])
        self.assertEqual(self.kms.decrypt(CiphertextBlob=old)["Plaintext"], b"before rotation")
        self.kms.disable_key_rotation(KeyId=meta["KeyId"])
        self.assertFalse(self.kms.get_key_rotation_status(KeyId=meta["KeyId"])["KeyRotationEnabled"])

    def test_schedule_and_cancel_deletion(self):
        meta = self.new_key()
        sched = self.kms.schedule_key_deletion(KeyId=meta["KeyId"], PendingWindowInDays=7)
        self.assertEqual((sched["KeyId"], sched["KeyState"], sched["PendingWindowInDays"]), (meta["Arn"], "PendingDeletion", 7))
        self.assertIn("DeletionDate", sched)
        desc = self.kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]
        self.assertEqual((desc["KeyState"], desc["Enabled"]), ("PendingDeletion", False))
        with self.assertRaises(self.kms.exceptions.KMSInvalidStateException) as ctx:
            self.kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x")
        self.assertError(ctx, "KMSInvalidStateException", meta["Arn"] + " is pending deletion.")
        self.assertEqual(self.kms.cancel_key_deletion(KeyId=meta["KeyId"])["KeyId"], meta["Arn"])
        desc = self.kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]
        self.assertEqual((desc["KeyState"], desc["Enabled"]), ("Disabled", False))
        self.assertNotIn("DeletionDate", desc)
        self.kms.enable_key(KeyId=meta["KeyId"])
        self.kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x")


class Paginators(Case):
    """boto3's paginators walk every page, each item once."""

    def test_list_keys(self):
        made = {self.new_key()["KeyId"] for _ in range(5)}
        keys, pages = every(self.kms, "list_keys", "Keys")
        ids = [k["KeyId"] for k in keys]
        self.assertEqual(len(ids), len(set(ids)), "a key listed twice")
        self.assertLessEqual(made, set(ids))
        self.assertEqual(pages, (len(ids) + 1) // 2)
        self.assertGreater(pages, 2)
        self.assertEqual(set(ids), {k["KeyId"] for k in self.kms.list_keys(Limit=1000)["Keys"]})
        # Stopped after MaxItems and resumed from its NextToken, the
        # paginator gives the rest, none again.
        paginator = self.kms.get_paginator("list_keys")
        first = paginator.paginate(PaginationConfig={"MaxItems": 3, "PageSize": 2}).build_full_result()
        self.assertEqual(len(first["Keys"]), 3)
        rest = paginator.paginate(PaginationConfig={"StartingToken": first["NextToken"], "PageSize": 2}).build_full_result()
        self.assertEqual([k["KeyId"] for k in first["Keys"] + rest["Keys"]], ids)

    def test_list_aliases(self):
        meta = self.new_key()
        names = {"alias/boto3-page-%d-%s" % (i, uuid.uuid4().hex[:6]) for i in range(5)}
        for n in names:
            self.kms.create_alias(AliasName=n, TargetKeyId=meta["KeyId"])
        aliases, pages = every(self.kms, "list_aliases", "Aliases", KeyId=meta["KeyId"])
        self.assertEqual(sorted(a["AliasName"] for a in aliases), sorted(names))
        self.assertEqual(pages, 3)
        everything, _ = every(self.kms, "list_aliases", "Aliases")
        listed = [a["AliasName"] for a in everything]
        self.assertEqual(len(listed), len(set(listed)), "an alias listed twice")
        self.assertLessEqual(names, set(listed))

    def test_list_grants(self):
        meta = self.new_key()
        grantee = "arn:aws:iam::%s:root" % meta["Arn"].split(":")[4]
        made = {self.kms.create_grant(KeyId=meta["KeyId"], GranteePrincipal=grantee, Operations=["Encrypt"],
                                      Name="page-%d" % i)["GrantId"] for i in range(5)}
        grants, pages = every(self.kms, "list_grants", "Grants", KeyId=meta["KeyId"])
        ids = [g["GrantId"] for g in grants]
        self.assertEqual(sorted(ids), sorted(made))
        self.assertEqual(pages, 3)

    def test_list_retirable_grants_and_key_rotations(self):
        meta = self.new_key()
        # A grant's principals must exist, as on AWS: a user of its own.
        iam = boto3.client("iam", endpoint_url=ENDPOINT, region_name=REGION)
        principal = iam.create_user(UserName="boto3-retirer-%s" % uuid.uuid4().hex[:8])["User"]["Arn"]
        made = {self.kms.create_grant(KeyId=meta["KeyId"], GranteePrincipal=principal, RetiringPrincipal=principal,
                                      Operations=["Decrypt"])["GrantId"] for _ in range(3)}
        grants, pages = every(self.kms, "list_retirable_grants", "Grants", RetiringPrincipal=principal)
        self.assertEqual(sorted(g["GrantId"] for g in grants), sorted(made))
        self.assertEqual(pages, 2)
        for _ in range(3):
            self.kms.rotate_key_on_demand(KeyId=meta["KeyId"])
        rotations, pages = every(self.kms, "list_key_rotations", "Rotations", KeyId=meta["KeyId"])
        self.assertEqual(len({r["KeyMaterialId"] for r in rotations}), 3)
        self.assertEqual(pages, 2)

    def test_list_resource_tags(self):
        tags = [{"TagKey": "k%d" % i, "TagValue": "v%d" % i} for i in range(5)]
        meta = self.new_key(Tags=tags)
        listed, pages = every(self.kms, "list_resource_tags", "Tags", KeyId=meta["KeyId"])
        self.assertEqual(sorted(listed, key=lambda t: t["TagKey"]), tags)
        self.assertEqual(pages, 3)


class MLKEM(Case):
    """ML-KEM keys (October 2026). This botocore's model predates them: the
    test runs with AWS_DATA_PATH naming one with the ML-KEM additions
    (cmd/kms's TestBoto3 writes it), as a newer botocore would have."""

    def test_encapsulate_decapsulate(self):
        self.assertIn("Encapsulate", self.kms.meta.service_model.operation_names,
                      "AWS_DATA_PATH does not name a KMS model with the ML-KEM operations")
        meta = self.new_key(KeySpec="ML_KEM_1024", KeyUsage="ENCAPSULATE_DECAPSULATE")
        self.assertEqual(meta["EncapsulationAlgorithms"], ["ML_KEM"])
        self.assertEqual(self.kms.get_public_key(KeyId=meta["KeyId"])["EncapsulationAlgorithms"], ["ML_KEM"])
        enc = self.kms.encapsulate(KeyId=meta["KeyId"], EncapsulationAlgorithm="ML_KEM")
        self.assertEqual(enc["KeyId"], meta["Arn"])
        self.assertEqual(len(enc["SharedSecret"]), 32)
        self.assertEqual(len(enc["SharedSecretCiphertextBlob"]), 1568)
        dec = self.kms.decapsulate(KeyId=meta["Arn"], SharedSecretCiphertextBlob=enc["SharedSecretCiphertextBlob"],
                                   EncapsulationAlgorithm="ML_KEM")
        self.assertEqual(dec["SharedSecret"], enc["SharedSecret"])
        with self.assertRaises(self.kms.exceptions.InvalidCiphertextException) as ctx:
            self.kms.decapsulate(KeyId=meta["KeyId"], SharedSecretCiphertextBlob=enc["SharedSecretCiphertextBlob"][:-1],
                                 EncapsulationAlgorithm="ML_KEM")
        self.assertError(ctx, "InvalidCiphertextException")
        sym = self.new_key()
        with self.assertRaises(self.kms.exceptions.InvalidKeyUsageException) as ctx:
            self.kms.encapsulate(KeyId=sym["KeyId"], EncapsulationAlgorithm="ML_KEM")
        self.assertError(ctx, "InvalidKeyUsageException", sym["Arn"] + " key usage is ENCRYPT_DECRYPT which is not valid for Encapsulate.")
        pair = self.kms.generate_data_key_pair(KeyId=sym["KeyId"], KeyPairSpec="ML_KEM_512")
        self.assertEqual(len(pair["PrivateKeyPlaintext"]), 86)
        self.assertEqual(self.kms.decrypt(CiphertextBlob=pair["PrivateKeyCiphertextBlob"])["Plaintext"], pair["PrivateKeyPlaintext"])


class Errors(Case):
    """The modelled exceptions, as boto3 users catch them."""

    def test_not_found(self):
        meta = self.new_key()
        missing = str(uuid.uuid4())
        with self.assertRaises(self.kms.exceptions.NotFoundException) as ctx:
            self.kms.describe_key(KeyId=missing)
        self.assertError(ctx, "NotFoundException", "Key '%s' does not exist" % meta["Arn"].replace(meta["KeyId"], missing))
        with self.assertRaises(self.kms.exceptions.NotFoundException) as ctx:
            self.kms.encrypt(KeyId="fake-key-id", Plaintext=b"x")
        self.assertError(ctx, "NotFoundException", "Invalid keyId 'fake-key-id'")
        # Caught as the ClientError every boto3 exception is, too.
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.kms.describe_key(KeyId=missing)
        self.assertError(ctx, "NotFoundException")

    def test_disabled(self):
        meta = self.new_key()
        self.kms.disable_key(KeyId=meta["KeyId"])
        with self.assertRaises(self.kms.exceptions.DisabledException) as ctx:
            self.kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x")
        self.assertError(ctx, "DisabledException", meta["Arn"] + " is disabled.")

    def test_invalid_ciphertext(self):
        meta = self.new_key()
        blob = self.kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x", EncryptionContext={"a": "1"})["CiphertextBlob"]
        for context in ({"a": "2"}, {"A": "1"}, {}):
            with self.assertRaises(self.kms.exceptions.InvalidCiphertextException) as ctx:
                self.kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)
            self.assertError(ctx, "InvalidCiphertextException", "")
        with self.assertRaises(self.kms.exceptions.InvalidCiphertextException) as ctx:
            self.kms.decrypt(CiphertextBlob=blob + b"bad_data", EncryptionContext={"a": "1"})
        self.assertError(ctx, "InvalidCiphertextException", "")

    def test_already_exists(self):
        meta = self.new_key()
        name = "alias/boto3-dup-" + uuid.uuid4().hex[:8]
        self.kms.create_alias(AliasName=name, TargetKeyId=meta["KeyId"])
        with self.assertRaises(self.kms.exceptions.AlreadyExistsException) as ctx:
            self.kms.create_alias(AliasName=name, TargetKeyId=self.new_key()["KeyId"])
        alias_arn = meta["Arn"].rsplit(":", 1)[0] + ":" + name
        self.assertError(ctx, "AlreadyExistsException", "An alias with the name %s already exists" % alias_arn)
        self.assertEqual(self.kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"], meta["KeyId"])

    def test_invalid_signature(self):
        meta = self.new_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
        sig = self.kms.sign(KeyId=meta["KeyId"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
        with self.assertRaises(self.kms.exceptions.KMSInvalidSignatureException) as ctx:
            self.kms.verify(KeyId=meta["KeyId"], Message=b"n", Signature=sig, SigningAlgorithm="ECDSA_SHA_256")
        self.assertError(ctx, "KMSInvalidSignatureException", "")

    def test_invalid_key_usage(self):
        meta = self.new_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
        with self.assertRaises(self.kms.exceptions.InvalidKeyUsageException) as ctx:
            self.kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x")
        self.assertError(ctx, "InvalidKeyUsageException", meta["Arn"] + " key usage is SIGN_VERIFY which is not valid for Encrypt.")

    def test_more_modelled_errors(self):
        meta, other = self.new_key(), self.new_key()
        region_account = meta["Arn"].rsplit(":", 1)[0]
        with self.assertRaises(self.kms.exceptions.NotFoundException) as ctx:
            self.kms.describe_key(KeyId="alias/boto3-none")
        self.assertError(ctx, "NotFoundException", "Alias %s:alias/boto3-none is not found." % region_account)
        blob = self.kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x")["CiphertextBlob"]
        with self.assertRaises(self.kms.exceptions.IncorrectKeyException) as ctx:
            self.kms.decrypt(CiphertextBlob=blob, KeyId=other["KeyId"])
        self.assertError(ctx, "IncorrectKeyException", "The key ID in the request does not identify a CMK that can perform this operation.")
        with self.assertRaises(self.kms.exceptions.DryRunOperationException) as ctx:
            self.kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x", DryRun=True)
        self.assertError(ctx, "DryRunOperationException", "The request would have succeeded, but the DryRun option is set.")
        with self.assertRaises(self.kms.exceptions.TagException) as ctx:
            self.kms.tag_resource(KeyId=meta["KeyId"], Tags=[{"TagKey": "a", "TagValue": ""}, {"TagKey": "a", "TagValue": "b"}])
        self.assertError(ctx, "TagException", "Duplicate tag keys")
        with self.assertRaises(self.kms.exceptions.KMSInvalidStateException) as ctx:
            self.kms.cancel_key_deletion(KeyId=meta["KeyId"])
        self.assertError(ctx, "KMSInvalidStateException", meta["Arn"] + " is not pending deletion.")


def coral(violation):
    return "1 validation error detected: " + violation


class ServerValidation(Case):
    """What AWS's server refuses, sent past botocore's own checks."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.raw = unchecked()

    def refused(self, call, code="ValidationException", message=None, **kwargs):
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            call(**kwargs)
        self.assertError(ctx, code, message)
        return ctx.exception.response["Error"]["Message"]

    def key_ids(self):
        return {k["KeyId"] for k in every(self.kms, "list_keys", "Keys")[0]}

    def test_botocore_would_refuse_these_itself(self):
        with self.assertRaises(botocore.exceptions.ParamValidationError):
            self.kms.generate_random(NumberOfBytes=0)

    def test_number_of_bytes(self):
        key = self.new_key()["KeyId"]
        for call, kwargs in ((self.raw.generate_random, {}), (self.raw.generate_data_key, {"KeyId": key}),
                             (self.raw.generate_data_key_without_plaintext, {"KeyId": key})):
            self.refused(call, message=coral("Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1"),
                         NumberOfBytes=0, **kwargs)
            self.refused(call, message=coral("Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"),
                         NumberOfBytes=1025, **kwargs)
        self.refused(self.raw.generate_random, message="NumberOfBytes is required.")
        # Exactly one of KeySpec and NumberOfBytes.
        self.refused(self.raw.generate_data_key, KeyId=key, KeySpec="AES_256", NumberOfBytes=32)
        self.refused(self.raw.generate_data_key, KeyId=key)

    def test_grant_tokens(self):
        key = self.new_key()["KeyId"]
        self.refused(self.raw.encrypt, KeyId=key, Plaintext=b"x", GrantTokens=[""],
                     message=coral("Value '' at 'grantTokens.1.member' failed to satisfy constraint: Member must have length greater than or equal to 1"))
        long = "t" * 8193
        self.refused(self.raw.encrypt, KeyId=key, Plaintext=b"x", GrantTokens=[long],
                     message=coral("Value '%s' at 'grantTokens.1.member' failed to satisfy constraint: Member must have length less than or equal to 8192" % long))
        msg = self.refused(self.raw.encrypt, KeyId=key, Plaintext=b"x", GrantTokens=["t%d" % i for i in range(11)])
        self.assertTrue(msg.startswith("1 validation error detected: Value '"), msg)
        self.assertTrue(msg.endswith("' at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 10"), msg)

    def test_create_key_refusals_make_no_key(self):
        before = self.key_ids()
        long = "d" * 8193
        self.refused(self.raw.create_key, Description=long,
                     message=coral("Value '%s' at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192" % long))
        msg = self.refused(self.raw.create_key, KeySpec="HMAC_random", KeyUsage="GENERATE_VERIFY_MAC")
        prefix = coral("Value 'HMAC_random' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [")
        self.assertTrue(msg.startswith(prefix) and msg.endswith("]"), msg)
        # The server's specs are botocore's and those the API gained since
        # (ML-KEM, October 2026), unless this botocore knows them already.
        model = self.kms.meta.service_model.shape_for("KeySpec").enum
        newer = [s for s in ("ML_KEM_512", "ML_KEM_768", "ML_KEM_1024") if s not in model]
        self.assertEqual(sorted(msg[len(prefix):-1].split(", ")), sorted(model + newer))
        self.refused(self.raw.create_key, KeyUsage="RANDOM",
                     message=coral("Value 'RANDOM' at 'keyUsage' failed to satisfy constraint: Member must satisfy enum value set: [ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC, KEY_AGREEMENT, ENCAPSULATE_DECAPSULATE]"))
        self.refused(self.raw.create_key, KeySpec="HMAC_256",
                     message="You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.")
        self.refused(self.raw.create_key, KeySpec="RSA_2048", KeyUsage="KEY_AGREEMENT",
                     message="KeyUsage KEY_AGREEMENT is not compatible with KeySpec RSA_2048")
        self.refused(self.raw.create_key, Tags=[{"TagKey": "a" * 129, "TagValue": "v"}],
                     message=coral("Value '%s' at 'tags.1.member.tagKey' failed to satisfy constraint: Member must have length less than or equal to 128" % ("a" * 129)))
        self.refused(self.raw.create_key, Tags=[{"TagKey": "k"}],
                     message=coral("Value null at 'tags.1.member.tagValue' failed to satisfy constraint: Member must not be null"))
        self.assertEqual(self.key_ids(), before)

    def test_empty_strings_are_given_not_left_out(self):
        before = self.key_ids()
        # botocore does not check enumerations: an empty KeySpec reaches
        # the server from a client that validates.
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.kms.create_key(KeySpec="")
        prefix = coral("Value '' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [")
        self.assertError(ctx, "ValidationException")
        self.assertTrue(ctx.exception.response["Error"]["Message"].startswith(prefix), ctx.exception.response)
        self.assertEqual(self.key_ids(), before)
        meta = self.new_key()
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x", EncryptionAlgorithm="")
        self.assertError(ctx, "ValidationException", coral(
            "Value '' at 'encryptionAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [SYMMETRIC_DEFAULT, RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, SM2PKE]"))
        blob = self.kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x")["CiphertextBlob"]
        short = coral("Value '' at '%s' failed to satisfy constraint: Member must have length greater than or equal to 1")
        self.refused(self.raw.decrypt, CiphertextBlob=blob, KeyId="", message=short % "keyId")
        self.refused(self.raw.describe_key, KeyId="", message=short % "keyId")
        grantee = "arn:aws:iam::%s:root" % meta["Arn"].split(":")[4]
        # An empty name breaks the model's pattern as well as its length.
        self.refused(self.raw.create_grant, KeyId=meta["KeyId"], GranteePrincipal=grantee, Operations=["Encrypt"], Name="",
                     message="2 validation errors detected: "
                     "Value '' at 'name' failed to satisfy constraint: Member must have length greater than or equal to 1; "
                     "Value '' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$")
        self.refused(self.raw.list_grants, KeyId=meta["KeyId"], GrantId="", message=short % "grantId")
        self.assertEqual(self.kms.list_grants(KeyId=meta["KeyId"])["Grants"], [])

    def test_enum_of_an_algorithm(self):
        key = self.new_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyId"]
        self.refused(self.raw.generate_mac, KeyId=key, Message=b"m", MacAlgorithm="INVALID",
                     message=coral("Value 'INVALID' at 'macAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [HMAC_SHA_384, HMAC_SHA_256, HMAC_SHA_224, HMAC_SHA_512]"))

    def test_missing_required_member(self):
        self.refused(self.raw.encrypt, Plaintext=b"x",
                     message=coral("Value null at 'keyId' failed to satisfy constraint: Member must not be null"))
        self.refused(self.raw.describe_key,
                     message=coral("Value null at 'keyId' failed to satisfy constraint: Member must not be null"))

    def test_plaintext_length(self):
        key = self.new_key()["KeyId"]
        self.refused(self.raw.encrypt, KeyId=key, Plaintext=b"p" * 4097,
                     message=coral("Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096"))
        self.refused(self.raw.encrypt, KeyId=key, Plaintext=b"",
                     message=coral("Value at 'plaintext' failed to satisfy constraint: Member must have length greater than or equal to 1"))

    def test_alias_refusals_make_no_alias(self):
        key = self.new_key()["KeyId"]
        long = "alias/" + "a" * 251
        self.refused(self.raw.create_alias, AliasName=long, TargetKeyId=key,
                     message=coral("Value '%s' at 'aliasName' failed to satisfy constraint: Member must have length less than or equal to 256" % long))
        self.refused(self.raw.create_alias, AliasName="alias/my-alias!", TargetKeyId=key,
                     message=coral("Value 'alias/my-alias!' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"))
        self.refused(self.raw.create_alias, AliasName="no-prefix", TargetKeyId=key,
                     message='Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html')
        self.assertEqual(self.kms.list_aliases(KeyId=key)["Aliases"], [])

    def test_tag_refusals_change_no_tag(self):
        key = self.new_key(Tags=[{"TagKey": "keep", "TagValue": "1"}])["KeyId"]
        self.refused(self.raw.tag_resource, KeyId=key, Tags=[{"TagKey": "t", "TagValue": "v" * 257}],
                     message=coral("Value '%s' at 'tags.1.member.tagValue' failed to satisfy constraint: Member must have length less than or equal to 256" % ("v" * 257)))
        # TagValue may be empty, but is required: left out, it is not read as "".
        self.refused(self.raw.tag_resource, KeyId=key, Tags=[{"TagKey": "keep", "TagValue": "2"}, {"TagKey": "t"}],
                     message=coral("Value null at 'tags.2.member.tagValue' failed to satisfy constraint: Member must not be null"))
        self.refused(self.raw.tag_resource, KeyId=key, Tags=[{"TagKey": "aws:x", "TagValue": "v"}],
                     code="TagException", message="Tags beginning with aws: are reserved")
        self.assertEqual(self.kms.list_resource_tags(KeyId=key)["Tags"], [{"TagKey": "keep", "TagValue": "1"}])

    def test_paging_members(self):
        self.refused(self.raw.list_keys, Limit=0,
                     message=coral("Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"))
        self.refused(self.raw.list_keys, Limit=1001,
                     message=coral("Value '1001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 1000"))
        self.refused(self.raw.list_keys, Marker="",
                     message=coral("Value '' at 'marker' failed to satisfy constraint: Member must have length greater than or equal to 1"))
        # The model's Marker pattern is [\u0020-\u00FF]*: a tab or a
        # character past U+00FF never reaches the marker's decoding.
        for marker in ("a\tb", "caf\u0113"):
            self.refused(self.raw.list_keys, Marker=marker,
                         message=coral("Value '%s' at 'marker' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\u0020-\\u00FF]*" % marker))
            self.refused(self.raw.list_aliases, Marker=marker,
                         message=coral("Value '%s' at 'marker' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\u0020-\\u00FF]*" % marker))
        # A marker the pattern allows but that no listing gave.
        self.refused(self.raw.list_keys, Marker="not-a-marker", code="InvalidMarkerException")

    def test_rotation_and_deletion_windows(self):
        key = self.new_key()["KeyId"]
        self.refused(self.raw.enable_key_rotation, KeyId=key, RotationPeriodInDays=89,
                     message=coral("Value '89' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value greater than or equal to 90"))
        self.refused(self.raw.enable_key_rotation, KeyId=key, RotationPeriodInDays=2561,
                     message=coral("Value '2561' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value less than or equal to 2560"))
        self.assertFalse(self.kms.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"])
        self.refused(self.raw.schedule_key_deletion, KeyId=key, PendingWindowInDays=6,
                     message="PendingWindowInDays must be between 7 and 30")
        self.assertEqual(self.kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"], "Enabled")


class Retries(Case):
    """botocore's standard retry mode does not retry a 4xx."""

    def test_client_error_is_sent_once(self):
        kms = client(retries={"mode": "standard", "max_attempts": 5})
        sends = []
        kms.meta.events.register("before-send.kms.*", lambda request, **_: sends.append(request.url))
        for call in (lambda: kms.describe_key(KeyId=str(uuid.uuid4())),
                     lambda: kms.encrypt(KeyId="fake-key-id", Plaintext=b"x")):
            sends.clear()
            with self.assertRaises(botocore.exceptions.ClientError) as ctx:
                call()
            self.assertError(ctx, "NotFoundException")
            self.assertEqual(len(sends), 1, "sent %d times" % len(sends))
        sends.clear()
        raw = client(parameter_validation=False, retries={"mode": "standard", "max_attempts": 5})
        raw.meta.events.register("before-send.kms.*", lambda request, **_: sends.append(request.url))
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            raw.generate_random(NumberOfBytes=0)
        self.assertError(ctx, "ValidationException")
        self.assertEqual(len(sends), 1, "sent %d times" % len(sends))


if __name__ == "__main__":
    result = unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[1:], exit=False).result
    sys.exit(0 if result.wasSuccessful() else 1)

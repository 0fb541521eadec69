package main_test

import (
	"path/filepath"
	"testing"
	"time"
)

// TestAWSCLINewerAPI drives the newer KMS operations with the real aws
// command line: get-key-last-usage, the custom key store operations,
// and on-demand rotation of a key with imported material.
func TestAWSCLINewerAPI(t *testing.T) {
	t.Parallel()
	bin := requireAWS(t)
	ossl := requireOpenSSL(t)
	s := startDev(t, filepath.Join(t.TempDir(), "data"))
	a := newAWSCLI(t, bin, s)
	start := time.Now()
	defer func() { t.Logf("%d aws CLI runs in %v", a.runs, time.Since(start)) }()

	// get-key-last-usage: the Encrypt just made, with its request id.
	var created struct{ KeyMetadata cliKeyMetadata }
	a.json(&created, "create-key", "--description", "used key")
	k := created.KeyMetadata
	var usage struct {
		KeyId        string
		KeyLastUsage *struct{ Operation, CloudTrailEventId, KmsRequestId string }
	}
	a.json(&usage, "get-key-last-usage", "--key-id", k.KeyId)
	if usage.KeyId != k.Arn || usage.KeyLastUsage != nil {
		t.Errorf("get-key-last-usage of a new key: %+v", usage)
	}
	a.ok("encrypt", "--key-id", k.KeyId, "--plaintext", a.file("pt.txt", []byte("hello")))
	a.json(&usage, "get-key-last-usage", "--key-id", k.KeyId)
	if u := usage.KeyLastUsage; u == nil || u.Operation != "Encrypt" || u.CloudTrailEventId == "" || u.KmsRequestId == "" {
		t.Errorf("get-key-last-usage after encrypt: %+v", usage.KeyLastUsage)
	}

	// Custom key stores: none, and AWS's errors.
	var stores struct{ CustomKeyStores []any }
	a.json(&stores, "describe-custom-key-stores")
	if stores.CustomKeyStores == nil || len(stores.CustomKeyStores) != 0 {
		t.Errorf("describe-custom-key-stores: %+v", stores)
	}
	a.fails([]string{"CustomKeyStoreNotFoundException"}, "connect-custom-key-store", "--custom-key-store-id", "cks-1234567890abcdef0")
	a.fails([]string{"CloudHsmClusterNotFoundException"}, "create-custom-key-store", "--custom-key-store-name", "hsm",
		"--cloud-hsm-cluster-id", "cluster-2a23b4cdefg", "--key-store-password", "kmsPswd1", "--trust-anchor-certificate", "cert")

	// Imported material: import, import new material, rotate to it.
	created = struct{ KeyMetadata cliKeyMetadata }{}
	a.json(&created, "create-key", "--origin", "EXTERNAL")
	ext := created.KeyMetadata
	oaep := []string{"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256"}
	importFile := func(material, importType string) string {
		t.Helper()
		var p cliImportParams
		a.json(&p, "get-parameters-for-import", "--key-id", ext.KeyId, "--wrapping-algorithm", "RSAES_OAEP_SHA_256", "--wrapping-key-spec", "RSA_2048")
		a.file("pub.der", p.PublicKey)
		a.file("token.bin", p.ImportToken)
		a.openssl(ossl, append([]string{"pkeyutl", "-encrypt", "-in", material, "-out", "wrapped.bin", "-inkey", "pub.der", "-keyform", "DER", "-pubin"}, oaep...)...)
		var im struct{ KeyMaterialId string }
		a.json(&im, "import-key-material", "--key-id", ext.KeyId, "--encrypted-key-material", "fileb://wrapped.bin",
			"--import-token", "fileb://token.bin", "--expiration-model", "KEY_MATERIAL_DOES_NOT_EXPIRE", "--import-type", importType)
		return im.KeyMaterialId
	}
	a.openssl(ossl, "rand", "-out", "one.bin", "32")
	a.openssl(ossl, "rand", "-out", "two.bin", "32")
	firstID := importFile("one.bin", "NEW_KEY_MATERIAL")
	oldCT := a.file("old.bin", a.blob("CiphertextBlob", "encrypt", "--key-id", ext.KeyId, "--plaintext", "fileb://pt.txt"))
	secondID := importFile("two.bin", "NEW_KEY_MATERIAL")
	var all struct {
		Rotations []struct{ KeyMaterialId, KeyMaterialState, ImportState string }
	}
	a.json(&all, "list-key-rotations", "--key-id", ext.KeyId, "--include-key-material", "ALL_KEY_MATERIAL")
	if len(all.Rotations) != 2 || all.Rotations[0].KeyMaterialId != firstID || all.Rotations[0].KeyMaterialState != "CURRENT" ||
		all.Rotations[1].KeyMaterialId != secondID || all.Rotations[1].KeyMaterialState != "PENDING_ROTATION" {
		t.Fatalf("list-key-rotations ALL_KEY_MATERIAL: %+v", all.Rotations)
	}
	a.ok("rotate-key-on-demand", "--key-id", ext.KeyId)
	var desc struct {
		KeyMetadata struct{ CurrentKeyMaterialId string }
	}
	a.json(&desc, "describe-key", "--key-id", ext.KeyId)
	if desc.KeyMetadata.CurrentKeyMaterialId != secondID {
		t.Errorf("after rotate-key-on-demand CurrentKeyMaterialId is %s, want %s", desc.KeyMetadata.CurrentKeyMaterialId, secondID)
	}
	var dec struct{ KeyMaterialId string }
	a.json(&dec, "decrypt", "--ciphertext-blob", oldCT)
	if dec.KeyMaterialId != firstID {
		t.Errorf("decrypt of the old ciphertext: KeyMaterialId %s, want %s", dec.KeyMaterialId, firstID)
	}
	a.fails([]string{"KMSInvalidStateException", "No available key material pending rotation"}, "rotate-key-on-demand", "--key-id", ext.KeyId)
}

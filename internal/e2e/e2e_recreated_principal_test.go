package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
)

// TestE2ERecreatedPrincipalInheritsNothing: key policies and grants name an
// IAM user or role as it was when they were stored (its unique id, as AWS
// does). A user or role deleted and made again under the same name is
// another principal: it gets nothing the old one was given, until a policy
// or grant names it anew.
func TestE2ERecreatedPrincipalInheritsNothing(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.kpIAM()
	key := e.newKey(t)
	keyARN := e.keyARN(key)

	alice := e.kpUser(t, "alice", "")
	roleARN, session := e.kpRoleSession(t, "ops", "s1")
	e.kpPutKeyPolicy(t, e.client, key, kpDoc(kpRootStmt(),
		kpKeyStmt("Allow", []string{alice.arn, roleARN}, "kms:Encrypt", "kms:DescribeKey")), false)
	grant := func(grantee, name string) string {
		t.Helper()
		out, err := e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(key), GranteePrincipal: aws.String(grantee),
			RetiringPrincipal: aws.String(grantee), Name: aws.String(name), Operations: []types.GrantOperation{types.GrantOperationDecrypt}})
		if err != nil {
			t.Fatalf("CreateGrant to %s: %v", grantee, err)
		}
		return aws.ToString(out.GrantId)
	}
	aliceGrant := grant(alice.arn, "for-alice")
	grant(roleARN, "for-ops")

	ct := e.encrypt(t, key, []byte("secret"), nil).CiphertextBlob
	for _, p := range []kpPrincipal{alice, session} {
		if _, err := p.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x")}); err != nil {
			t.Fatalf("%s, named by the key policy: %v", p.name, err)
		}
		if _, err := p.kms.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct}); err != nil {
			t.Fatalf("%s, holding a grant: %v", p.name, err)
		}
	}

	// Delete both and make them again under the same names.
	deleteUser(t, root, "alice")
	if _, err := root.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("ops")}); err != nil {
		t.Fatal(err)
	}
	// A restart: the bindings are read back from the store.
	e = e.reopen(t)
	root = e.kpIAM()
	newAlice := e.kpUser(t, "alice", "")
	_, newSession := e.kpRoleSession(t, "ops", "s2")

	for _, p := range []kpPrincipal{newAlice, newSession} {
		_, err := p.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x")})
		kpDenied(t, err, p.arn, "kms:Encrypt", keyARN, kpNoIdentity("kms:Encrypt"))
		_, err = p.kms.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct})
		kpDenied(t, err, p.arn, "kms:Decrypt", keyARN, kpNoIdentity("kms:Decrypt"))
	}
	// Nor may the new alice retire the old alice's grant.
	_, err := newAlice.kms.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: aws.String(keyARN), GrantId: aws.String(aliceGrant)})
	expectAPIErrorCode(t, err, "AccessDeniedException")

	// The same named grant asked for again is a new grant, for the new
	// alice; and a policy put again names the new principals.
	if again := grant(alice.arn, "for-alice"); again == aliceGrant {
		t.Errorf("CreateGrant for the new alice returned the old alice's grant %s", again)
	}
	if _, err := newAlice.kms.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct}); err != nil {
		t.Fatalf("the new alice with a grant of her own: %v", err)
	}
	e.kpPutKeyPolicy(t, e.client, key, kpDoc(kpRootStmt(),
		kpKeyStmt("Allow", []string{alice.arn, roleARN}, "kms:Encrypt", "kms:DescribeKey")), false)
	for _, p := range []kpPrincipal{newAlice, newSession} {
		if _, err := p.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x")}); err != nil {
			t.Fatalf("%s, named by the policy put again: %v", p.name, err)
		}
	}
}

// TestE2EKeyPolicyShowsDeletedPrincipalsByID: once a user or role a key
// policy names is deleted, GetKeyPolicy shows its unique id in place of
// its ARN, as AWS does, and still does when one of the same name is made
// again; the rest of the document is as it was put. Such a policy cannot
// be put back as it is.
func TestE2EKeyPolicyShowsDeletedPrincipalsByID(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.kpIAM()
	key := e.newKey(t)
	u, err := root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("alice")})
	if err != nil {
		t.Fatal(err)
	}
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + kpRootARN + `"},"Action":"sts:AssumeRole"}]}`
	r, err := root.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("ops"), AssumeRolePolicyDocument: aws.String(trust)})
	if err != nil {
		t.Fatal(err)
	}
	userARN, roleARN := aws.ToString(u.User.Arn), aws.ToString(r.Role.Arn)
	stmt := kpKeyStmt("Allow", []string{userARN, roleARN}, "kms:Encrypt")
	stmt["Condition"] = map[string]any{"StringNotEquals": map[string]string{"aws:PrincipalArn": userARN}}
	doc := kpDoc(kpRootStmt(), stmt)
	e.kpPutKeyPolicy(t, e.client, key, doc, false)
	get := func() string {
		t.Helper()
		out, err := e.client.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.Policy)
	}
	if got, want := get(), kpShown(doc); got != want {
		t.Fatalf("GetKeyPolicy while both exist:\n%s\nwant the policy as put, in AWS's layout:\n%s", got, want)
	}

	if _, err := root.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("alice")}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("ops")}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("alice")}); err != nil {
		t.Fatal(err)
	}
	shownStmt := kpKeyStmt("Allow", []string{aws.ToString(u.User.UserId), aws.ToString(r.Role.RoleId)}, "kms:Encrypt")
	shownStmt["Condition"] = stmt["Condition"] // a Condition naming the ARN keeps it
	want := kpShown(kpDoc(kpRootStmt(), shownStmt))
	got := get()
	if got != want {
		t.Fatalf("GetKeyPolicy after the user (made again) and the role were deleted:\n%s\nwant\n%s", got, want)
	}
	_, err = e.client.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(key), Policy: aws.String(got)})
	expectAPIError(t, err, "MalformedPolicyDocumentException", "Policy contains a statement with one or more invalid principals.")
	if after := get(); after != want {
		t.Errorf("a refused PutKeyPolicy changed the policy:\n%s", after)
	}
}

// TestE2EUnboundRecordsAreBoundAtStart: key policies and grants stored
// before they were bound to unique ids (by an earlier build: no
// policyPrincipalIds, no bound flag) matched users and roles by ARN alone.
// A start binds them to the users and roles of those names that exist
// then, so they keep working for them, and a user or role deleted and
// made again afterwards inherits nothing; an ARN naming no one then is
// bound to no one, and GetKeyPolicy still shows it as written.
func TestE2EUnboundRecordsAreBoundAtStart(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.kpIAM()
	key := e.newKey(t)
	keyARN := e.keyARN(key)
	alice := e.kpUser(t, "alice", "")
	roleARN, session := e.kpRoleSession(t, "ops", "s1")
	carol := e.kpUser(t, "carol", "")
	doc := kpDoc(kpRootStmt(), kpKeyStmt("Allow", []string{alice.arn, roleARN, carol.arn}, "kms:Encrypt", "kms:DescribeKey"))
	e.kpPutKeyPolicy(t, e.client, key, doc, false)
	for _, grantee := range []string{alice.arn, roleARN, carol.arn} {
		if _, err := e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(key), GranteePrincipal: aws.String(grantee),
			Operations: []types.GrantOperation{types.GrantOperationDecrypt}}); err != nil {
			t.Fatal(err)
		}
	}
	ct := e.encrypt(t, key, []byte("secret"), nil).CiphertextBlob
	deleteUser(t, root, "carol")
	// The store as the earlier build left it; carol is gone by then.
	e = e.reopenEdited(t, unbindAll(t, e.root))
	root = e.kpIAM()
	// Alice and the role's sessions keep what the records gave them.
	alice = e.kpAccessKey(t, "alice")
	session = e.kpSession(t, "ops", "s1")
	for _, p := range []kpPrincipal{alice, session} {
		if _, err := p.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x")}); err != nil {
			t.Fatalf("%s, named by the key policy, after the start that bound it: %v", p.name, err)
		}
		if _, err := p.kms.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct}); err != nil {
			t.Fatalf("%s, holding a grant, after the start that bound it: %v", p.name, err)
		}
	}
	u, err := root.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("alice")})
	if err != nil {
		t.Fatal(err)
	}
	r, err := root.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("ops")})
	if err != nil {
		t.Fatal(err)
	}
	aliceID, roleID := aws.ToString(u.User.UserId), aws.ToString(r.Role.RoleId)

	deleteUser(t, root, "alice")
	if _, err := root.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("ops")}); err != nil {
		t.Fatal(err)
	}
	newAlice := e.kpUser(t, "alice", "")
	_, newSession := e.kpRoleSession(t, "ops", "s2")
	newCarol := e.kpUser(t, "carol", "")
	for _, p := range []kpPrincipal{newAlice, newSession, newCarol} {
		_, err := p.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x")})
		kpDenied(t, err, p.arn, "kms:Encrypt", keyARN, kpNoIdentity("kms:Encrypt"))
		_, err = p.kms.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct})
		kpDenied(t, err, p.arn, "kms:Decrypt", keyARN, kpNoIdentity("kms:Decrypt"))
	}
	out, err := e.client.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	want := kpShown(kpDoc(kpRootStmt(), kpKeyStmt("Allow", []string{aliceID, roleID, carol.arn}, "kms:Encrypt", "kms:DescribeKey")))
	if got := aws.ToString(out.Policy); got != want {
		t.Fatalf("GetKeyPolicy:\n%s\nwant alice and the role by their old ids, carol (no one when bound) as written:\n%s", got, want)
	}
}

// kpAccessKey returns an existing user with a new access key.
func (e *kmsEnv) kpAccessKey(t testing.TB, name string) kpPrincipal {
	t.Helper()
	k, err := e.kpIAM().CreateAccessKey(context.Background(), &iam.CreateAccessKeyInput{UserName: aws.String(name)})
	if err != nil {
		t.Fatalf("iam CreateAccessKey %s: %v", name, err)
	}
	return kpPrincipal{name: name, arn: "arn:aws:iam::" + e2eAccount + ":user/" + name,
		kms: e.clientWith(aws.ToString(k.AccessKey.AccessKeyId), aws.ToString(k.AccessKey.SecretAccessKey), "")}
}

// deleteUser deletes a user and its access keys.
func deleteUser(t testing.TB, root *iam.Client, name string) {
	t.Helper()
	ctx := context.Background()
	keys, err := root.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys.AccessKeyMetadata {
		if _, err := root.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(name), AccessKeyId: k.AccessKeyId}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := root.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
}

// unbindAll returns an edit of a closed store that takes out every key
// record's principal ids and every grant's, and the mark of a bound
// store, as records were stored before bindings were kept.
func unbindAll(t *testing.T, root *keys.RootKey) func(path string) {
	return func(path string) {
		t.Helper()
		st := openStore(t, path, root)
		defer st.Close()
		n := 0
		err := st.Update(context.Background(), func(tx store.Tx) error {
			if err := tx.Delete([]byte("meta/principal-binding")); err != nil {
				return err
			}
			for prefix, fields := range map[string][]string{"key/": {"policyPrincipalIds"}, "grant/": {"bound", "granteeId", "retiringId"}} {
				var recs [][2][]byte
				err := tx.Scan([]byte(prefix), nil, func(k, v []byte) (bool, error) {
					var m map[string]json.RawMessage
					if err := json.Unmarshal(v, &m); err != nil {
						return false, err
					}
					for _, f := range fields {
						if _, ok := m[f]; ok {
							delete(m, f)
							n++
						}
					}
					b, err := json.Marshal(m)
					recs = append(recs, [2][]byte{bytes.Clone(k), b})
					return true, err
				})
				if err != nil {
					return err
				}
				for _, r := range recs {
					if err := tx.Put(r[0], r[1]); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil || n < 4 {
			t.Fatalf("unbinding the store: %d fields taken out, %v", n, err)
		}
	}
}

// A key record changed outside the server does not keep the start from
// binding the others: it is left as it is (the calls on it fail), and
// alice, named by another key's policy and grant from before bindings, is
// bound, so that an alice made again later inherits neither.
func TestE2EEditedRecordLeavesTheOthersBound(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	edited, key := e.newKey(t), e.newKey(t)
	e.kpUser(t, "alice", "")
	aliceARN := "arn:aws:iam::" + e2eAccount + ":user/alice"
	for _, id := range []string{edited, key} {
		e.kpPutKeyPolicy(t, e.client, id, kpDoc(kpRootStmt(), kpKeyStmt("Allow", []string{aliceARN}, "kms:Encrypt")), false)
	}
	ct := e.encrypt(t, key, []byte("secret"), nil).CiphertextBlob
	if _, err := e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(key), GranteePrincipal: aws.String(aliceARN),
		Operations: []types.GrantOperation{types.GrantOperationDecrypt}}); err != nil {
		t.Fatal(err)
	}
	unbind := unbindAll(t, e.root)
	e = e.reopenEdited(t, func(path string) {
		unbind(path)
		rawEdit(t, func(tx store.Tx) error {
			return replaceIn(tx, keyrepo.KeyKey(e2eRegion, edited), `"description":""`, `"description":"x"`)
		})(path)
	})
	root := e.kpIAM()
	deleteUser(t, root, "alice")
	newAlice := e.kpUser(t, "alice", "")
	_, err := newAlice.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x")})
	kpDenied(t, err, newAlice.arn, "kms:Encrypt", e.keyARN(key), kpNoIdentity("kms:Encrypt"))
	_, err = newAlice.kms.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct})
	kpDenied(t, err, newAlice.arn, "kms:Decrypt", e.keyARN(key), kpNoIdentity("kms:Decrypt"))
}

package e2e_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// Grants (CreateGrant, ListGrants, ListRetirableGrants, RetireGrant,
// RevokeGrant, grant tokens) through the SDK (reference §4.13, §8.1): a
// grant lets its grantee use a key without a key policy or identity policy
// change. The IAM helpers (kpUser, kpRoleSession, kpDenied...) are in
// e2e_keypolicy_test.go.

// grOtherAccount is an account other than the tests' own.
const grOtherAccount = "444455556666"

const grDryRunMsg = "The request would have succeeded, but the DryRun option is set."

func grOps(ops ...types.GrantOperation) []types.GrantOperation { return ops }

// grCreate creates a grant as c and returns its id and token.
func grCreate(t testing.TB, c *kms.Client, in *kms.CreateGrantInput) (string, string) {
	t.Helper()
	out, err := c.CreateGrant(context.Background(), in)
	if err != nil {
		t.Fatalf("CreateGrant: %v", err)
	}
	id, tok := aws.ToString(out.GrantId), aws.ToString(out.GrantToken)
	if !hex64RE.MatchString(id) {
		t.Errorf("GrantId %q is not 64 lowercase hex digits", id)
	}
	if tok == "" {
		t.Errorf("CreateGrant returned no GrantToken")
	}
	return id, tok
}

func grList(t testing.TB, c *kms.Client, in *kms.ListGrantsInput) []types.GrantListEntry {
	t.Helper()
	var all []types.GrantListEntry
	p := kms.NewListGrantsPaginator(c, in)
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("ListGrants: %v", err)
		}
		all = append(all, page.Grants...)
	}
	return all
}

func grRetirable(t testing.TB, c *kms.Client, principal string) []types.GrantListEntry {
	t.Helper()
	var all []types.GrantListEntry
	p := kms.NewListRetirableGrantsPaginator(c, &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String(principal)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("ListRetirableGrants: %v", err)
		}
		all = append(all, page.Grants...)
	}
	return all
}

func grIDs(gs []types.GrantListEntry) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = aws.ToString(g.GrantId)
	}
	slices.Sort(out)
	return out
}

func grSorted(ids ...string) []string {
	s := slices.Clone(ids)
	slices.Sort(s)
	return s
}

func TestE2EGrantLifecycle(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	gina := e.kpUser(t, "gina", "")
	k := e.newKey(t)
	arn := e.keyARN(k)

	_, err := kpEncrypt(gina.kms, k, nil)
	kpDenied(t, err, gina.arn, "kms:Encrypt", arn, kpNoIdentity("kms:Encrypt"))

	created := e.clock.Now()
	id, _ := grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(gina.arn),
		Operations: grOps(types.GrantOperationEncrypt, types.GrantOperationDecrypt)})

	// The grantee uses the key for the granted operations only.
	blob, err := kpEncrypt(gina.kms, k, map[string]string{"a": "b"})
	if err != nil {
		t.Fatalf("grantee Encrypt: %v", err)
	}
	kpOK(t, "grantee Decrypt", kpDecrypt(gina.kms, blob, map[string]string{"a": "b"}))
	_, err = gina.kms.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(k), KeySpec: types.DataKeySpecAes256})
	kpDenied(t, err, gina.arn, "kms:GenerateDataKey", arn, kpNoIdentity("kms:GenerateDataKey"))
	_, err = gina.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(k)})
	kpDenied(t, err, gina.arn, "kms:DescribeKey", arn, kpNoIdentity("kms:DescribeKey"))
	_, err = gina.kms.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(k)})
	kpDenied(t, err, gina.arn, "kms:ListGrants", arn, kpNoIdentity("kms:ListGrants"))

	grants := grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(k)})
	if len(grants) != 1 {
		t.Fatalf("ListGrants = %+v, want one grant", grants)
	}
	g := grants[0]
	ops := append([]types.GrantOperation(nil), g.Operations...)
	slices.Sort(ops)
	if aws.ToString(g.KeyId) != arn || aws.ToString(g.GrantId) != id || aws.ToString(g.GranteePrincipal) != gina.arn ||
		aws.ToString(g.IssuingAccount) != kpRootARN || !slices.Equal(ops, grOps(types.GrantOperationDecrypt, types.GrantOperationEncrypt)) ||
		!sameInstant(created, g.CreationDate) || g.Name != nil || g.RetiringPrincipal != nil || g.Constraints != nil {
		t.Errorf("grant entry KeyId %s GrantId %s Grantee %s IssuingAccount %s Operations %v CreationDate %v Name %v Retiring %v Constraints %+v",
			aws.ToString(g.KeyId), aws.ToString(g.GrantId), aws.ToString(g.GranteePrincipal), aws.ToString(g.IssuingAccount),
			g.Operations, g.CreationDate, g.Name, g.RetiringPrincipal, g.Constraints)
	}
	// Filters.
	if got := grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(arn), GrantId: aws.String(id)}); len(got) != 1 {
		t.Errorf("ListGrants by GrantId = %d grants", len(got))
	}
	if got := grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(k), GranteePrincipal: aws.String(gina.arn)}); len(got) != 1 {
		t.Errorf("ListGrants by grantee = %d grants", len(got))
	}
	if got := grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(k), GranteePrincipal: aws.String(kpRootARN)}); len(got) != 0 {
		t.Errorf("ListGrants by another grantee = %d grants", len(got))
	}
	_, err = e.client.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(e.keyARN("0f0e0d0c-0b0a-4909-8807-060504030201"))})
	expectAPIErrorCode(t, err, "NotFoundException")

	// RevokeGrant: the next request is refused.
	if _, err := e.client.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(k), GrantId: aws.String(id)}); err != nil {
		t.Fatalf("RevokeGrant: %v", err)
	}
	_, err = kpEncrypt(gina.kms, k, nil)
	kpDenied(t, err, gina.arn, "kms:Encrypt", arn, kpNoIdentity("kms:Encrypt"))
	kpDenied(t, kpDecrypt(gina.kms, blob, map[string]string{"a": "b"}), gina.arn, "kms:Decrypt", arn, kpNoIdentity("kms:Decrypt"))
	if got := grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(k)}); len(got) != 0 {
		t.Errorf("ListGrants after RevokeGrant = %+v", got)
	}
	_, err = e.client.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(k), GrantId: aws.String(id)})
	expectAPIErrorCode(t, err, "NotFoundException")

	// A grant to a role applies to its sessions.
	roleARN, s := e.kpRoleSession(t, "granted-role", "s1")
	grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(roleARN), Operations: grOps(types.GrantOperationGenerateDataKey)})
	if _, err := s.kms.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(k), NumberOfBytes: aws.Int32(32)}); err != nil {
		t.Errorf("role session GenerateDataKey through a grant to the role: %v", err)
	}
}

func TestE2EGrantConstraints(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	gina := e.kpUser(t, "gina", "")
	eqKey, subKey := e.newKey(t), e.newKey(t)
	grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(eqKey), GranteePrincipal: aws.String(gina.arn),
		Operations:  grOps(types.GrantOperationEncrypt, types.GrantOperationDecrypt),
		Constraints: &types.GrantConstraints{EncryptionContextEquals: map[string]string{"Purpose": "Test"}}})
	grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(subKey), GranteePrincipal: aws.String(gina.arn),
		Operations:  grOps(types.GrantOperationEncrypt, types.GrantOperationDecrypt),
		Constraints: &types.GrantConstraints{EncryptionContextSubset: map[string]string{"Dept": "IT"}}})

	// EncryptionContextEquals: exactly these pairs; keys in any case,
	// values exactly.
	for _, ec := range []map[string]string{{"Purpose": "Test"}, {"purpose": "Test"}, {"PURPOSE": "Test"}} {
		blob, err := kpEncrypt(gina.kms, eqKey, ec)
		kpOK(t, "Encrypt under EncryptionContextEquals with "+strings.Join(grPairs(ec), ","), err)
		if err == nil {
			kpOK(t, "Decrypt under EncryptionContextEquals", kpDecrypt(gina.kms, blob, ec))
		}
	}
	for _, ec := range []map[string]string{nil, {"Purpose": "test"}, {"Purpose": "Test", "x": "y"}, {"Purpose2": "Test"}} {
		_, err := kpEncrypt(gina.kms, eqKey, ec)
		kpDeniedAny(t, err, gina.arn, "kms:Encrypt", e.keyARN(eqKey))
	}

	// EncryptionContextSubset: these pairs and maybe more.
	for _, ec := range []map[string]string{{"Dept": "IT"}, {"dept": "IT"}, {"DEPT": "IT", "other": "x"}} {
		blob, err := kpEncrypt(gina.kms, subKey, ec)
		kpOK(t, "Encrypt under EncryptionContextSubset with "+strings.Join(grPairs(ec), ","), err)
		if err == nil {
			kpOK(t, "Decrypt under EncryptionContextSubset", kpDecrypt(gina.kms, blob, ec))
		}
	}
	for _, ec := range []map[string]string{nil, {"Dept": "it"}, {"other": "IT"}} {
		_, err := kpEncrypt(gina.kms, subKey, ec)
		kpDeniedAny(t, err, gina.arn, "kms:Encrypt", e.keyARN(subKey))
	}

	// ListGrants shows the constraints.
	g := grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(eqKey)})
	if len(g) != 1 || g[0].Constraints == nil || g[0].Constraints.EncryptionContextEquals["Purpose"] != "Test" || g[0].Constraints.EncryptionContextSubset != nil {
		t.Errorf("ListGrants constraints = %+v", g)
	}
	g = grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(subKey)})
	if len(g) != 1 || g[0].Constraints == nil || g[0].Constraints.EncryptionContextSubset["Dept"] != "IT" || g[0].Constraints.EncryptionContextEquals != nil {
		t.Errorf("ListGrants constraints = %+v", g)
	}
}

func grPairs(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

func TestE2EGrantRetire(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	gina := e.kpUser(t, "gina", "") // grantee
	rita := e.kpUser(t, "rita", "") // retiring principal
	stan := e.kpUser(t, "stan", "") // neither
	k1, k2 := e.newKey(t), e.newKey(t)

	g1, tok1 := grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(k1), GranteePrincipal: aws.String(gina.arn),
		RetiringPrincipal: aws.String(rita.arn), Operations: grOps(types.GrantOperationEncrypt)})
	g2, _ := grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(k2), GranteePrincipal: aws.String(gina.arn),
		RetiringPrincipal: aws.String(rita.arn), Operations: grOps(types.GrantOperationDecrypt)})
	g3, _ := grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(k2), GranteePrincipal: aws.String(gina.arn),
		Operations: grOps(types.GrantOperationEncrypt, types.GrantOperationRetireGrant)})
	_, tok4 := grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(k2), GranteePrincipal: aws.String(stan.arn),
		Operations: grOps(types.GrantOperationEncrypt)})

	// ListRetirableGrants lists rita's grants across keys.
	got := grRetirable(t, e.client, rita.arn)
	if !slices.Equal(grIDs(got), grSorted(g1, g2)) {
		t.Errorf("ListRetirableGrants(rita) = %v, want %v", grIDs(got), grSorted(g1, g2))
	}
	for _, g := range got {
		want := e.keyARN(k1)
		if aws.ToString(g.GrantId) == g2 {
			want = e.keyARN(k2)
		}
		if aws.ToString(g.KeyId) != want || aws.ToString(g.RetiringPrincipal) != rita.arn || aws.ToString(g.IssuingAccount) != kpRootARN {
			t.Errorf("retirable grant %s: KeyId %s RetiringPrincipal %s IssuingAccount %s", aws.ToString(g.GrantId),
				aws.ToString(g.KeyId), aws.ToString(g.RetiringPrincipal), aws.ToString(g.IssuingAccount))
		}
	}
	if n := len(grRetirable(t, e.client, gina.arn)); n != 0 {
		t.Errorf("ListRetirableGrants(gina) = %d grants, want 0", n)
	}
	// ListRetirableGrants is authorized by identity policy alone.
	_, err := rita.kms.ListRetirableGrants(ctx, &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String(rita.arn)})
	expectAPIErrorCode(t, err, "AccessDeniedException")
	e.kpPutUserPolicy(t, "rita", "list", kpDoc(kpIdentity("Allow", []string{"*"}, "kms:ListRetirableGrants")))
	if got := grRetirable(t, rita.kms, rita.arn); len(got) != 2 {
		t.Errorf("rita ListRetirableGrants = %d grants, want 2", len(got))
	}
	var paged []string
	p := kms.NewListRetirableGrantsPaginator(e.client, &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String(rita.arn), Limit: aws.Int32(1)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListRetirableGrants page: %v", err)
		}
		if len(page.Grants) > 1 {
			t.Errorf("page of %d grants with Limit 1", len(page.Grants))
		}
		paged = append(paged, grIDs(page.Grants)...)
	}
	if slices.Sort(paged); !slices.Equal(paged, grSorted(g1, g2)) {
		t.Errorf("ListRetirableGrants with Limit 1 = %v, want %v", paged, grSorted(g1, g2))
	}

	// A stranger cannot retire, by token or by id.
	_, err = stan.kms.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: aws.String(tok1)})
	expectAPIErrorPrefix(t, err, "AccessDeniedException", "User: "+stan.arn+" is not authorized to perform: kms:RetireGrant on resource: "+e.keyARN(k1))
	_, err = stan.kms.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: aws.String(k1), GrantId: aws.String(g1)})
	expectAPIErrorPrefix(t, err, "AccessDeniedException", "User: "+stan.arn+" is not authorized to perform: kms:RetireGrant on resource: "+e.keyARN(k1))
	// Nor can a grantee whose grant does not allow RetireGrant.
	_, err = gina.kms.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: aws.String(tok1)})
	expectAPIErrorCode(t, err, "AccessDeniedException")
	if _, err := kpEncrypt(gina.kms, k1, nil); err != nil {
		t.Errorf("grant g1 should still work: %v", err)
	}

	// The retiring principal retires by token...
	if _, err := rita.kms.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: aws.String(tok1)}); err != nil {
		t.Fatalf("rita RetireGrant by token: %v", err)
	}
	_, err = kpEncrypt(gina.kms, k1, nil)
	kpDenied(t, err, gina.arn, "kms:Encrypt", e.keyARN(k1), kpNoIdentity("kms:Encrypt"))
	_, err = rita.kms.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: aws.String(tok1)})
	expectAPIErrorCode(t, err, "NotFoundException")
	// ...and by key and grant id.
	if _, err := rita.kms.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: aws.String(e.keyARN(k2)), GrantId: aws.String(g2)}); err != nil {
		t.Fatalf("rita RetireGrant by KeyId and GrantId: %v", err)
	}
	if n := len(grRetirable(t, e.client, rita.arn)); n != 0 {
		t.Errorf("ListRetirableGrants(rita) after retiring = %d grants", n)
	}
	// A grantee whose grant allows RetireGrant retires it.
	if _, err := gina.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(k2), Plaintext: []byte("x")}); err != nil {
		t.Errorf("grant g3 Encrypt: %v", err)
	}
	if _, err := gina.kms.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: aws.String(k2), GrantId: aws.String(g3)}); err != nil {
		t.Fatalf("grantee RetireGrant with the RetireGrant operation: %v", err)
	}
	// The account that issued a grant may retire it.
	if _, err := e.client.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: aws.String(tok4)}); err != nil {
		t.Fatalf("root RetireGrant: %v", err)
	}
	if got := grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(k1)}); len(got) != 0 {
		t.Errorf("grants left on k1: %v", grIDs(got))
	}
	if got := grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(k2)}); len(got) != 0 {
		t.Errorf("grants left on k2: %v", grIDs(got))
	}
}

func TestE2EGrantNameIdempotent(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	gina := e.kpUser(t, "gina", "")
	k, k2 := e.newKey(t), e.newKey(t)
	in := func(key string, ops ...types.GrantOperation) *kms.CreateGrantInput {
		return &kms.CreateGrantInput{KeyId: aws.String(key), GranteePrincipal: aws.String(gina.arn), Name: aws.String("app-grant"), Operations: ops}
	}
	id1, tok1 := grCreate(t, e.client, in(k, types.GrantOperationEncrypt))
	id2, tok2 := grCreate(t, e.client, in(k, types.GrantOperationEncrypt))
	if id1 != id2 {
		t.Errorf("same Name and parameters: GrantId %s then %s", id1, id2)
	}
	if tok1 == tok2 {
		t.Errorf("a retried CreateGrant returned the same token; AWS returns a fresh one")
	}
	g := grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(k)})
	if len(g) != 1 || aws.ToString(g[0].Name) != "app-grant" {
		t.Errorf("ListGrants after a retried named CreateGrant = %+v", g)
	}
	// Both tokens are good for the grant.
	for _, tok := range []string{tok1, tok2} {
		_, err := gina.kms.Encrypt(context.Background(), &kms.EncryptInput{KeyId: aws.String(k), Plaintext: []byte("x"), GrantTokens: []string{tok}})
		kpOK(t, "Encrypt with a grant token", err)
	}
	// Other parameters make another grant; so does the same name on
	// another key.
	id3, _ := grCreate(t, e.client, in(k, types.GrantOperationEncrypt, types.GrantOperationDecrypt))
	id4, _ := grCreate(t, e.client, in(k2, types.GrantOperationEncrypt))
	if id3 == id1 || id4 == id1 || id3 == id4 {
		t.Errorf("distinct grants share ids: %s %s %s", id1, id3, id4)
	}
	// Without a Name every call makes a new grant.
	noName := &kms.CreateGrantInput{KeyId: aws.String(k2), GranteePrincipal: aws.String(gina.arn), Operations: grOps(types.GrantOperationDecrypt)}
	a, _ := grCreate(t, e.client, noName)
	b, _ := grCreate(t, e.client, noName)
	if a == b {
		t.Errorf("two unnamed CreateGrant calls returned the same GrantId %s", a)
	}
	if n := len(grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(k)})); n != 2 {
		t.Errorf("%d grants on k, want 2", n)
	}
	if n := len(grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(k2)})); n != 3 {
		t.Errorf("%d grants on k2, want 3", n)
	}
	// Paging one grant at a time sees each once.
	paged := grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(k2), Limit: aws.Int32(1)})
	if ids := grIDs(paged); !slices.Equal(ids, grSorted(id4, a, b)) {
		t.Errorf("ListGrants with Limit 1 = %v, want %v", ids, grSorted(id4, a, b))
	}
	// Constraints count among the parameters.
	withEC := func(v string) *kms.CreateGrantInput {
		in := in(k, types.GrantOperationDecrypt)
		in.Name = aws.String("ec-grant")
		in.Constraints = &types.GrantConstraints{EncryptionContextSubset: map[string]string{"a": v, "b": "2"}}
		return in
	}
	c1, _ := grCreate(t, e.client, withEC("1"))
	c2, _ := grCreate(t, e.client, withEC("1"))
	c3, _ := grCreate(t, e.client, withEC("other"))
	if c1 != c2 || c1 == c3 {
		t.Errorf("named grants with constraints: %s %s (same parameters) %s (other constraints)", c1, c2, c3)
	}
}

func TestE2EGrantValidation(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	gina := e.kpUser(t, "gina", "")
	k := e.newKey(t)
	create := func(in *kms.CreateGrantInput) error {
		if in.KeyId == nil {
			in.KeyId = aws.String(k)
		}
		_, err := e.client.CreateGrant(ctx, in)
		return err
	}
	grantee := aws.String(gina.arn)

	expectAPIErrorCode(t, create(&kms.CreateGrantInput{GranteePrincipal: grantee, Operations: grOps(types.GrantOperationSign)}), "ValidationException")
	expectAPIErrorCode(t, create(&kms.CreateGrantInput{GranteePrincipal: grantee, Operations: grOps(types.GrantOperationEncrypt, types.GrantOperationGenerateMac)}), "ValidationException")
	expectAPIErrorCode(t, create(&kms.CreateGrantInput{GranteePrincipal: grantee, Operations: []types.GrantOperation{}}), "ValidationException")
	expectAPIErrorCode(t, create(&kms.CreateGrantInput{GranteePrincipal: grantee, Operations: grOps("Bogus")}), "ValidationException")
	expectAPIErrorCode(t, create(&kms.CreateGrantInput{Operations: grOps(types.GrantOperationEncrypt)}), "ValidationException")
	expectAPIErrorCode(t, create(&kms.CreateGrantInput{GranteeServicePrincipal: aws.String("logs.amazonaws.com"), Operations: grOps(types.GrantOperationEncrypt)}),
		"UnsupportedOperationException")
	expectAPIErrorCode(t, create(&kms.CreateGrantInput{KeyId: aws.String(e.keyARN("0f0e0d0c-0b0a-4909-8807-060504030201")), GranteePrincipal: grantee,
		Operations: grOps(types.GrantOperationEncrypt)}), "NotFoundException")
	// Constraints: at most 8 pairs, each key and value at most 384 characters;
	// the limits themselves are accepted.
	nine, eight := map[string]string{}, map[string]string{}
	for i := range 9 {
		nine[fmt.Sprint("k", i)] = "v"
		if i < 8 {
			eight[fmt.Sprint("k", i)] = "v"
		}
	}
	encrypt := grOps(types.GrantOperationEncrypt)
	for _, tc := range []struct {
		c   types.GrantConstraints
		msg string
	}{
		{types.GrantConstraints{EncryptionContextEquals: nine},
			"1 validation error detected: Value at 'constraints.encryptionContextEquals' failed to satisfy constraint: Member must have length less than or equal to 8"},
		{types.GrantConstraints{EncryptionContextSubset: map[string]string{"k": strings.Repeat("é", 385)}},
			"1 validation error detected: Value at 'constraints.encryptionContextSubset' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 384]"},
		// A key is held to 384 characters too: a grant holds at most
		// 16 pairs of bounded length, not the body's whole megabyte.
		{types.GrantConstraints{EncryptionContextEquals: map[string]string{strings.Repeat("é", 385): "v"}},
			"1 validation error detected: Value at 'constraints.encryptionContextEquals' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 384]"},
		{types.GrantConstraints{EncryptionContextSubset: map[string]string{strings.Repeat("k", 100000): "v"}},
			"1 validation error detected: Value at 'constraints.encryptionContextSubset' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 384]"},
	} {
		expectAPIError(t, create(&kms.CreateGrantInput{GranteePrincipal: grantee, Operations: encrypt, Constraints: &tc.c}), "ValidationException", tc.msg)
	}
	if n := len(grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(k)})); n != 0 {
		t.Errorf("%d grants after refused CreateGrant calls", n)
	}
	for _, c := range []types.GrantConstraints{
		{EncryptionContextEquals: eight},
		{EncryptionContextSubset: map[string]string{"k": strings.Repeat("é", 384)}},
		{EncryptionContextSubset: map[string]string{strings.Repeat("é", 384): "v"}},
	} {
		grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: grantee, Operations: encrypt, Constraints: &c})
	}
	for _, g := range grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(k)}) {
		if _, err := e.client.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(k), GrantId: g.GrantId}); err != nil {
			t.Fatal(err)
		}
	}

	// Grant ids.
	_, err := e.client.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(k), GrantId: aws.String("not-a-grant-id")})
	expectAPIErrorCode(t, err, "InvalidGrantIdException")
	_, err = e.client.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: aws.String(k), GrantId: aws.String("ABC")})
	expectAPIErrorCode(t, err, "InvalidGrantIdException")
	_, err = e.client.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(k), GrantId: aws.String("123")})
	expectAPIErrorCode(t, err, "InvalidGrantIdException")
	unknown := strings.Repeat("ab", 32)
	_, err = e.client.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(k), GrantId: aws.String(unknown)})
	expectAPIErrorCode(t, err, "NotFoundException")
	_, err = e.client.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: aws.String(k), GrantId: aws.String(unknown)})
	expectAPIErrorCode(t, err, "NotFoundException")
	if got := grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(k), GrantId: aws.String(unknown)}); len(got) != 0 {
		t.Errorf("ListGrants of an unknown grant id = %+v", got)
	}

	// Grant tokens: malformed ones are refused, real ones accepted.
	for _, bad := range []string{"not a token", "AAAA", strings.Repeat("x", 100)} {
		_, err = e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(k), Plaintext: []byte("x"), GrantTokens: []string{bad}})
		expectAPIErrorCode(t, err, "InvalidGrantTokenException")
		_, err = e.client.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: aws.String(bad)})
		expectAPIErrorCode(t, err, "InvalidGrantTokenException")
	}
	_, tok := grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: grantee, Operations: grOps(types.GrantOperationEncrypt, types.GrantOperationGenerateDataKey)})
	out, err := gina.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(k), Plaintext: []byte("x"), GrantTokens: []string{tok}})
	if err != nil {
		t.Fatalf("Encrypt with a grant token: %v", err)
	}
	if _, err := gina.kms.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(k), NumberOfBytes: aws.Int32(16), GrantTokens: []string{tok}}); err != nil {
		t.Errorf("GenerateDataKey with a grant token: %v", err)
	}
	// A token is no permission by itself.
	kpDenied(t, kpDecrypt(gina.kms, out.CiphertextBlob, nil), gina.arn, "kms:Decrypt", e.keyARN(k), kpNoIdentity("kms:Decrypt"))
}

// A grantee or retiring principal must name one: AWS answers
// InvalidArnException "ARN does not refer to a valid principal: ARN" for
// a user or role that does not exist (yet) and for what is no principal
// ARN at all, and creates no grant.
func TestE2EGrantPrincipalMustExist(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	gina := e.kpUser(t, "gina", "")
	k := e.newKey(t)
	encrypt := grOps(types.GrantOperationEncrypt)
	for _, p := range []string{
		"nobody",
		"arn:aws:iam::" + e2eAccount + ":user/nobody",
		"arn:aws:iam::" + e2eAccount + ":role/nobody",
		"arn:aws:s3:::bucket",
	} {
		_, err := e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(p), Operations: encrypt})
		expectAPIError(t, err, "InvalidArnException", "ARN does not refer to a valid principal: "+p)
		_, err = e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(gina.arn),
			RetiringPrincipal: aws.String(p), Operations: encrypt})
		expectAPIError(t, err, "InvalidArnException", "ARN does not refer to a valid principal: "+p)
	}
	if n := len(grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(k)})); n != 0 {
		t.Errorf("%d grants after refused CreateGrant calls", n)
	}
	// An existing user, an account (its root) and a role session name
	// principals, in this account or another.
	for _, p := range []string{
		gina.arn,
		"arn:aws:iam::" + e2eAccount + ":root",
		"arn:aws:iam::" + grOtherAccount + ":root",
		"arn:aws:sts::" + e2eAccount + ":assumed-role/app/session",
	} {
		grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(p), RetiringPrincipal: aws.String(p), Operations: encrypt})
	}
}

func TestE2EGrantDryRun(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	gina := e.kpUser(t, "gina", "")
	stan := e.kpUser(t, "stan", "")
	k := e.newKey(t)
	count := func() int { return len(grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(k)})) }

	_, err := e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(gina.arn),
		Operations: grOps(types.GrantOperationEncrypt), DryRun: aws.Bool(true)})
	expectAPIError(t, err, "DryRunOperationException", grDryRunMsg)
	if n := count(); n != 0 {
		t.Errorf("%d grants after a DryRun CreateGrant", n)
	}
	_, err = kpEncrypt(gina.kms, k, nil)
	expectAPIErrorCode(t, err, "AccessDeniedException")

	id, tok := grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(gina.arn),
		RetiringPrincipal: aws.String(gina.arn), Operations: grOps(types.GrantOperationEncrypt)})
	_, err = e.client.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(k), GrantId: aws.String(id), DryRun: aws.Bool(true)})
	expectAPIError(t, err, "DryRunOperationException", grDryRunMsg)
	_, err = gina.kms.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: aws.String(tok), DryRun: aws.Bool(true)})
	expectAPIError(t, err, "DryRunOperationException", grDryRunMsg)
	_, err = e.client.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: aws.String(k), GrantId: aws.String(id), DryRun: aws.Bool(true)})
	expectAPIError(t, err, "DryRunOperationException", grDryRunMsg)
	// A DryRun of what would fail fails as the real request would.
	_, err = stan.kms.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: aws.String(tok), DryRun: aws.Bool(true)})
	expectAPIErrorCode(t, err, "AccessDeniedException")
	_, err = stan.kms.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(k), GrantId: aws.String(id), DryRun: aws.Bool(true)})
	kpDenied(t, err, stan.arn, "kms:RevokeGrant", e.keyARN(k), kpNoIdentity("kms:RevokeGrant"))
	_, err = e.client.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(k), GrantId: aws.String(strings.Repeat("0", 64)), DryRun: aws.Bool(true)})
	expectAPIErrorCode(t, err, "NotFoundException")

	if n := count(); n != 1 {
		t.Errorf("%d grants after DryRun RevokeGrant/RetireGrant, want 1", n)
	}
	if _, err := kpEncrypt(gina.kms, k, nil); err != nil {
		t.Errorf("grant no longer works after DryRun calls: %v", err)
	}
}

func TestE2EGrantKeyStates(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	gina := e.kpUser(t, "gina", "")
	rita := e.kpUser(t, "rita", "")
	k := e.newKey(t)
	arn := e.keyARN(k)
	grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(gina.arn), Operations: grOps(types.GrantOperationEncrypt)})

	// Disabled: no new grants, and the grantee cannot use the key.
	e.disable(t, k)
	_, err := e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(gina.arn), Operations: grOps(types.GrantOperationDecrypt)})
	expectAPIError(t, err, "DisabledException", arn+" is disabled.")
	_, err = kpEncrypt(gina.kms, k, nil)
	expectAPIError(t, err, "DisabledException", arn+" is disabled.")
	if _, err := e.client.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(k)}); err != nil {
		t.Fatal(err)
	}
	if _, err := kpEncrypt(gina.kms, k, nil); err != nil {
		t.Errorf("grantee Encrypt after EnableKey: %v", err)
	}

	// Deleted: the key's grants go with it.
	doomed, kept := e.newKey(t), e.newKey(t)
	gd, _ := grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(doomed), GranteePrincipal: aws.String(gina.arn),
		RetiringPrincipal: aws.String(rita.arn), Operations: grOps(types.GrantOperationEncrypt)})
	gk, _ := grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(kept), GranteePrincipal: aws.String(gina.arn),
		RetiringPrincipal: aws.String(rita.arn), Operations: grOps(types.GrantOperationEncrypt)})
	e.scheduleDeletion(t, doomed, 7)
	_, err = e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(doomed), GranteePrincipal: aws.String(gina.arn), Operations: grOps(types.GrantOperationDecrypt)})
	expectAPIErrorCode(t, err, "KMSInvalidStateException")
	_, err = kpEncrypt(gina.kms, doomed, nil)
	expectAPIErrorCode(t, err, "KMSInvalidStateException")
	// Still listed while pending deletion.
	if got := grIDs(grRetirable(t, e.client, rita.arn)); !slices.Equal(got, grSorted(gd, gk)) {
		t.Errorf("ListRetirableGrants while pending deletion = %v, want %v", got, grSorted(gd, gk))
	}
	e.clock.Advance(7*24*time.Hour + time.Second)
	if err := e.svc.Maintain(ctx); err != nil {
		t.Fatalf("Maintain: %v", err)
	}
	if got := grIDs(grRetirable(t, e.client, rita.arn)); !slices.Equal(got, []string{gk}) {
		t.Errorf("ListRetirableGrants after the key was deleted = %v, want [%s]", got, gk)
	}
	_, err = e.client.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(doomed)})
	expectAPIErrorCode(t, err, "NotFoundException")
	_, err = e.client.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(doomed), GrantId: aws.String(gd)})
	expectAPIErrorCode(t, err, "NotFoundException")
	if _, err := kpEncrypt(gina.kms, kept, nil); err != nil {
		t.Errorf("grant on the kept key: %v", err)
	}
}

// An encryption-context constraint is refused on a key whose operations
// take no encryption context (it would be ignored, and the grant allow
// more than it says), and for CreateGrant a policy's
// kms:EncryptionContext:* keys are the constraint's context.
func TestE2EGrantConstraintContext(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	gina := e.kpUser(t, "gina", "")
	signer := aws.ToString(e.createKey(t, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify}).KeyId)
	mac := aws.ToString(e.createKey(t, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac}).KeyId)
	only := &types.GrantConstraints{EncryptionContextSubset: map[string]string{"purpose": "only-this"}}
	for key, spec := range map[string]struct {
		id string
		op types.GrantOperation
	}{"ECC_NIST_P256": {signer, types.GrantOperationSign}, "HMAC_256": {mac, types.GrantOperationGenerateMac}} {
		_, err := e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(spec.id), GranteePrincipal: aws.String(gina.arn),
			Operations: grOps(spec.op), Constraints: only})
		expectAPIError(t, err, "ValidationException",
			"Encryption context grant constraints are not valid for a KMS key with key spec "+key+": its operations take no encryption context.")
		if n := len(grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(spec.id)})); n != 0 {
			t.Errorf("%s: %d grants after the refusal", key, n)
		}
	}

	k := e.newKey(t)
	e.kpPutKeyPolicy(t, e.client, k, kpDoc(kpRootStmt(),
		kpDeny("*", "kms:CreateGrant").with(map[string]any{"StringEquals": map[string]string{"kms:EncryptionContext:stage": "Restricted"}})), false)
	grant := func(c map[string]string) error {
		_, err := e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(gina.arn),
			Operations: grOps(types.GrantOperationDecrypt), Constraints: &types.GrantConstraints{EncryptionContextSubset: c}})
		return err
	}
	kpDeniedAny(t, grant(map[string]string{"stage": "Restricted"}), kpRootARN, "kms:CreateGrant", e.keyARN(k))
	if err := grant(map[string]string{"stage": "Open"}); err != nil {
		t.Fatalf("a grant the deny does not match: %v", err)
	}
}

// What a grant's maker asked for is what the grant holds: an empty
// EncryptionContextEquals allows only calls without a context (it was
// stored as no constraint at all, which a key policy allowing only
// constrained grants let through), a SourceArn constraint this server
// cannot honour is refused rather than dropped, and the same Name in
// another account makes another grant.
func TestE2EGrantConstraintsHeldAsAsked(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	gina := e.kpUser(t, "gina", "")
	k := e.newKey(t)
	e.kpPutKeyPolicy(t, e.client, k, kpDoc(kpRootStmt(),
		kpAllow(gina.arn, "kms:CreateGrant").with(map[string]any{"StringEquals": map[string]string{"kms:GrantConstraintType": "EncryptionContextEquals"}}),
		kpAllow("arn:aws:iam::"+grOtherAccount+":root", "kms:CreateGrant", "kms:ListGrants")), false)

	_, err := gina.kms.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(gina.arn),
		Operations: grOps(types.GrantOperationDecrypt)})
	expectAPIErrorCode(t, err, "AccessDeniedException")
	if _, err := gina.kms.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(gina.arn),
		Operations: grOps(types.GrantOperationDecrypt), Constraints: &types.GrantConstraints{EncryptionContextEquals: map[string]string{}}}); err != nil {
		t.Fatal(err)
	}
	withContext := e.encrypt(t, k, []byte("for the victim"), map[string]string{"tenant": "victim"}).CiphertextBlob
	_, err = gina.kms.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: withContext, EncryptionContext: map[string]string{"tenant": "victim"}})
	expectAPIErrorCode(t, err, "AccessDeniedException")
	without := e.encrypt(t, k, []byte("no context"), nil).CiphertextBlob
	if _, err := gina.kms.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: without}); err != nil {
		t.Errorf("Decrypt without a context under an empty EncryptionContextEquals: %v", err)
	}
	gs := grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(k)})
	if len(gs) != 1 || gs[0].Constraints == nil || gs[0].Constraints.EncryptionContextEquals == nil || len(gs[0].Constraints.EncryptionContextEquals) != 0 {
		t.Errorf("ListGrants shows %+v, want the one grant with an empty EncryptionContextEquals", gs)
	}

	_, err = e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(gina.arn),
		Operations: grOps(types.GrantOperationDecrypt), Constraints: &types.GrantConstraints{SourceArn: aws.String("arn:aws:s3:::bucket")}})
	expectAPIErrorCode(t, err, "UnsupportedOperationException")
	if n := len(grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(k)})); n != 1 {
		t.Errorf("%d grants after the refused SourceArn grant, want 1", n)
	}

	// The same named grant from two accounts is two grants.
	named := func(c *kms.Client) string {
		t.Helper()
		id, _ := grCreate(t, c, &kms.CreateGrantInput{KeyId: aws.String(e.keyARN(k)), GranteePrincipal: aws.String(gina.arn),
			Operations: grOps(types.GrantOperationEncrypt), Name: aws.String("shared")})
		return id
	}
	mine := named(e.client)
	theirs := named(e.clientAs(t, grOtherAccount))
	if mine == theirs {
		t.Errorf("a grant of the same Name from another account returned this account's grant %s", mine)
	}
	if again := named(e.client); again != mine {
		t.Errorf("the same named grant again from its own account: %s, want %s", again, mine)
	}
}

// ListGrants filtered by GranteeServicePrincipal lists only grants to that
// service principal, which this server never makes: none, not every grant
// of the key, as a filter it ignored would.
func TestE2EListGrantsByServicePrincipal(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	key := e.newKey(t)
	root := "arn:aws:iam::" + e2eAccount + ":root"
	grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(key), GranteePrincipal: aws.String(root), Operations: grOps(types.GrantOperationEncrypt)})
	for _, in := range []*kms.ListGrantsInput{
		{KeyId: aws.String(key), GranteeServicePrincipal: aws.String("logs.amazonaws.com")},
		{KeyId: aws.String(key), GranteeServicePrincipal: aws.String("logs.amazonaws.com"), GranteePrincipal: aws.String(root)},
	} {
		out, err := e.client.ListGrants(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Grants) != 0 || out.Truncated {
			t.Errorf("ListGrants to a service principal listed %d grants (truncated %v), want none", len(out.Grants), out.Truncated)
		}
	}
	all, err := e.client.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(key)})
	if err != nil || len(all.Grants) != 1 {
		t.Fatalf("ListGrants: %d grants (%v), want 1", len(all.Grants), err)
	}
}

// The grants of a key past its deletion date are gone with it, before the
// sweeper runs: ListRetirableGrants no longer lists them, and retiring one
// by its token is NotFound, as after the sweep. A millisecond before the
// date they are listed still.
func TestE2EGrantsOfKeyPastDeletionDate(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	gina := e.kpUser(t, "gina", "")
	rita := e.kpUser(t, "rita", "")
	doomed, kept := e.newKey(t), e.newKey(t)
	g1, tok1 := grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(doomed), GranteePrincipal: aws.String(gina.arn),
		RetiringPrincipal: aws.String(rita.arn), Operations: grOps(types.GrantOperationEncrypt)})
	g2, _ := grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(kept), GranteePrincipal: aws.String(gina.arn),
		RetiringPrincipal: aws.String(rita.arn), Operations: grOps(types.GrantOperationEncrypt)})
	out := e.scheduleDeletion(t, doomed, 7)

	e.clock.Set(out.DeletionDate.Add(-time.Millisecond))
	if got := grIDs(grRetirable(t, e.client, rita.arn)); !slices.Equal(got, grSorted(g1, g2)) {
		t.Errorf("a millisecond before the date ListRetirableGrants = %v, want %v", got, grSorted(g1, g2))
	}
	e.clock.Set(*out.DeletionDate)
	for _, when := range []string{"at the date", "after the sweep"} {
		if got := grIDs(grRetirable(t, e.client, rita.arn)); !slices.Equal(got, []string{g2}) {
			t.Errorf("%s ListRetirableGrants = %v, want [%s]", when, got, g2)
		}
		_, err := e.client.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: aws.String(tok1)})
		expectAPIError(t, err, "NotFoundException", "Grant ID "+g1+" not found")
		if n, err := e.svc.DeleteExpiredKeys(ctx); err != nil {
			t.Fatalf("DeleteExpiredKeys = %d, %v", n, err)
		}
	}
}

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

// Aliases (CreateAlias, UpdateAlias, DeleteAlias, ListAliases) and tags
// (TagResource, UntagResource, ListResourceTags) through the SDK.

func TestE2EAliasLifecycle(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	a, b := e.newKey(t), e.newKey(t)
	created := e.clock.Now()
	e.createAlias(t, "alias/app", a)

	list := e.listAllAliases(t, nil)
	if len(list) != 1 {
		t.Fatalf("ListAliases = %+v, want one alias", list)
	}
	entry := list[0]
	if aws.ToString(entry.AliasName) != "alias/app" || aws.ToString(entry.AliasArn) != e.aliasARN("alias/app") ||
		aws.ToString(entry.TargetKeyId) != a || !sameInstant(created, entry.CreationDate) || !sameInstant(created, entry.LastUpdatedDate) {
		t.Errorf("alias entry %s %s -> %s created %v updated %v", aws.ToString(entry.AliasName), aws.ToString(entry.AliasArn),
			aws.ToString(entry.TargetKeyId), entry.CreationDate, entry.LastUpdatedDate)
	}
	if got := aws.ToString(e.encrypt(t, "alias/app", []byte("x"), nil).KeyId); got != e.keyARN(a) {
		t.Errorf("Encrypt via alias used %s, want %s", got, e.keyARN(a))
	}

	// UpdateAlias repoints the alias; the change is visible at once (the
	// alias target was cached by the Encrypt above).
	updated := e.clock.Advance(time.Hour)
	if _, err := e.client.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: aws.String(e.keyARN(b))}); err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(e.encrypt(t, "alias/app", []byte("x"), nil).KeyId); got != e.keyARN(b) {
		t.Errorf("Encrypt via alias after UpdateAlias used %s, want %s", got, e.keyARN(b))
	}
	if got := aws.ToString(e.describe(t, e.aliasARN("alias/app")).KeyId); got != b {
		t.Errorf("DescribeKey(alias ARN) = %s, want %s", got, b)
	}
	entry = e.listAllAliases(t, nil)[0]
	if aws.ToString(entry.TargetKeyId) != b || !sameInstant(created, entry.CreationDate) || !sameInstant(updated, entry.LastUpdatedDate) {
		t.Errorf("after UpdateAlias: -> %s created %v updated %v; want -> %s created %v updated %v",
			aws.ToString(entry.TargetKeyId), entry.CreationDate, entry.LastUpdatedDate, b, created, updated)
	}
	// A disabled key can be an alias target.
	e.disable(t, a)
	if _, err := e.client.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: aws.String(a)}); err != nil {
		t.Fatalf("UpdateAlias to a disabled key: %v", err)
	}
	_, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/app"), Plaintext: []byte("x")})
	expectAPIError(t, err, "DisabledException", e.keyARN(a)+" is disabled.")

	if _, err := e.client.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String("alias/app")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/app")})
	expectAPIError(t, err, "NotFoundException", "Alias "+e.aliasARN("alias/app")+" is not found.")
	if n := len(e.listAllAliases(t, nil)); n != 0 {
		t.Errorf("%d aliases after DeleteAlias", n)
	}
	// The key outlives its alias, and the name can be reused.
	e.describe(t, a)
	e.createAlias(t, "alias/app", b)
	if got := aws.ToString(e.describe(t, "alias/app").KeyId); got != b {
		t.Errorf("recreated alias -> %s, want %s", got, b)
	}
}

func TestE2EAliasErrors(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	key := e.newKey(t)
	pending := e.newKey(t)
	other := e.newKey(t)
	e.createAlias(t, "alias/taken", key)
	e.createAlias(t, "alias/on-pending", pending)
	e.scheduleDeletion(t, pending, 7)
	unknown := "0b7a4d2e-5c1f-4e3a-9d8b-7f6e5d4c3b2a"
	prefixMsg := `Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html`

	create := func(name, target string) error {
		_, err := e.client.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(name), TargetKeyId: aws.String(target)})
		return err
	}
	update := func(name, target string) error {
		_, err := e.client.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String(name), TargetKeyId: aws.String(target)})
		return err
	}
	del := func(name string) error {
		_, err := e.client.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String(name)})
		return err
	}
	cases := []struct {
		name      string
		call      func() error
		code, msg string // msg "" = any non-empty message; "-" = no message
	}{
		{"create without prefix", func() error { return create("my-alias", key) }, "ValidationException", prefixMsg},
		{"update without prefix", func() error { return update("my-alias", key) }, "ValidationException", prefixMsg},
		{"delete without prefix", func() error { return del("my-alias") }, "ValidationException", prefixMsg},
		{"create reserved alias/aws/", func() error { return create("alias/aws/x", key) }, "NotAuthorizedException", "-"},
		{"delete reserved alias/aws/", func() error { return del("alias/aws/ebs") }, "NotAuthorizedException", "-"},
		{"create duplicate", func() error { return create("alias/taken", key) }, "AlreadyExistsException",
			"An alias with the name " + e.aliasARN("alias/taken") + " already exists"},
		{"create duplicate to other key", func() error { return create("alias/taken", other) }, "AlreadyExistsException",
			"An alias with the name " + e.aliasARN("alias/taken") + " already exists"},
		{"create to pending-deletion key", func() error { return create("alias/new", pending) }, "KMSInvalidStateException",
			e.keyARN(pending) + " is pending deletion."},
		{"update to pending-deletion key", func() error { return update("alias/taken", pending) }, "KMSInvalidStateException",
			e.keyARN(pending) + " is pending deletion."},
		{"create to unknown key", func() error { return create("alias/new", unknown) }, "NotFoundException",
			"Key '" + e.keyARN(unknown) + "' does not exist"},
		{"create to malformed key id", func() error { return create("alias/new", "nope") }, "NotFoundException", "Invalid keyId 'nope'"},
		{"create to another region", func() error { return create("alias/new", "arn:aws:kms:eu-west-1:"+e2eAccount+":key/"+key) }, "NotFoundException",
			"Invalid arn eu-west-1"},
		{"create to an alias", func() error { return create("alias/new", "alias/taken") }, "ValidationException", "Aliases must refer to keys. Not aliases"},
		{"create to an alias ARN", func() error { return create("alias/new", e.aliasARN("alias/taken")) }, "ValidationException", "Aliases must refer to keys. Not aliases"},
		{"create with invalid characters", func() error { return create("alias/my alias!", key) }, "ValidationException",
			"1 validation error detected: Value 'alias/my alias!' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"},
		{"create with a colon", func() error { return create("alias/my:alias", key) }, "ValidationException", "alias/my:alias contains invalid characters for an alias"},
		{"create bare prefix", func() error { return create("alias/", key) }, "ValidationException", "alias/ contains invalid characters for an alias"},
		{"create too long", func() error { return create("alias/"+strings.Repeat("a", 251), key) }, "ValidationException",
			"1 validation error detected: Value 'alias/" + strings.Repeat("a", 251) + "' at 'aliasName' failed to satisfy constraint: Member must have length less than or equal to 256"},
		{"update unknown alias", func() error { return update("alias/ghost", key) }, "NotFoundException", "Alias " + e.aliasARN("alias/ghost") + " is not found."},
		{"delete unknown alias", func() error { return del("alias/ghost") }, "NotFoundException", "Alias " + e.aliasARN("alias/ghost") + " is not found."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			switch c.msg {
			case "-":
				// The SDK reports a generic error without a message as
				// "UnknownError"; the raw test below checks the wire.
				if ae := expectAPIErrorCode(t, err, c.code); ae != nil && ae.ErrorMessage() != "" && ae.ErrorMessage() != "UnknownError" {
					t.Errorf("message %q, want none", ae.ErrorMessage())
				}
			case "":
				expectAPIErrorCode(t, err, c.code)
			default:
				expectAPIError(t, err, c.code, c.msg)
			}
		})
	}
	t.Run("reserved alias on the wire", func(t *testing.T) {
		r := e.rawCall(t, "CreateAlias", `{"AliasName":"alias/aws/s3","TargetKeyId":"`+key+`"}`)
		expectRawError(t, r, 400, "NotAuthorizedException", "-")
	})
	t.Run("typed errors", func(t *testing.T) {
		expectTyped[*types.AlreadyExistsException](t, create("alias/taken", key))
		expectTyped[*types.KMSInvalidStateException](t, create("alias/new", pending))
		expectTyped[*types.NotFoundException](t, del("alias/ghost"))
	})
	// Nothing above changed the aliases; a 256-character name is fine.
	names := []string{}
	for _, a := range e.listAllAliases(t, nil) {
		names = append(names, aws.ToString(a.AliasName))
	}
	if !slices.Equal(names, []string{"alias/on-pending", "alias/taken"}) {
		t.Errorf("aliases = %v", names)
	}
	// The source key of UpdateAlias may be pending deletion (reference §4.3).
	if err := update("alias/on-pending", key); err != nil {
		t.Errorf("UpdateAlias away from a pending-deletion key: %v", err)
	}
	if err := update("alias/on-pending", key); err != nil {
		t.Errorf("UpdateAlias to the key it already names: %v", err)
	}
	if err := del("alias/on-pending"); err != nil {
		t.Errorf("DeleteAlias of a pending-deletion key's alias: %v", err)
	}
	e.createAlias(t, "alias/"+strings.Repeat("a", 250), key)
	e.createAlias(t, "alias/Mixed_Case-and/slash", key)
	if got := aws.ToString(e.describe(t, "alias/Mixed_Case-and/slash").KeyId); got != key {
		t.Errorf("alias with / _ - resolves to %s", got)
	}
}

func TestE2EListAliasesFilterAndPagination(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	a, b := e.newKey(t), e.newKey(t)
	var all []string
	for _, n := range []string{"a1", "a2", "a3", "a4", "a5"} {
		e.createAlias(t, "alias/"+n, a)
		all = append(all, "alias/"+n)
	}
	for _, n := range []string{"b1", "b2"} {
		e.createAlias(t, "alias/"+n, b)
		all = append(all, "alias/"+n)
	}

	page := func(in *kms.ListAliasesInput) []string {
		t.Helper()
		var names []string
		var marker *string
		for i := 0; ; i++ {
			if i > 10 {
				t.Fatal("ListAliases does not terminate")
			}
			in.Marker = marker
			out, err := e.client.ListAliases(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if in.Limit != nil && len(out.Aliases) > int(*in.Limit) {
				t.Errorf("page of %d with Limit %d", len(out.Aliases), *in.Limit)
			}
			if out.Truncated != (out.NextMarker != nil) {
				t.Errorf("Truncated %v with NextMarker %v", out.Truncated, out.NextMarker)
			}
			for _, al := range out.Aliases {
				names = append(names, aws.ToString(al.AliasName))
			}
			if !out.Truncated {
				return names
			}
			marker = out.NextMarker
		}
	}
	if got := page(&kms.ListAliasesInput{Limit: aws.Int32(2)}); !slices.Equal(got, all) {
		t.Errorf("all aliases with Limit 2: %v, want %v", got, all)
	}
	if got := page(&kms.ListAliasesInput{Limit: aws.Int32(1)}); !slices.Equal(got, all) {
		t.Errorf("all aliases with Limit 1: %v, want %v", got, all)
	}
	if got := page(&kms.ListAliasesInput{KeyId: aws.String(a), Limit: aws.Int32(2)}); !slices.Equal(got, all[:5]) {
		t.Errorf("aliases of a, Limit 2: %v", got)
	}
	if got := page(&kms.ListAliasesInput{KeyId: aws.String(e.keyARN(b))}); !slices.Equal(got, all[5:]) {
		t.Errorf("aliases of b by ARN: %v", got)
	}
	if got := page(&kms.ListAliasesInput{KeyId: aws.String(b), Limit: aws.Int32(1)}); !slices.Equal(got, all[5:]) {
		t.Errorf("aliases of b, Limit 1: %v", got)
	}
	for _, al := range e.listAllAliases(t, &kms.ListAliasesInput{KeyId: aws.String(b)}) {
		if aws.ToString(al.TargetKeyId) != b {
			t.Errorf("filtered entry %s -> %s", aws.ToString(al.AliasName), aws.ToString(al.TargetKeyId))
		}
	}
	// A key without aliases.
	c := e.newKey(t)
	out, err := e.client.ListAliases(ctx, &kms.ListAliasesInput{KeyId: aws.String(c)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Aliases) != 0 || out.Truncated {
		t.Errorf("aliases of a fresh key: %+v", out)
	}

	_, err = e.client.ListAliases(ctx, &kms.ListAliasesInput{Marker: aws.String("garbage")})
	expectAPIErrorCode(t, err, "InvalidMarkerException")
	expectTyped[*types.InvalidMarkerException](t, err)
	unknown := "0b7a4d2e-5c1f-4e3a-9d8b-7f6e5d4c3b2a"
	_, err = e.client.ListAliases(ctx, &kms.ListAliasesInput{KeyId: aws.String(unknown)})
	expectAPIError(t, err, "NotFoundException", "Key '"+e.keyARN(unknown)+"' does not exist")
	_, err = e.client.ListAliases(ctx, &kms.ListAliasesInput{KeyId: aws.String("alias/a1")})
	expectAPIError(t, err, "NotFoundException", "Invalid keyId 'alias/a1'")
}

func TestE2ETags(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newKey(t)
	tag := func(kv ...string) error {
		var tags []types.Tag
		for i := 0; i < len(kv); i += 2 {
			tags = append(tags, types.Tag{TagKey: aws.String(kv[i]), TagValue: aws.String(kv[i+1])})
		}
		_, err := e.client.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(id), Tags: tags})
		return err
	}
	list := func() string {
		t.Helper()
		out, err := e.client.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		if out.Truncated || out.NextMarker != nil {
			t.Errorf("ListResourceTags truncated with the default limit")
		}
		return tagPairs(out.Tags)
	}

	if got := list(); got != "" {
		t.Errorf("new key has tags %s", got)
	}
	if err := tag("env", "dev", "team", "pay"); err != nil {
		t.Fatal(err)
	}
	if err := tag("env", "prod", "cost", ""); err != nil {
		t.Fatal(err)
	}
	if got := list(); got != "env=prod,team=pay,cost=" {
		t.Errorf("tags = %s, want env=prod,team=pay,cost=", got)
	}
	// Untagging absent keys is silent.
	if _, err := e.client.UntagResource(ctx, &kms.UntagResourceInput{KeyId: aws.String(e.keyARN(id)), TagKeys: []string{"team", "absent"}}); err != nil {
		t.Fatal(err)
	}
	if got := list(); got != "env=prod,cost=" {
		t.Errorf("tags after untag = %s", got)
	}
	if _, err := e.client.UntagResource(ctx, &kms.UntagResourceInput{KeyId: aws.String(id), TagKeys: []string{"nothing"}}); err != nil {
		t.Fatal(err)
	}

	errCases := []struct {
		name      string
		err       error
		code, msg string
	}{
		{"aws: prefix", tag("aws:x", "1"), "TagException", "Tags beginning with aws: are reserved"},
		{"AWS: prefix", tag("AWS:x", "1"), "TagException", "Tags beginning with aws: are reserved"},
		{"duplicate keys", tag("d", "1", "d", "2"), "TagException", "Duplicate tag keys"},
		{"key of 129", tag(strings.Repeat("k", 129), "v"), "ValidationException",
			"1 validation error detected: Value '" + strings.Repeat("k", 129) + "' at 'tags.1.member.tagKey' failed to satisfy constraint: Member must have length less than or equal to 128"},
		{"value of 257", tag("ok", "v", "k", strings.Repeat("v", 257)), "ValidationException",
			"1 validation error detected: Value '" + strings.Repeat("v", 257) + "' at 'tags.2.member.tagValue' failed to satisfy constraint: Member must have length less than or equal to 256"},
		{"empty key", tag("", "v"), "ValidationException",
			"1 validation error detected: Value '' at 'tags.1.member.tagKey' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{"untag aws:", func() error {
			_, err := e.client.UntagResource(ctx, &kms.UntagResourceInput{KeyId: aws.String(id), TagKeys: []string{"aws:x"}})
			return err
		}(), "TagException", "Tags beginning with aws: are reserved"},
		{"alias as key id", func() error {
			_, err := e.client.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String("alias/x"), Tags: []types.Tag{{TagKey: aws.String("a"), TagValue: aws.String("b")}}})
			return err
		}(), "NotFoundException", "Invalid keyId 'alias/x'"},
	}
	for _, c := range errCases {
		t.Run(c.name, func(t *testing.T) {
			expectAPIError(t, c.err, c.code, c.msg)
			if c.code == "TagException" {
				expectTyped[*types.TagException](t, c.err)
			}
		})
	}
	if got := list(); got != "env=prod,cost=" {
		t.Errorf("refused requests changed the tags: %s", got)
	}
	if err := tag(strings.Repeat("k", 128), strings.Repeat("v", 256)); err != nil {
		t.Errorf("tag of maximal sizes: %v", err)
	}

	t.Run("50 per key", func(t *testing.T) {
		id := e.newKey(t)
		if _, err := e.client.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(id), Tags: nTags(49, "t")}); err != nil {
			t.Fatal(err)
		}
		// Overwriting existing keys does not count against the limit.
		if _, err := e.client.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(id), Tags: nTags(49, "t")}); err != nil {
			t.Fatal(err)
		}
		_, err := e.client.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(id), Tags: nTags(2, "new")})
		expectAPIError(t, err, "TagException", "Too many tags")
		if _, err := e.client.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(id), Tags: nTags(1, "new")}); err != nil {
			t.Fatalf("50th tag: %v", err)
		}
		out, err := e.client.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Tags) != 50 || out.Truncated {
			t.Errorf("%d tags, truncated %v", len(out.Tags), out.Truncated)
		}
	})

	t.Run("pagination", func(t *testing.T) {
		id := e.newKey(t)
		want := nTags(5, "p")
		if _, err := e.client.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(id), Tags: want}); err != nil {
			t.Fatal(err)
		}
		var got []types.Tag
		var sizes []int
		var marker *string
		for i := 0; ; i++ {
			if i > 5 {
				t.Fatal("ListResourceTags does not terminate")
			}
			out, err := e.client.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(id), Limit: aws.Int32(2), Marker: marker})
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, len(out.Tags))
			got = append(got, out.Tags...)
			if out.Truncated != (out.NextMarker != nil) {
				t.Errorf("Truncated %v with NextMarker %v", out.Truncated, out.NextMarker)
			}
			if !out.Truncated {
				break
			}
			marker = out.NextMarker
		}
		if tagPairs(got) != tagPairs(want) || !slices.Equal(sizes, []int{2, 2, 1}) {
			t.Errorf("paged tags %s in pages %v, want %s in [2 2 1]", tagPairs(got), sizes, tagPairs(want))
		}
		_, err := e.client.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(id), Marker: aws.String("garbage")})
		expectAPIErrorCode(t, err, "InvalidMarkerException")
	})

	t.Run("pending deletion", func(t *testing.T) {
		id := e.newKey(t)
		if _, err := e.client.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(id), Tags: nTags(1, "x")}); err != nil {
			t.Fatal(err)
		}
		e.scheduleDeletion(t, id, 7)
		_, err := e.client.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(id), Tags: nTags(1, "y")})
		expectAPIError(t, err, "KMSInvalidStateException", e.keyARN(id)+" is pending deletion.")
		_, err = e.client.UntagResource(ctx, &kms.UntagResourceInput{KeyId: aws.String(id), TagKeys: []string{"x0"}})
		expectAPIError(t, err, "KMSInvalidStateException", e.keyARN(id)+" is pending deletion.")
		// Listing still works (reference §4.4).
		out, err := e.client.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		if tagPairs(out.Tags) != "x0=v0" {
			t.Errorf("tags of a pending-deletion key: %s", tagPairs(out.Tags))
		}
	})

	t.Run("unknown key", func(t *testing.T) {
		unknown := "0b7a4d2e-5c1f-4e3a-9d8b-7f6e5d4c3b2a"
		_, err := e.client.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(unknown)})
		expectAPIError(t, err, "NotFoundException", "Key '"+e.keyARN(unknown)+"' does not exist")
		_, err = e.client.UntagResource(ctx, &kms.UntagResourceInput{KeyId: aws.String(unknown), TagKeys: []string{"a"}})
		expectAPIError(t, err, "NotFoundException", "Key '"+e.keyARN(unknown)+"' does not exist")
	})
}

func TestE2EAliasLimitPerKey(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newKey(t)
	for i := range 50 {
		e.createAlias(t, fmt.Sprintf("alias/many-%02d", i), id)
	}
	_, err := e.client.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/many-50"), TargetKeyId: aws.String(id)})
	expectAPIErrorCode(t, err, "LimitExceededException")
	expectTyped[*types.LimitExceededException](t, err)
	// Another key is not affected.
	other := e.newKey(t)
	e.createAlias(t, "alias/other", other)
	if n := len(e.listAllAliases(t, &kms.ListAliasesInput{KeyId: aws.String(id)})); n != 50 {
		t.Errorf("key has %d aliases, want 50", n)
	}
	// Repointing one of the full key's own aliases at it changes nothing.
	if _, err := e.client.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String("alias/many-00"), TargetKeyId: aws.String(id)}); err != nil {
		t.Errorf("UpdateAlias of an alias to the key it already names: %v", err)
	}
	// UpdateAlias must not let a key exceed 50 aliases either (reference
	// §2.3: UpdateAlias can fail with LimitExceededException).
	_, err = e.client.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String("alias/other"), TargetKeyId: aws.String(id)})
	expectAPIErrorCode(t, err, "LimitExceededException")
	if n := len(e.listAllAliases(t, &kms.ListAliasesInput{KeyId: aws.String(id)})); n != 50 {
		t.Errorf("after UpdateAlias the key has %d aliases, want at most 50", n)
	}
}

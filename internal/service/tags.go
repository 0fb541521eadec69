package service

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/openkms/kms/internal/authz"
	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/kmsapi"

	"github.com/openkms/kms/internal/store"
)

var base64URL = base64.RawURLEncoding

const maxTagsPerKey = 50

func (v *violations) tags(tags []kmsapi.Tag) {
	for i, t := range tags {
		v.tagMember(fmt.Sprintf("tags.%d.member.tagKey", i+1), t.TagKey, 1, 128)
		v.tagMember(fmt.Sprintf("tags.%d.member.tagValue", i+1), t.TagValue, 0, 256)
	}
}

// tagMember checks a tag's TagKey or TagValue, both required.
func (v *violations) tagMember(field, s string, min, max int) {
	if v.null[field] {
		v.add("Value null at '%s' failed to satisfy constraint: Member must not be null", field)
		return
	}
	v.strLen(field, s, min, max)
}

// checkTags applies AWS's tag rules to adding tags to a key that has
// existing ones.
func checkTags(existing, add []kmsapi.Tag) error {
	seen := make(map[string]bool, len(add))
	for _, t := range add {
		if strings.HasPrefix(strings.ToLower(t.TagKey), tagKeyReserved) {
			return newErr(fault.Tag, "Tags beginning with aws: are reserved")
		}
		if seen[t.TagKey] {
			return newErr(fault.Tag, "Duplicate tag keys")
		}
		seen[t.TagKey] = true
	}
	if len(mergeTags(existing, add)) > maxTagsPerKey {
		return newErr(fault.Tag, "Too many tags")
	}
	return nil
}

// mergeTags returns existing with add applied: new keys appended in order,
// existing keys given their new value.
func mergeTags(existing, add []kmsapi.Tag) []kmsapi.Tag {
	out := append([]kmsapi.Tag(nil), existing...)
	for _, t := range add {
		replaced := false
		for i := range out {
			if out[i].TagKey == t.TagKey {
				out[i].TagValue = t.TagValue
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, t)
		}
	}
	return out
}

// TagResource adds or overwrites tags on a key.
func (s *Service) TagResource(ctx context.Context, caller Caller, in *kmsapi.TagResourceInput) (*struct{}, error) {
	v := newViolations(ctx)
	v.keyID("keyId", in.KeyID)
	if in.Tags == nil {
		v.add("Value null at 'tags' failed to satisfy constraint: Member must not be null")
	}
	v.tags(in.Tags)
	if err := v.err(); err != nil {
		return nil, err
	}
	_, err := s.mutateKey(ctx, caller, in.KeyID, "TagResource", &authz.Conditions{Tags: in.Tags}, func(_ store.Tx, rec *keyrepo.KeyRecord, arn string) error {
		if rec.State.PendingDeletion() {
			return rec.State.Err(arn)
		}
		if err := checkTags(rec.Tags, in.Tags); err != nil {
			return err
		}
		rec.Tags = mergeTags(rec.Tags, in.Tags)
		return nil
	})
	return nil, err
}

// UntagResource removes tags by key; absent keys are ignored.
func (s *Service) UntagResource(ctx context.Context, caller Caller, in *kmsapi.UntagResourceInput) (*struct{}, error) {
	v := newViolations(ctx)
	v.keyID("keyId", in.KeyID)
	if in.TagKeys == nil {
		v.add("Value null at 'tagKeys' failed to satisfy constraint: Member must not be null")
	}
	for i, k := range in.TagKeys {
		v.strLen(fmt.Sprintf("tagKeys.%d.member", i+1), k, 1, 128)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	_, err := s.mutateKey(ctx, caller, in.KeyID, "UntagResource", &authz.Conditions{Multi: map[string][]string{"aws:tagkeys": in.TagKeys}}, func(_ store.Tx, rec *keyrepo.KeyRecord, arn string) error {
		if rec.State.PendingDeletion() {
			return rec.State.Err(arn)
		}
		for _, k := range in.TagKeys {
			if strings.HasPrefix(strings.ToLower(k), tagKeyReserved) {
				return newErr(fault.Tag, "Tags beginning with aws: are reserved")
			}
		}
		kept := rec.Tags[:0]
		for _, t := range rec.Tags {
			drop := false
			for _, k := range in.TagKeys {
				drop = drop || t.TagKey == k
			}
			if !drop {
				kept = append(kept, t)
			}
		}
		rec.Tags = kept
		return nil
	})
	return nil, err
}

// ListResourceTags lists a key's tags in the order they were added.
func (s *Service) ListResourceTags(ctx context.Context, caller Caller, in *kmsapi.ListResourceTagsInput) (*kmsapi.ListResourceTagsOutput, error) {
	v := newViolations(ctx)
	v.keyID("keyId", in.KeyID)
	v.paging(in.Limit, in.Marker)
	if err := v.err(); err != nil {
		return nil, err
	}
	marker, err := parseMarker(in.Marker)
	if err != nil {
		return nil, err
	}
	k, err := s.useKey(ctx, &caller, in.KeyID, keyrepo.IDOrARN, "kms:ListResourceTags", nil)
	if err != nil {
		return nil, err
	}
	pages := newListing("ListResourceTags", k.Rec.Region, k.Rec.ID)
	after, err := marker.position(pages)
	if err != nil {
		return nil, err
	}
	start := 0
	if after != "" {
		if start, err = strconv.Atoi(after); err != nil || start < 0 {
			return nil, errBadMarker
		}
	}
	tags := k.Rec.Tags
	start = min(start, len(tags))
	end := min(start+pageLimit(in.Limit, 50, 50), len(tags))
	out := &kmsapi.ListResourceTagsOutput{Tags: append([]kmsapi.Tag{}, tags[start:end]...)}
	if end < len(tags) {
		out.Truncated = true
		out.NextMarker = encodeMarker(pages, strconv.Itoa(end))
	}
	return out, nil
}

package service

import (
	"context"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/store"
)

// Authorization is internal/authz's; the service gives it what it reads
// lazily from the store.

// keyAliases lists the alias names of a key, for kms:ResourceAliases;
// a read that fails is the call's KMSInternalException.
func (s *Service) keyAliases(ctx context.Context, region, id string) ([]string, error) {
	var out []string
	prefix := keyrepo.KeyAliasPrefix(region, id)
	err := s.view(ctx, "read the key's aliases", func(tx store.Tx) error {
		out = out[:0]
		return tx.Scan(prefix, nil, func(k, _ []byte) (bool, error) {
			out = append(out, string(k[len(prefix):]))
			return true, nil
		})
	})
	return out, err
}

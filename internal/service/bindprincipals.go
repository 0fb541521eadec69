package service

import (
	"bytes"
	"context"
	"errors"
	"slices"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/policy"
	"github.com/openkms/kms/internal/store"
)

// bindStored binds the key policies and grants a store holds from before
// they were bound to the unique ids of the IAM users and roles they name
// (policy.Policy.Bind, keyrepo.GrantRecord.Bound): such a record matched a
// user or role by its ARN alone, so one deleted and made again under the
// same name inherited what the old one was given. Each is bound to the
// user or role of that name that exists now, the one it was most likely
// meant for; an ARN that names no one now is bound to no one (shown as
// written by GetKeyPolicy and ListGrants, and matching no caller).
//
// It runs when a service starts, before it serves. A record bound already
// is passed over with a byte search. A record that does not decode is
// logged and left as it is, for the operations that read it to report. A
// record that changes between the read and the write (another server of a
// cluster binding it, or a new policy put) is left as the other writer
// left it. A pass that finds every record bound, or binds every one it
// found, marks the store (bindingRecord), and a later start reads that
// mark alone: every record written since is bound as it is written, and a
// pass over every key and grant at each start would grow with the store.
// It returns how many key records and grants it bound.
func (s *Service) bindStored(ctx context.Context) (keysBound, grantsBound int, err error) {
	if s.principalID == nil {
		return 0, 0, nil // nothing to bind to
	}
	type found struct {
		name []byte
		arns []string // the users and roles the record names
	}
	var keyRecs, grantRecs []found
	marked, whole := false, true // whole: no record was left out
	err = s.store.View(ctx, func(tx store.Tx) error {
		keyRecs, grantRecs, whole = nil, nil, true
		// A mark that does not read (changed outside the server) is no
		// mark: the pass runs, as it did before marks.
		if v, err := tx.Get(bindingRecord); err == nil && string(v) == bindingDone {
			marked = true
			return nil
		}
		// A record changed outside the server is left as it is: the
		// calls that read it fail.
		skipped := func(err error) {
			whole = false
			s.log.Error("stored record left unbound", "err", err)
		}
		err := store.ScanReadable(tx, []byte("key/"), nil, func(k, v []byte) (bool, error) {
			if bytes.Contains(v, []byte(`"policyPrincipalIds":`)) || !namesUserOrRole(v) {
				return true, nil
			}
			var rec keyrepo.KeyRecord
			if err := keyrepo.UnmarshalRecord(v, &rec); err != nil {
				// Left as it is: using the key reports it.
				whole = false
				s.log.Error("stored key record left unbound", "record", string(k), "err", err)
				return true, nil
			}
			if arns := policyUsersAndRoles(rec.Policy); rec.PolicyPrincipalIDs == nil && len(arns) > 0 {
				keyRecs = append(keyRecs, found{bytes.Clone(k), arns})
			}
			return true, nil
		}, skipped)
		if err != nil {
			return err
		}
		return store.ScanReadable(tx, []byte("grant/"), nil, func(k, v []byte) (bool, error) {
			if bytes.Contains(v, []byte(`"bound":true`)) {
				return true, nil
			}
			var g keyrepo.GrantRecord
			if err := keyrepo.UnmarshalRecord(v, &g); err != nil {
				whole = false
				s.log.Error("stored grant left unbound", "record", string(k), "err", err)
				return true, nil
			}
			if !g.Bound {
				grantRecs = append(grantRecs, found{bytes.Clone(k), []string{g.Grantee, g.Retiring}})
			}
			return true, nil
		}, skipped)
	})
	if err != nil || marked {
		return 0, 0, err
	}
	if len(keyRecs)+len(grantRecs) == 0 {
		if !whole {
			return 0, 0, nil
		}
		return 0, 0, s.store.Update(ctx, func(tx store.Tx) error { return tx.Put(bindingRecord, []byte(bindingDone)) })
	}
	// The ids, read before the transaction that writes them: the
	// directory reads the store on its own.
	ids := make(map[string]string)
	for _, f := range append(keyRecs, grantRecs...) {
		for _, arn := range f.arns {
			if _, ok := ids[arn]; ok || arn == "" {
				continue
			}
			if ids[arn], err = s.uniqueID(ctx, arn); err != nil {
				return 0, 0, err
			}
		}
	}
	var bound []*keyrepo.KeyRecord
	err = s.store.Update(ctx, func(tx store.Tx) error {
		keysBound, grantsBound, bound = 0, 0, nil
		all := whole // every record found is bound by the end
		for _, f := range keyRecs {
			var rec keyrepo.KeyRecord
			if err := getJSON(tx, f.name, &rec); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				return err
			}
			arns := policyUsersAndRoles(rec.Policy)
			if rec.PolicyPrincipalIDs != nil || len(arns) == 0 {
				continue
			}
			bind := make(map[string]string, len(arns))
			for _, arn := range arns {
				id, ok := ids[arn]
				if !ok {
					break // a policy put since the read, and bound by then
				}
				bind[arn] = id
			}
			if len(bind) < len(arns) {
				all = false // an unbound policy naming others: left to a later start
				continue
			}
			rec.PolicyPrincipalIDs = bind
			if err := putJSON(tx, f.name, &rec); err != nil {
				return err
			}
			keysBound++
			bound = append(bound, &rec)
		}
		for _, f := range grantRecs {
			var g keyrepo.GrantRecord
			if err := getJSON(tx, f.name, &g); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				return err
			}
			if g.Bound {
				continue
			}
			g.Bound, g.GranteeID, g.RetiringID = true, ids[g.Grantee], ids[g.Retiring]
			if err := putJSON(tx, f.name, &g); err != nil {
				return err
			}
			grantsBound++
		}
		if !all {
			return nil
		}
		return tx.Put(bindingRecord, []byte(bindingDone))
	})
	if err != nil {
		return 0, 0, err
	}
	for _, rec := range bound {
		s.invalidateKey(rec)
	}
	return keysBound, grantsBound, nil
}

// bindingRecord marks a store whose key policies and grants are all
// bound to the unique ids of the principals they name (bindStored).
var bindingRecord = []byte("meta/principal-binding")

const bindingDone = "v1"

// namesUserOrRole reports whether a key record's bytes may name an IAM user
// or role, in its policy or anywhere else: a cheap test before decoding.
func namesUserOrRole(v []byte) bool {
	return bytes.Contains(v, []byte(":user/")) || bytes.Contains(v, []byte(":role/"))
}

// policyUsersAndRoles returns the IAM user and role ARNs a stored key
// policy names as principals, each once; none if it does not parse.
func policyUsersAndRoles(doc string) []string {
	p, err := policy.ParseStoredResource(doc)
	if err != nil {
		return nil
	}
	var arns []string
	for _, st := range p.Statements {
		for _, ps := range []*policy.Principals{st.Principal, st.NotPrincipal} {
			if ps == nil {
				continue
			}
			for _, a := range ps.AWS {
				if policy.IsUserOrRole(a) && !slices.Contains(arns, a) {
					arns = append(arns, a)
				}
			}
		}
	}
	return arns
}

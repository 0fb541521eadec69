package keyrepo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
)

// Key material is sealed together with the attributes of its key that say
// what it may do: its key spec, key usage and origin. Those attributes are
// stored in the clear in the key's record; bound into the sealed value,
// they cannot be changed in the store without the material failing to
// load. Otherwise a change of origin to EXTERNAL would open the import
// path to a key whose material the service made (and let whoever can
// write the store put in material of their own), and a change of spec or
// usage would use one material with another algorithm.
//
// The sealed plaintext is materialMagic, then the spec, the usage and the
// origin each followed by a zero byte, then the material. Material sealed
// before the binding existed has no header; BindMaterials binds it when a
// server starts, and loading refuses it afterwards.
const materialMagic = "openkms-material-v1\x00"

// errUnbound is the error of material whose sealed value is not bound to
// its key's attributes, or is bound to others.
func errUnbound(id string) error {
	return errors.New("key material of " + id + " is not bound to the key's spec, usage and origin")
}

// bound returns material with the header that binds it to rec.
func bound(rec *KeyRecord, material []byte) []byte {
	b := make([]byte, 0, len(materialMagic)+len(rec.KeySpec)+len(rec.KeyUsage)+len(rec.Origin)+3+len(material))
	b = append(b, materialMagic...)
	for _, a := range []string{rec.KeySpec, rec.KeyUsage, rec.Origin} {
		b = append(b, a...)
		b = append(b, 0)
	}
	return append(b, material...)
}

// unbind returns the material of a bound plaintext if its header names
// rec's attributes; ok is false for a plaintext without the header (sealed
// before the binding existed).
func unbind(rec *KeyRecord, plain []byte) (material []byte, ok bool, err error) {
	rest, found := bytes.CutPrefix(plain, []byte(materialMagic))
	if !found {
		return nil, false, nil
	}
	for _, want := range []string{rec.KeySpec, rec.KeyUsage, rec.Origin} {
		got, after, found := bytes.Cut(rest, []byte{0})
		if !found || string(got) != want {
			return nil, true, errUnbound(rec.ID)
		}
		rest = after
	}
	return rest, true, nil
}

// SealMaterial seals material as version v of the key rec describes, in
// region (the record's own, or a replica's), bound to rec's attributes.
func (r *Repo) SealMaterial(rec *KeyRecord, region string, v uint32, material []byte) []byte {
	b := bound(rec, material)
	defer clear(b)
	return r.root.Seal(MaterialAAD(region, rec.ID, v), b)
}

// openMaterial opens version v of the key rec describes, sealed for
// region, and checks it is bound to rec's attributes. The caller clears
// the material.
func openMaterial(root *keys.RootKey, rec *KeyRecord, region string, v uint32, sealed []byte) ([]byte, error) {
	plain, err := root.Open(MaterialAAD(region, rec.ID, v), sealed)
	if err != nil {
		return nil, errors.New("key material of " + rec.ID + " does not open under the root key")
	}
	material, ok, err := unbind(rec, plain)
	if err != nil || !ok {
		clear(plain)
		return nil, errUnbound(rec.ID)
	}
	return material, nil
}

// MaterialRecord marks a store whose key material is bound to its keys'
// attributes (BindMaterials).
var MaterialRecord = []byte("meta/material-binding")

const materialBound = "v1"

// BindMaterials binds the key material of a store sealed before material
// was bound to its key's attributes: each such sealed value is opened and
// sealed again with its key's spec, usage and origin, in one transaction.
// It returns how many it bound. A store already bound is only checked for
// its mark: running it again does nothing. It trusts the key records as
// they are when it runs, once.
func BindMaterials(ctx context.Context, st store.Store, root *keys.RootKey) (int, error) {
	n := 0
	err := st.Update(ctx, func(tx store.Tx) error {
		n = 0
		if v, err := tx.Get(MaterialRecord); err == nil && string(v) == materialBound {
			return nil
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		var recs []KeyRecord
		err := tx.Scan([]byte("key/"), nil, func(_, v []byte) (bool, error) {
			var rec KeyRecord
			if err := UnmarshalRecord(v, &rec); err != nil {
				return false, err
			}
			recs = append(recs, rec)
			return true, nil
		})
		if err != nil {
			return err
		}
		for i := range recs {
			rec := &recs[i]
			type version struct {
				name []byte
				vr   VersionRecord
			}
			var vers []version
			err := tx.Scan(VersionPrefix(rec.Region, rec.ID), nil, func(k, v []byte) (bool, error) {
				var vr VersionRecord
				if err := UnmarshalRecord(v, &vr); err != nil {
					return false, err
				}
				vers = append(vers, version{bytes.Clone(k), vr})
				return true, nil
			})
			if err != nil {
				return err
			}
			for _, ver := range vers {
				if ver.vr.Sealed == nil {
					continue
				}
				plain, err := root.Open(MaterialAAD(rec.Region, rec.ID, ver.vr.Version), ver.vr.Sealed)
				if err != nil {
					return fmt.Errorf("key material of %s version %d does not open under the root key", rec.ID, ver.vr.Version)
				}
				_, ok, err := unbind(rec, plain)
				if ok || err != nil {
					clear(plain)
					if err != nil {
						return fmt.Errorf("version %d: %w", ver.vr.Version, err)
					}
					continue
				}
				withBinding := bound(rec, plain)
				ver.vr.Sealed = root.Seal(MaterialAAD(rec.Region, rec.ID, ver.vr.Version), withBinding)
				clear(withBinding)
				clear(plain)
				b, err := json.Marshal(&ver.vr)
				if err != nil {
					return err
				}
				if err := tx.Put(ver.name, b); err != nil {
					return err
				}
				n++
			}
		}
		return tx.Put(MaterialRecord, []byte(materialBound))
	})
	return n, err
}

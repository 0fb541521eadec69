package service

import (
	"crypto/subtle"
	"errors"
	"time"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/store"
)

// The key materials of an EXTERNAL key. Its first imported material is
// version 1 and is the key's for good; a symmetric encryption key may have
// more: material imported with ImportType NEW_KEY_MATERIAL waits as the
// version after the current one (PendingRotation) until RotateKeyOnDemand
// makes it current. Every version but a pending one is permanently
// associated with the key: the key is usable only while all of those are
// imported and unexpired, since ciphertexts under any of them must
// decrypt. Each material has its own expiry; the key record sums them up
// (settleMaterials).

// materials reads the version records of key rec in version order. A
// version written before each material had its own expiry gets the key
// record's, which was then its.
func materials(tx store.Tx, rec *keyrepo.KeyRecord) ([]*keyrepo.VersionRecord, error) {
	var vers []*keyrepo.VersionRecord
	err := tx.Scan(keyrepo.VersionPrefix(rec.Region, rec.ID), nil, func(_, v []byte) (bool, error) {
		vr := new(keyrepo.VersionRecord)
		if err := keyrepo.UnmarshalRecord(v, vr); err != nil {
			return false, err
		}
		if vr.ExpirationModel == "" && vr.Sealed != nil && vr.Version == rec.CurrentVersion {
			vr.ExpirationModel, vr.ValidTo = rec.ExpirationModel, rec.ValidTo
		}
		vers = append(vers, vr)
		return true, nil
	})
	return vers, err
}

// materialID is the id of the material of key id's version v in region,
// or "" if the key has no such version.
func materialID(tx store.Tx, region, id string, v uint32) (string, error) {
	var vr keyrepo.VersionRecord
	if err := getJSON(tx, keyrepo.VersionKey(region, id, v), &vr); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", nil
		}
		return "", err
	}
	return vr.MaterialID, nil
}

// materialByID is the version holding the material with id, or nil.
func materialByID(vers []*keyrepo.VersionRecord, id string) *keyrepo.VersionRecord {
	for _, vr := range vers {
		if subtle.ConstantTimeCompare([]byte(vr.MaterialID), []byte(id)) == 1 {
			return vr
		}
	}
	return nil
}

// pendingMaterial is the version imported for on-demand rotation, or nil.
func pendingMaterial(vers []*keyrepo.VersionRecord) *keyrepo.VersionRecord {
	for _, vr := range vers {
		if vr.PendingRotation {
			return vr
		}
	}
	return nil
}

// imported reports whether vr holds material that has not expired at now.
func imported(vr *keyrepo.VersionRecord, now time.Time) bool {
	return vr.Sealed != nil && (vr.ValidTo == nil || now.Before(*vr.ValidTo))
}

// forget deletes vr's material, keeping its id so that only the same
// material can come back.
func forget(vr *keyrepo.VersionRecord) {
	vr.Sealed, vr.ExpirationModel, vr.ValidTo = nil, "", nil
}

// complete reports whether every material permanently associated with
// the key is imported and unexpired at now.
func complete(rec *keyrepo.KeyRecord, vers []*keyrepo.VersionRecord, now time.Time) bool {
	if rec.CurrentVersion == 0 {
		return false
	}
	for _, vr := range vers {
		if !vr.PendingRotation && !imported(vr, now) {
			return false
		}
	}
	return true
}

// settleMaterials writes the versions and brings the key record in line
// with them: its expiry fields, its place in the index of expiring keys,
// and its state (PendingImport while a material of the key is missing,
// Enabled again once all are back; a key pending deletion stays so). The
// caller writes rec.
func settleMaterials(tx store.Tx, rec *keyrepo.KeyRecord, vers []*keyrepo.VersionRecord, now time.Time) error {
	rec.ExpirationModel, rec.ValidTo, rec.PendingValidTo = "", nil, nil
	for _, vr := range vers {
		if err := putJSON(tx, keyrepo.VersionKey(rec.Region, rec.ID, vr.Version), vr); err != nil {
			return err
		}
		switch {
		case vr.Sealed == nil:
		case vr.PendingRotation:
			rec.PendingValidTo = vr.ValidTo
		case vr.ValidTo != nil:
			if rec.ValidTo == nil || vr.ValidTo.Before(*rec.ValidTo) {
				rec.ValidTo = vr.ValidTo
			}
			rec.ExpirationModel = expiresModel
		case rec.ExpirationModel == "":
			rec.ExpirationModel = doesNotExpireModel
		}
	}
	switch ok := complete(rec, vers, now); {
	case rec.State.PendingDeletion():
	case !ok:
		rec.State = keyrepo.StatePendingImport
	case rec.State == keyrepo.StatePendingImport:
		rec.State = keyrepo.StateEnabled
	}
	if rec.ValidTo != nil || rec.PendingValidTo != nil {
		return tx.Put(keyrepo.ImportExpiryKey(rec.Region, rec.ID), nil)
	}
	return tx.Delete(keyrepo.ImportExpiryKey(rec.Region, rec.ID))
}

// expiryDue reports whether some imported material of rec has passed its
// ValidTo at now.
func expiryDue(rec *keyrepo.KeyRecord, now time.Time) bool {
	return rec.ValidTo != nil && !now.Before(*rec.ValidTo) || rec.PendingValidTo != nil && !now.Before(*rec.PendingValidTo)
}

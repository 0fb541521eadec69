package keyrepo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
)

// LayoutRecord marks a store whose key, alias and grant records carry
// their region in their names (records.go). Stores written before keys
// had regions lack it; MigrateRegions moves their records.
var LayoutRecord = []byte("meta/key-layout")

const layoutRegions = "regions"

// regionalPrefixes are the record kinds whose names gained a region.
var regionalPrefixes = []string{
	"key/", "keyver/", "acctkey/", "alias/", "keyalias/", "pendingdel/", "rotation/", "importexpiry/",
	"grant/", "retiregrant/", "importtoken/",
}

// MigrateRegions moves the records of a store written before keys had
// regions into region, the one region that server served, in one
// transaction: each record is renamed to carry the region, key, grant and
// import token records gain a "region" member, and key material is sealed
// again for its version record's new name (the additional data of a
// sealed value is its record's name). It returns how many records it
// moved. A store already migrated, or a new one, is only marked: running
// it again does nothing, even with the mark removed, and concurrent
// servers sharing a store migrate it once.
func MigrateRegions(ctx context.Context, st store.Store, root *keys.RootKey, region string) (int, error) {
	if region == "" {
		return 0, errors.New("keyrepo: MigrateRegions needs a region")
	}
	moved := 0
	err := st.Update(ctx, func(tx store.Tx) error {
		moved = 0
		if v, err := tx.Get(LayoutRecord); err == nil && string(v) == layoutRegions {
			return nil
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		type rec struct{ name, value []byte }
		var old []rec
		for _, p := range regionalPrefixes {
			err := tx.Scan([]byte(p), nil, func(k, v []byte) (bool, error) {
				old = append(old, rec{bytes.Clone(k), bytes.Clone(v)})
				return true, nil
			})
			if err != nil {
				return err
			}
		}
		// A key record named with its region means the store has the
		// layout already: its mark was removed, by someone who can write
		// the store, and moving the records again would name every key
		// as none.
		for _, r := range old {
			if rest, ok := bytes.CutPrefix(r.name, []byte("key/")); ok && bytes.IndexByte(rest, '/') >= 0 {
				return tx.Put(LayoutRecord, []byte(layoutRegions))
			}
		}
		for _, r := range old {
			name, value, err := migrateRecord(string(r.name), r.value, root, region)
			if err != nil {
				return fmt.Errorf("record %s: %w", r.name, err)
			}
			if name != string(r.name) {
				if err := tx.Delete(r.name); err != nil {
					return err
				}
			}
			if err := tx.Put([]byte(name), value); err != nil {
				return err
			}
			moved++
		}
		return tx.Put(LayoutRecord, []byte(layoutRegions))
	})
	return moved, err
}

// migrateRecord returns the name and value a record stored before keys
// had regions has in region.
func migrateRecord(name string, value []byte, root *keys.RootKey, region string) (string, []byte, error) {
	kind, rest, _ := strings.Cut(name, "/")
	switch kind {
	case "key", "grant":
		v, err := withRegion(value, region)
		return kind + "/" + region + "/" + rest, v, err
	case "importtoken":
		v, err := withRegion(value, region)
		return name, v, err
	case "keyver":
		newName := kind + "/" + region + "/" + rest
		v, err := resealed(value, root, name, newName)
		return newName, v, err
	case "pendingdel", "rotation", "importexpiry", "keyalias":
		return kind + "/" + region + "/" + rest, value, nil
	case "acctkey", "alias": // <kind>/<account>/<rest>
		account, tail, _ := strings.Cut(rest, "/")
		return kind + "/" + account + "/" + region + "/" + tail, value, nil
	case "retiregrant": // retiregrant/<principal>/<key-id>/<grant-id>
		i := strings.LastIndexByte(rest, '/')
		j := -1
		if i > 0 {
			j = strings.LastIndexByte(rest[:i], '/')
		}
		if j < 0 {
			return "", nil, errors.New("malformed name")
		}
		return kind + "/" + rest[:j] + "/" + region + rest[j:], value, nil
	}
	return "", nil, errors.New("unknown record kind")
}

// withRegion sets the "region" member of a JSON record, keeping the rest.
func withRegion(value []byte, region string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(value, &m); err != nil {
		return nil, err
	}
	m["region"], _ = json.Marshal(region)
	return json.Marshal(m)
}

// resealed opens a version record's sealed material, bound to its old
// name, and seals it for its new name.
func resealed(value []byte, root *keys.RootKey, oldName, newName string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(value, &m); err != nil {
		return nil, err
	}
	raw, ok := m["sealed"]
	if !ok || string(raw) == "null" {
		return value, nil // imported material that was deleted or expired
	}
	var sealed []byte
	if err := json.Unmarshal(raw, &sealed); err != nil {
		return nil, err
	}
	material, err := root.Open([]byte(oldName), sealed)
	if err != nil {
		return nil, errors.New("key material does not open under the root key")
	}
	defer clear(material)
	m["sealed"], _ = json.Marshal(root.Seal([]byte(newName), material))
	return json.Marshal(m)
}

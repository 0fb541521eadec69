package store

import (
	"encoding/json"
	"fmt"
)

// GetJSON reads the record under key into v. A missing record is
// ErrNotFound; a record that does not decode is an error naming the key.
func GetJSON(tx Tx, key []byte, v any) error {
	b, err := tx.Get(key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("record %s is corrupt: %w", key, err)
	}
	return nil
}

// PutJSON stores v under key as JSON.
func PutJSON(tx Tx, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Put(key, b)
}

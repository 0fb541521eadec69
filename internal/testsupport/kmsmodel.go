package testsupport

import (
	"encoding/json"
	"fmt"
	"slices"
)

// WithNewerKMS returns a botocore KMS service model (service-2.json) with
// what the API gained after it, as internal/e2e/testdata/kms-model/newer.json
// lists it: operations and shapes to add, values to add to existing
// enumerations, and members to add to existing structures. Each operation
// added gets the name and the HTTP binding botocore wants (every KMS
// operation is a POST to /). What the model has already is an error when
// strict is set (the overlay only adds, and a newer model put in place
// shows what to drop from it), and is kept as the model has it otherwise
// (a machine's botocore may be newer than the overlay).
func WithNewerKMS(model, newer []byte, strict bool) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(model, &m); err != nil {
		return nil, fmt.Errorf("the model: %w", err)
	}
	var ops, shapes map[string]map[string]any
	if err := json.Unmarshal(m["operations"], &ops); err != nil {
		return nil, fmt.Errorf("the model's operations: %w", err)
	}
	if err := json.Unmarshal(m["shapes"], &shapes); err != nil {
		return nil, fmt.Errorf("the model's shapes: %w", err)
	}
	var add struct {
		Operations map[string]map[string]any
		Shapes     map[string]map[string]any
		EnumValues map[string][]string
		Members    map[string]map[string]any
	}
	if err := json.Unmarshal(newer, &add); err != nil {
		return nil, fmt.Errorf("the additions: %w", err)
	}
	has := func(what string) error {
		if strict {
			return fmt.Errorf("the additions: %s is in the model already", what)
		}
		return nil
	}
	for name, op := range add.Operations {
		if _, ok := ops[name]; ok {
			if err := has("operation " + name); err != nil {
				return nil, err
			}
			continue
		}
		op["name"] = name
		op["http"] = map[string]any{"method": "POST", "requestUri": "/"}
		ops[name] = op
	}
	for name, s := range add.Shapes {
		if _, ok := shapes[name]; ok {
			if err := has("shape " + name); err != nil {
				return nil, err
			}
			continue
		}
		shapes[name] = s
	}
	for name, values := range add.EnumValues {
		enum, ok := shapes[name]["enum"].([]any)
		if !ok {
			return nil, fmt.Errorf("the additions: %s is not an enumeration of the model", name)
		}
		for _, v := range values {
			if slices.Contains(enum, any(v)) {
				if err := has(name + " value " + v); err != nil {
					return nil, err
				}
				continue
			}
			enum = append(enum, v)
		}
		shapes[name]["enum"] = enum
	}
	for name, members := range add.Members {
		ms, ok := shapes[name]["members"].(map[string]any)
		if !ok || shapes[name]["type"] != "structure" {
			return nil, fmt.Errorf("the additions: %s is not a structure of the model", name)
		}
		for member, ref := range members {
			if _, ok := ms[member]; ok {
				if err := has(name + " member " + member); err != nil {
					return nil, err
				}
				continue
			}
			ms[member] = ref
		}
	}
	var err error
	if m["operations"], err = json.Marshal(ops); err != nil {
		return nil, err
	}
	if m["shapes"], err = json.Marshal(shapes); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

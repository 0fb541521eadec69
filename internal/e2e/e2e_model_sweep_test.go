package e2e_test

// The model-driven validation sweep: for every operation of AWS's KMS
// service model (testdata/kms-model), every constrained member of its
// input is broken on an otherwise valid request (see sweepInputs), and the
// server must refuse it as AWS's request validation does (reference
// §1.3): HTTP 400, ValidationException, the Coral message for each
// violation, and nothing changed in the store.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/store"
)

// sweepInput is an operation's minimal valid input and how the server
// answers it: "" for success, else the error's __type.
type sweepInput struct {
	body   map[string]any
	answer string
}

// TestModelValidationSweep breaks every input constraint of every
// operation in AWS's model on an otherwise valid request, one at a time
// and several at once, and checks that the server refuses each as AWS
// does, for a caller that may do anything or nothing, and as a dry run;
// then that the valid request is not refused for its input, and that
// values at the model's limits pass validation.
func TestModelValidationSweep(t *testing.T) {
	t.Parallel()
	model := loadKMSModel(t)
	addSweepMembers(t, model)
	e := newKMSEnv(t)
	inputs := sweepInputs(t, e)
	// AWS validates a request before it authorizes it: a caller that may
	// do nothing gets the same answers.
	u := e.newUser(t, "sweep-nobody")
	nobody := identity.AccessKey{ID: u.akid, Secret: u.secret}
	ops := slices.Sorted(maps.Keys(model.Operations))
	if missing := slices.DeleteFunc(slices.Clone(ops), func(op string) bool { _, ok := inputs[op]; return ok }); len(missing) > 0 {
		t.Fatalf("no valid input for %v: add them to sweepInputs", missing)
	}
	for _, op := range ops {
		t.Run(op, func(t *testing.T) {
			s := &sweeper{t: t, model: model, enumShown: sweepEnumShown[op]}
			input := model.Operations[op].Input.Shape
			in := inputs[op]
			cases := s.cases(input, nil, nil, "")
			if len(cases) == 0 {
				t.Fatal("no cases")
			}
			known := sweepKnown[op]
			cases = append(cases, combined(cases, known)...)
			// A dry run is validated as any request: AWS validates the
			// request before it looks at DryRun.
			_, dryRun := model.Shapes[input].Members["DryRun"]
			for _, c := range cases {
				body := cloneBody(t, in.body)
				c.change(body)
				e.sweepCase(t, e.creds, op, c.name, body, c.want, known)
				e.sweepCase(t, nobody, op, c.name+" (by a user with no permission)", body, c.want, known)
				if dryRun {
					body["DryRun"] = true
					e.sweepCase(t, e.creds, op, c.name+" (dry run)", body, c.want, known)
				}
			}
			e.sweepValid(t, op, in)
			// Sent by the user who may do nothing, they are refused once
			// validated, before any work (an RSA_4096 key pair) or change.
			for _, c := range s.limitCases(input) {
				body := cloneBody(t, in.body)
				c.change(body)
				e.sweepWithinLimits(t, nobody, op, c.name, body)
			}
		})
	}
}

// sweepValid checks that op's valid input is answered as in says.
func (e *kmsEnv) sweepValid(t *testing.T, op string, in sweepInput) {
	t.Helper()
	raw, err := json.Marshal(in.body)
	if err != nil {
		t.Fatal(err)
	}
	r := e.rawCall(t, op, string(raw))
	got := ""
	if r.status != 200 {
		got, _ = r.json(t)["__type"].(string)
	}
	if got != in.answer {
		t.Errorf("the valid input %s answered %d %q, want %q", raw, r.status, r.body, in.answer)
	}
}

// sweepWithinLimits checks that body, whose members are all within the
// model's limits, passes request validation, whatever the operation then
// makes of it.
func (e *kmsEnv) sweepWithinLimits(t *testing.T, creds identity.AccessKey, op, name string, body map[string]any) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	r := e.rawCallAs(t, creds, op, string(raw))
	var m struct{ Message string }
	_ = json.Unmarshal(r.body, &m)
	if strings.Contains(m.Message, " detected: Value ") {
		t.Errorf("%s, within the model's limits, is refused: %.300q", name, m.Message)
	}
}

// sweepCase sends body to op and checks that it is refused as want says
// (or, for a known case, as known says) and changes nothing.
func (e *kmsEnv) sweepCase(t *testing.T, creds identity.AccessKey, op, name string, body map[string]any, want []string, known map[string]sweepAnswer) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	before := e.storeSnapshot(t)
	r := e.rawCallAs(t, creds, op, string(raw))
	var problem string
	base, _, _ := strings.Cut(name, " (")
	if k, ok := known[base]; ok {
		problem = checkAnswer(r, k)
	} else {
		problem = checkViolations(r, want)
	}
	switch pending := isPending(op, base); {
	case problem != "" && !pending:
		t.Errorf("%s: %s", name, problem)
	case problem == "" && pending:
		t.Errorf("%s: answers as AWS does now: take it out of sweepPending", name)
	}
	if after := e.storeSnapshot(t); after != before {
		t.Errorf("%s: the refused request changed the store", name)
	}
}

// combined are cases breaking several members at once, none of them
// answered otherwise (known): the first case with the first after it in
// another member, and the first case of every member together.
func combined(cases []sweepCase, known map[string]sweepAnswer) []sweepCase {
	var firsts []sweepCase
	for _, c := range cases {
		if _, ok := known[c.name]; ok {
			continue
		}
		if len(firsts) == 0 || top(firsts[len(firsts)-1].name) != top(c.name) {
			firsts = append(firsts, c)
		}
	}
	var out []sweepCase
	for _, n := range []int{2, len(firsts)} {
		if n < 2 || n > len(firsts) || (n == len(firsts) && len(out) > 0 && n == 2) {
			continue
		}
		parts := firsts[:n]
		c := sweepCase{change: func(body map[string]any) {
			for _, p := range parts {
				p.change(body)
			}
		}}
		for _, p := range parts {
			c.name = strings.TrimPrefix(c.name+" and "+p.name, " and ")
			c.want = append(c.want, p.want...)
		}
		out = append(out, c)
	}
	return out
}

// isPending reports whether a case, or a part of a combined one, is one
// of the op's entries in sweepPending.
func isPending(op, name string) bool {
	if slices.Contains(sweepPending[op], name) {
		return true
	}
	for _, part := range strings.Split(name, " and ") {
		if slices.Contains(sweepPending[op], part) {
			return true
		}
	}
	return false
}

// sweepAnswer is an error answer: its __type and message.
type sweepAnswer struct{ typ, msg string }

func checkAnswer(r rawResponse, want sweepAnswer) string {
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil || r.status != 400 || m["__type"] != want.typ || m["message"] != want.msg {
		return fmt.Sprintf("answered %d %.300q, want 400 %s %q", r.status, r.body, want.typ, want.msg)
	}
	return ""
}

func top(caseName string) string {
	name, _, _ := strings.Cut(caseName, " ")
	name, _, _ = strings.Cut(name, ".")
	return name
}

func cloneBody(t testing.TB, body map[string]any) map[string]any {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkViolations says how r is not a ValidationException whose message
// lists want, in any order, and an enumeration's values in any order: AWS
// lists them in an order of its own (reference §1.3).
func checkViolations(r rawResponse, want []string) string {
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil || r.status != 400 {
		return fmt.Sprintf("status %d, want 400 (body %.300q)", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/x-amz-json-1.1" || r.header.Get("X-Amzn-Requestid") == "" {
		return fmt.Sprintf("Content-Type %q and request id %q, want application/x-amz-json-1.1 and one", ct, r.header.Get("X-Amzn-Requestid"))
	}
	msg, _ := m["message"].(string)
	if m["__type"] != "ValidationException" {
		return fmt.Sprintf("__type %v, want ValidationException (message %.300q)", m["__type"], msg)
	}
	head := "1 validation error detected: "
	if len(want) > 1 {
		head = fmt.Sprintf("%d validation errors detected: ", len(want))
	}
	rest, ok := strings.CutPrefix(msg, head)
	if !ok || !sameViolations(strings.Split(rest, "; "), want) {
		return fmt.Sprintf("\n got %.600q\nwant %.600q", msg, head+strings.Join(want, "; "))
	}
	return ""
}

func sameViolations(got, want []string) bool {
	norm := func(l []string) []string {
		out := make([]string, len(l))
		for i, v := range l {
			if head, set, ok := strings.Cut(v, "enum value set: ["); ok {
				vals := strings.Split(strings.TrimSuffix(set, "]"), ", ")
				slices.Sort(vals)
				v = head + "enum value set: [" + strings.Join(vals, ", ") + "]"
			}
			out[i] = v
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(norm(got), norm(want))
}

// storeSnapshot is every record of the store, to tell whether a request
// changed any.
func (e *kmsEnv) storeSnapshot(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	err := e.store.View(context.Background(), func(tx store.Tx) error {
		return tx.Scan(nil, nil, func(k, v []byte) (bool, error) {
			fmt.Fprintf(&b, "%q=%q\n", k, v)
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

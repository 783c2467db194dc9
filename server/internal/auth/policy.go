package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Effect says whether a statement allows or denies.
type Effect string

// Statement effects.
const (
	Allow Effect = "Allow"
	Deny  Effect = "Deny"
)

// Limits on policy documents.
const (
	MaxPolicySize       = 32 << 10 // bytes of JSON
	MaxStatements       = 100
	MaxPatternsPerField = 100
	MaxPatternLen       = 256
)

// Statement allows or denies Actions on Resources.
//
// Actions are "kms:<Operation>" patterns (for example "kms:Decrypt" or
// "kms:GenerateDataKey*") or "*"; they match case-insensitively. Resources
// are "key/<key-id>", "alias/<name>" patterns or "*"; they match
// case-sensitively. In both, '*' matches any run of characters.
type Statement struct {
	Effect    Effect   `json:"effect"`
	Actions   []string `json:"actions"`
	Resources []string `json:"resources"`
}

// Policy is an access key's policy document:
//
//	{"statements":[{"effect":"Allow","actions":["kms:Decrypt"],"resources":["alias/orders-*"]}]}
//
// The zero Policy denies everything. Treat a Policy as immutable once it is
// shared (a Principal's Policy is shared with the authentication cache).
type Policy struct {
	Statements []Statement `json:"statements"`
}

// AdminPolicy returns the policy of admin credentials: every action on every
// resource.
func AdminPolicy() Policy {
	return Policy{Statements: []Statement{{Effect: Allow, Actions: []string{"*"}, Resources: []string{"*"}}}}
}

// ParsePolicy decodes and validates a JSON policy document. Unknown fields,
// trailing data and documents over MaxPolicySize are rejected. Every error
// matches ErrInvalidPolicy.
func ParsePolicy(data []byte) (Policy, error) {
	if len(data) > MaxPolicySize {
		return Policy{}, fmt.Errorf("%w: document larger than %d bytes", ErrInvalidPolicy, MaxPolicySize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var raw policyJSON
	if err := dec.Decode(&raw); err != nil {
		return Policy{}, fmt.Errorf("%w: %v", ErrInvalidPolicy, err)
	}
	if dec.More() {
		return Policy{}, fmt.Errorf("%w: trailing data after document", ErrInvalidPolicy)
	}
	p := Policy(raw)
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// policyJSON has Policy's fields without its methods, to avoid recursion.
type policyJSON Policy

// UnmarshalJSON decodes like ParsePolicy, so a Policy embedded in a request
// body is validated when the body is decoded.
func (p *Policy) UnmarshalJSON(data []byte) error {
	parsed, err := ParsePolicy(data)
	if err != nil {
		return err
	}
	*p = parsed
	return nil
}

// MarshalJSON encodes the document; a nil statement list encodes as [].
func (p Policy) MarshalJSON() ([]byte, error) {
	raw := policyJSON(p)
	if raw.Statements == nil {
		raw.Statements = []Statement{}
	}
	return json.Marshal(raw)
}

// Validate checks every statement: effect Allow or Deny, at least one action
// and one resource, well-formed patterns within the limits. Errors match
// ErrInvalidPolicy.
func (p Policy) Validate() error {
	if len(p.Statements) > MaxStatements {
		return fmt.Errorf("%w: more than %d statements", ErrInvalidPolicy, MaxStatements)
	}
	for i, s := range p.Statements {
		if s.Effect != Allow && s.Effect != Deny {
			return fmt.Errorf("%w: statement %d: effect must be %q or %q", ErrInvalidPolicy, i, Allow, Deny)
		}
		if len(s.Actions) == 0 {
			return fmt.Errorf("%w: statement %d: no actions", ErrInvalidPolicy, i)
		}
		if len(s.Resources) == 0 {
			return fmt.Errorf("%w: statement %d: no resources", ErrInvalidPolicy, i)
		}
		if len(s.Actions) > MaxPatternsPerField || len(s.Resources) > MaxPatternsPerField {
			return fmt.Errorf("%w: statement %d: more than %d actions or resources", ErrInvalidPolicy, i, MaxPatternsPerField)
		}
		for _, a := range s.Actions {
			if err := validAction(a); err != nil {
				return fmt.Errorf("%w: statement %d: action %q: %v", ErrInvalidPolicy, i, a, err)
			}
		}
		for _, r := range s.Resources {
			if err := validResource(r); err != nil {
				return fmt.Errorf("%w: statement %d: resource %q: %v", ErrInvalidPolicy, i, r, err)
			}
		}
	}
	return nil
}

func validAction(a string) error {
	if a == "*" {
		return nil
	}
	if len(a) > MaxPatternLen {
		return fmt.Errorf("longer than %d", MaxPatternLen)
	}
	op, ok := strings.CutPrefix(a, "kms:")
	if !ok || op == "" {
		return fmt.Errorf(`must be "*" or "kms:<Operation>"`)
	}
	for i := 0; i < len(op); i++ {
		c := op[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '*') {
			return fmt.Errorf("invalid character %q", c)
		}
	}
	return nil
}

func validResource(r string) error {
	if r == "*" {
		return nil
	}
	if len(r) > MaxPatternLen {
		return fmt.Errorf("longer than %d", MaxPatternLen)
	}
	rest, ok := strings.CutPrefix(r, "key/")
	if !ok {
		rest, ok = strings.CutPrefix(r, "alias/")
	}
	if !ok || rest == "" {
		return fmt.Errorf(`must be "*", "key/<id>" or "alias/<name>"`)
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("invalid character %q", c)
		}
	}
	return nil
}

// Allowed reports whether the policy allows action on a key known by the
// given resource names: the key's "key/<id>" and one "alias/<name>" per
// alias of the key. A statement applies when its actions match action and
// its resources match any of the names; an applicable Deny denies, otherwise
// an applicable Allow allows, otherwise the answer is no.
//
// An action that is not about one key (kms:CreateKey, kms:ListKeys,
// kms:GenerateRandom, access-key and audit actions) passes no resources;
// then only statements whose resources include "*" apply.
func (p Policy) Allowed(action string, resources ...string) bool {
	allowed := false
	for _, s := range p.Statements {
		if !matchAny(s.Actions, action, true) {
			continue
		}
		if !resourcesMatch(s.Resources, resources) {
			continue
		}
		if s.Effect == Deny {
			return false
		}
		if s.Effect == Allow {
			allowed = true
		}
	}
	return allowed
}

func resourcesMatch(patterns, names []string) bool {
	if len(names) == 0 {
		for _, p := range patterns {
			if p == "*" {
				return true
			}
		}
		return false
	}
	for _, n := range names {
		if matchAny(patterns, n, false) {
			return true
		}
	}
	return false
}

func matchAny(patterns []string, s string, fold bool) bool {
	for _, p := range patterns {
		if fold {
			if wildcardMatch(strings.ToLower(p), strings.ToLower(s)) {
				return true
			}
		} else if wildcardMatch(p, s) {
			return true
		}
	}
	return false
}

// wildcardMatch reports whether s matches pattern, where '*' matches any run
// of bytes (including none) and every other byte matches itself. It runs in
// O(len(pattern)*len(s)) time at worst, without recursion.
func wildcardMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

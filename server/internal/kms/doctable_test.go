package kms

import (
	"os"
	"strings"
	"testing"
)

// docTable parses the key-state table out of the package documentation
// (doc.go): the column header gives the states, each row the operation
// names (comma-separated, "(target)" notes dropped, "X(Y)" meaning X and XY)
// and one ✓ or ✗ per state.
func docTable(t *testing.T) (states []KeyState, rows map[Operation][]bool) {
	t.Helper()
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	rows = map[Operation][]bool{}
	in := false
	for _, line := range strings.Split(string(src), "\n") {
		body, ok := strings.CutPrefix(line, "//\t")
		if !ok {
			if in {
				break // the table ends at the first non-indented comment line
			}
			continue
		}
		fields := strings.Fields(body)
		if !in {
			if len(fields) > 1 && fields[0] == "operation" {
				for _, f := range fields[1:] {
					states = append(states, KeyState(f))
				}
				in = true
			}
			continue
		}
		first := strings.IndexAny(body, "✓✗")
		if first < 0 {
			t.Fatalf("doc table row without ✓/✗: %q", body)
		}
		var cells []bool
		for _, f := range strings.Fields(body[first:]) {
			switch f {
			case "✓":
				cells = append(cells, true)
			case "✗":
				cells = append(cells, false)
			default:
				t.Fatalf("doc table row %q: cell %q", body, f)
			}
		}
		if len(cells) != len(states) {
			t.Fatalf("doc table row %q has %d cells for %d states", body, len(cells), len(states))
		}
		names := strings.TrimSpace(strings.ReplaceAll(body[:first], "(target)", ""))
		for _, name := range strings.Split(names, ",") {
			name = strings.TrimSpace(name)
			ops := []Operation{Operation(name)}
			if base, suffix, ok := strings.Cut(name, "("); ok {
				suffix = strings.TrimSuffix(suffix, ")")
				ops = []Operation{Operation(base), Operation(base + suffix)}
			}
			for _, op := range ops {
				if _, dup := rows[op]; dup {
					t.Fatalf("doc table lists %s twice", op)
				}
				rows[op] = cells
			}
		}
	}
	if !in || len(rows) == 0 {
		t.Fatal("no key-state table found in doc.go")
	}
	return states, rows
}

// docAliases are operations the documentation names but that share a row
// of the code's table with another operation.
var docAliases = map[Operation]Operation{
	"UpdateAlias": OpCreateAlias,
	"UntagKey":    OpTagKey,
}

// TestDocTableMatchesCode compares the published table of the package
// documentation with Allowed, cell by cell, in both directions: every
// operation of the code's table is documented and every documented cell is
// what Allowed answers.
func TestDocTableMatchesCode(t *testing.T) {
	states, rows := docTable(t)
	want := []KeyState{KeyStateEnabled, KeyStateDisabled, KeyStatePendingDeletion, KeyStatePendingImport, KeyStateDestroyed}
	if len(states) != len(want) {
		t.Fatalf("doc table columns %v, want %v", states, want)
	}
	for i := range want {
		if states[i] != want[i] {
			t.Fatalf("doc table columns %v, want %v", states, want)
		}
	}
	documented := map[Operation]bool{}
	for name, cells := range rows {
		op := name
		if a, ok := docAliases[name]; ok {
			op = a
		}
		if _, ok := allowed[op]; !ok {
			t.Errorf("doc table lists %q, which the code does not know", name)
			continue
		}
		documented[op] = true
		for i, st := range states {
			if got := Allowed(op, st); got != cells[i] {
				t.Errorf("%s on %s: doc says %v, Allowed says %v", name, st, cells[i], got)
			}
		}
	}
	for op := range allowed {
		if !documented[op] {
			t.Errorf("operation %s is in the code's table but not in the documentation", op)
		}
	}
}

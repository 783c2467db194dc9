package configcenter

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
)

func TestPropertiesUnmarshal(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]any
		err  error
	}{
		{"separators", "a=1\nb:2\nc 3\nd = 4\ne\t:\t5\n", map[string]any{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5"}, nil},
		{"comments and blanks", "# c\n! c\n\n   \n  a=1\n", map[string]any{"a": "1"}, nil},
		{"nested", "db.user=app\ndb.password=ENC(AQ==)\n", map[string]any{"db": map[string]any{"user": "app", "password": "ENC(AQ==)"}}, nil},
		{"continuation", "a=one \\\n    two\\\n three\n", map[string]any{"a": "one twothree"}, nil},
		{"escaped backslash is not continuation", "a=x\\\\\nb=y\n", map[string]any{"a": `x\`, "b": "y"}, nil},
		{"escapes", `a=\t\n\r\f\u00e9\=\:\#\\x\q`, map[string]any{"a": "\t\n\r\fé=:#\\xq"}, nil},
		{"surrogate pair", `a=\uD83D\uDE00`, map[string]any{"a": "😀"}, nil},
		{"escaped key chars", `a\ b\=c=d`, map[string]any{"a b=c": "d"}, nil},
		{"empty value", "a=\nb\n", map[string]any{"a": "", "b": ""}, nil},
		{"value keeps inner separators", "url=http://h:1/p?a=b\n", map[string]any{"url": "http://h:1/p?a=b"}, nil},
		{"crlf and cr", "a=1\r\nb=2\rc=3", map[string]any{"a": "1", "b": "2", "c": "3"}, nil},
		{"later duplicate wins", "a=1\na=2\n", map[string]any{"a": "2"}, nil},
		{"utf-8", "name=José\n", map[string]any{"name": "José"}, nil},
		{"trailing continuation at EOF", "a=x\\", map[string]any{"a": "x"}, nil},
		{"leaf then parent", "a=1\na.b=2\n", nil, ErrParse},
		{"parent then leaf", "a.b=2\na=1\n", nil, ErrParse},
		{"bad unicode escape", `a=\u12G4`, nil, ErrParse},
		{"truncated unicode escape", `a=\u12`, nil, ErrParse},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Properties{}.Unmarshal([]byte(tc.in))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestPropertiesMarshalRoundTrip(t *testing.T) {
	in := map[string]any{"a": map[string]any{"b": " lead", "c": "x=y:z#!\\\n\t"}, "k ey": "v", "n": 5, "": "empty key", "u": "é\x01"}
	b, err := Properties{}.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Properties{}.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": map[string]any{"b": " lead", "c": "x=y:z#!\\\n\t"}, "k ey": "v", "n": "5", "": "empty key", "u": "é\x01"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n%s\ngot %#v", b, got)
	}
}

// FuzzProperties: never panics; whatever parses marshals to text that
// parses back to the same map.
func FuzzProperties(f *testing.F) {
	for _, s := range []string{"a=1\nb.c=2\n", "# c\n! c\nk v\n", "a=one \\\n two\n", `a=\u00e9\t\=`, "a.b=1\na=2", `x=\uD83D\uDE00`, "a\\\r\n  b=c", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := Properties{}.Unmarshal(in)
		if err != nil {
			if !errors.Is(err, ErrParse) {
				t.Fatalf("error %v is not ErrParse", err)
			}
			return
		}
		out, err := Properties{}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Properties{}.Unmarshal(out)
		if err != nil {
			t.Fatalf("re-parse of %q: %v", out, err)
		}
		if !reflect.DeepEqual(m, back) {
			t.Fatalf("round trip differs:\n in  %q\n out %q\n %s\n %s", in, out, fmt.Sprint(m), fmt.Sprint(back))
		}
	})
}

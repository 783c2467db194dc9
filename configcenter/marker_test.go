package configcenter

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestFindMarkers(t *testing.T) {
	blob := base64.StdEncoding.EncodeToString([]byte{1, 2, 3, 4, 5})
	enc := "ENC(" + blob + ")"
	def := Marker{}.orDefault()
	tests := []struct {
		name     string
		in       string
		m        Marker
		embedded bool
		want     []string // the B64 of each marker
		err      error
	}{
		{"exact", enc, def, false, []string{blob}, nil},
		{"plain", "hello", def, false, nil, nil},
		{"embedded off", "x" + enc, def, false, nil, nil},
		{"embedded on", "x" + enc + "y" + enc, def, true, []string{blob, blob}, nil},
		{"embedded exact", enc, def, true, []string{blob}, nil},
		{"not base64 exact", "ENC(hello world)", def, false, nil, ErrMalformedMarker},
		{"bad padding exact", "ENC(AQI)", def, false, nil, ErrMalformedMarker},
		{"non canonical padding bits", "ENC(AQJ=)", def, false, nil, ErrMalformedMarker},
		{"empty exact", "ENC()", def, false, nil, ErrMalformedMarker},
		{"two markers, embedded off", enc + enc, def, false, nil, ErrMalformedMarker},
		{"two markers, embedded on", enc + enc, def, true, []string{blob, blob}, nil},
		{"embedded non-base64 left", "use ENC(...) here", def, true, nil, nil},
		{"embedded bad base64", "a ENC(AQI) b", def, true, nil, ErrMalformedMarker},
		{"unterminated", "ENC(" + blob, def, true, nil, nil},
		{"prefix only", "ENC(", def, false, nil, nil},
		{"overlapping prefix and suffix", "ENC)", Marker{"ENC", "C)"}, false, nil, nil},
		{"custom", "{cipher}" + blob, Marker{"{cipher}", ""}, false, []string{blob}, nil},
		{"custom embedded, no suffix", "a {cipher}" + blob + " b", Marker{"{cipher}", ""}, true, []string{blob}, nil},
		{"newline inside", "ENC(AQID\nBA==)", def, false, nil, ErrMalformedMarker},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := findMarkers(tc.in, tc.m, tc.embedded)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var b64s []string
			for _, sp := range got {
				b64s = append(b64s, sp.B64)
				if tc.in[sp.Start:sp.End] != tc.m.Prefix+sp.B64+tc.m.Suffix {
					t.Fatalf("span %d..%d = %q", sp.Start, sp.End, tc.in[sp.Start:sp.End])
				}
			}
			if strings.Join(b64s, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("got %q, want %q", b64s, tc.want)
			}
		})
	}
}

// FuzzFindMarkers: never panics; spans are in bounds, ordered, not
// overlapping, delimited by the marker, and their content decodes to Blob.
func FuzzFindMarkers(f *testing.F) {
	for _, s := range []string{"ENC(AQIDBA==)", "x ENC(AQIDBA==) y ENC(AQ==)", "ENC()", "ENC(ENC(AQ==))", "ENC(a b)", "plain"} {
		f.Add(s, "ENC(", ")", true)
		f.Add(s, "ENC(", ")", false)
	}
	f.Add("{cipher}AQID", "{cipher}", "", true)
	f.Fuzz(func(t *testing.T, s, prefix, suffix string, embedded bool) {
		if prefix == "" {
			return
		}
		m := Marker{Prefix: prefix, Suffix: suffix}
		spans, err := findMarkers(s, m, embedded)
		if err != nil {
			if !errors.Is(err, ErrMalformedMarker) || len(spans) != 0 {
				t.Fatalf("err %v with %d spans", err, len(spans))
			}
			return
		}
		last := 0
		for _, sp := range spans {
			if sp.Start < last || sp.End > len(s) || sp.Start > sp.End {
				t.Fatalf("span %+v out of order/bounds (len %d, last %d)", sp, len(s), last)
			}
			if s[sp.Start:sp.End] != prefix+sp.B64+suffix {
				t.Fatalf("span text %q is not %q", s[sp.Start:sp.End], prefix+sp.B64+suffix)
			}
			dec, derr := base64.StdEncoding.Strict().DecodeString(sp.B64)
			if derr != nil || len(dec) == 0 || string(dec) != string(sp.Blob) {
				t.Fatalf("span content %q does not decode to its blob", sp.B64)
			}
			if !embedded && (sp.Start != 0 || sp.End != len(s)) {
				t.Fatalf("embedded marker found with embedded off")
			}
			last = sp.End
		}
	})
}

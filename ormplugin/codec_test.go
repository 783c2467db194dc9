package ormplugin

import (
	"database/sql"
	"errors"
	"reflect"
	"testing"
)

func TestPlaintextCodec(t *testing.T) {
	s, b := "héllo", []byte{0, 1, 2}
	empty := []byte{}
	cases := []struct {
		name      string
		in        any
		wantPlain string
		wantNull  bool
	}{
		{"string", "héllo", "héllo", false},
		{"empty string", "", "", false},
		{"bytes", b, "\x00\x01\x02", false},
		{"empty bytes", empty, "", false},
		{"nil bytes", []byte(nil), "", true},
		{"*string", &s, "héllo", false},
		{"nil *string", (*string)(nil), "", true},
		{"*[]byte", &b, "\x00\x01\x02", false},
		{"nil *[]byte", (*[]byte)(nil), "", true},
		{"NullString", sql.NullString{String: "x", Valid: true}, "x", false},
		{"invalid NullString", sql.NullString{String: "x"}, "", true},
		{"Null[string]", sql.Null[string]{V: "y", Valid: true}, "y", false},
		{"invalid Null[string]", sql.Null[string]{V: "y"}, "", true},
		{"Null[[]byte]", sql.Null[[]byte]{V: []byte("z"), Valid: true}, "z", false},
		{"struct", Profile{City: "Oslo", Age: 3}, `{"city":"Oslo","age":3}`, false},
		{"*struct", &Profile{City: "Oslo"}, `{"city":"Oslo","age":0}`, false},
		{"nil *struct", (*Profile)(nil), "", true},
		{"map", map[string]int{"a": 1}, `{"a":1}`, false},
		{"nil map", map[string]int(nil), "", true},
		{"slice", []int{1, 2}, `[1,2]`, false},
		{"int", 42, `42`, false},
		{"nil", nil, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plain, null, err := encodePlain(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if null != c.wantNull || (!null && string(plain) != c.wantPlain) {
				t.Fatalf("encodePlain = %q null=%v, want %q null=%v", plain, null, c.wantPlain, c.wantNull)
			}
			if null || c.in == nil {
				return
			}
			got, err := decodePlain(reflect.TypeOf(c.in), plain)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Interface(), c.in) {
				t.Fatalf("round trip: %#v, want %#v", got.Interface(), c.in)
			}
		})
	}
	if _, _, err := encodePlain(make(chan int)); !errors.Is(err, ErrUnsupportedType) {
		t.Fatalf("chan: %v", err)
	}
	if _, err := decodePlain(reflect.TypeFor[Profile](), []byte("{bad")); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("bad JSON: %v", err)
	}
}

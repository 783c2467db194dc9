package hsm_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/kmsgo/kmsgo/hsm"
)

// blob builds SealedV1 || iv || body with the given format byte.
func blob(format byte, iv, body []byte) []byte {
	return append(append([]byte{format}, iv...), body...)
}

func seq(n int, start byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func TestParseSealed(t *testing.T) {
	iv := seq(hsm.IVSize, 0x10)
	tests := []struct {
		name    string
		in      []byte
		wantErr bool
		wantCT  []byte
	}{
		{"minimal: empty plaintext", blob(hsm.SealedV1, iv, seq(hsm.TagSize, 0xa0)), false, seq(hsm.TagSize, 0xa0)},
		{"one byte plaintext", blob(hsm.SealedV1, iv, seq(hsm.TagSize+1, 0)), false, seq(hsm.TagSize+1, 0)},
		{"largest accepted", blob(hsm.SealedV1, iv, make([]byte, hsm.MaxSealedSize-hsm.SealedHeader)), false, make([]byte, hsm.MaxSealedSize-hsm.SealedHeader)},
		{"nil", nil, true, nil},
		{"empty", []byte{}, true, nil},
		{"format byte only", []byte{hsm.SealedV1}, true, nil},
		{"header only", blob(hsm.SealedV1, iv, nil), true, nil},
		{"one byte short of a tag", blob(hsm.SealedV1, iv, make([]byte, hsm.TagSize-1)), true, nil},
		{"one byte too long", blob(hsm.SealedV1, iv, make([]byte, hsm.MaxSealedSize-hsm.SealedHeader+1)), true, nil},
		{"format 0x00", blob(0x00, iv, make([]byte, hsm.TagSize)), true, nil},
		{"format 0x02", blob(0x02, iv, make([]byte, hsm.TagSize)), true, nil},
		{"format 0xff", blob(0xff, iv, make([]byte, 40)), true, nil},
		{"format 'A' (text, not a blob)", []byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := hsm.ParseSealed(tc.in)
			if tc.wantErr {
				if !errors.Is(err, hsm.ErrDecrypt) {
					t.Fatalf("error %v, want one matching ErrDecrypt", err)
				}
				if s.IV != nil || s.Ciphertext != nil {
					t.Errorf("returned a non-zero Sealed with its error")
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if !bytes.Equal(s.IV, iv) || !bytes.Equal(s.Ciphertext, tc.wantCT) {
				t.Errorf("IV %x ciphertext %d bytes, want %x and %d bytes", s.IV, len(s.Ciphertext), iv, len(tc.wantCT))
			}
			if cap(s.IV) != hsm.IVSize {
				t.Errorf("cap(IV) = %d: appending to the IV would overwrite the ciphertext", cap(s.IV))
			}
			if got := s.Encode(); !bytes.Equal(got, tc.in) {
				t.Errorf("Encode does not give back the input")
			}
			// IV and Ciphertext alias the input (documented).
			tc.in[1] ^= 0xff
			if s.IV[0] != tc.in[1] {
				t.Errorf("IV does not alias the input")
			}
		})
	}
}

func TestSealedEncode(t *testing.T) {
	tests := []struct {
		name string
		in   hsm.Sealed
		want []byte
	}{
		{"typical", hsm.Sealed{IV: seq(12, 1), Ciphertext: seq(17, 0x40)}, blob(hsm.SealedV1, seq(12, 1), seq(17, 0x40))},
		{"zero value", hsm.Sealed{}, []byte{hsm.SealedV1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in.Encode()
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("Encode = %x, want %x", got, tc.want)
			}
			if len(tc.in.IV) > 0 && &got[1] == &tc.in.IV[0] {
				t.Errorf("Encode aliases its input")
			}
		})
	}
}

// FuzzParseSealed: ParseSealed never panics, fails only with ErrDecrypt, and
// whatever it accepts re-encodes to exactly the same bytes.
func FuzzParseSealed(f *testing.F) {
	f.Add(blob(hsm.SealedV1, seq(hsm.IVSize, 0), seq(hsm.TagSize, 0x80)))
	f.Add(blob(hsm.SealedV1, seq(hsm.IVSize, 0), seq(hsm.TagSize+5, 0x80)))
	f.Add(blob(0x02, seq(hsm.IVSize, 0), seq(hsm.TagSize, 0x80)))
	f.Add([]byte{})
	f.Add([]byte{hsm.SealedV1})
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		s, err := hsm.ParseSealed(in)
		if !bytes.Equal(in, orig) {
			t.Fatal("ParseSealed modified its input")
		}
		if err != nil {
			if !errors.Is(err, hsm.ErrDecrypt) {
				t.Fatalf("error %v does not match ErrDecrypt", err)
			}
			return
		}
		if len(s.IV) != hsm.IVSize || len(s.Ciphertext) < hsm.TagSize {
			t.Fatalf("accepted a blob with IV %d bytes, ciphertext %d bytes", len(s.IV), len(s.Ciphertext))
		}
		if len(in) > hsm.MaxSealedSize || in[0] != hsm.SealedV1 {
			t.Fatalf("accepted a %d-byte blob with format %#x", len(in), in[0])
		}
		if got := s.Encode(); !bytes.Equal(got, in) {
			t.Fatalf("Encode(ParseSealed(x)) = %x, want %x", got, in)
		}
		if err := s.Check(); err != nil {
			t.Fatalf("ParseSealed accepted parts that fail Check: %v", err)
		}
	})
}

func TestSealedCheck(t *testing.T) {
	iv := seq(hsm.IVSize, 1)
	tests := []struct {
		name string
		in   hsm.Sealed
		ok   bool
	}{
		{"empty plaintext", hsm.Sealed{IV: iv, Ciphertext: seq(hsm.TagSize, 0)}, true},
		{"largest", hsm.Sealed{IV: iv, Ciphertext: make([]byte, hsm.MaxCiphertext)}, true},
		{"zero value", hsm.Sealed{}, false},
		{"no IV", hsm.Sealed{Ciphertext: seq(hsm.TagSize, 0)}, false},
		{"11-byte IV", hsm.Sealed{IV: iv[:11], Ciphertext: seq(hsm.TagSize, 0)}, false},
		{"13-byte IV", hsm.Sealed{IV: seq(13, 0), Ciphertext: seq(hsm.TagSize, 0)}, false},
		{"ciphertext one byte short of a tag", hsm.Sealed{IV: iv, Ciphertext: seq(hsm.TagSize-1, 0)}, false},
		{"ciphertext one byte too long", hsm.Sealed{IV: iv, Ciphertext: make([]byte, hsm.MaxCiphertext+1)}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.in.Check()
			if tc.ok != (err == nil) {
				t.Fatalf("Check = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, hsm.ErrDecrypt) {
				t.Fatalf("Check error %v does not match ErrDecrypt", err)
			}
		})
	}
	// Whatever ParseSealed accepts passes Check, at both size limits.
	for _, n := range []int{hsm.SealedOverhead, hsm.MaxSealedSize} {
		s, err := hsm.ParseSealed(blob(hsm.SealedV1, iv, make([]byte, n-hsm.SealedHeader)))
		if err != nil || s.Check() != nil {
			t.Errorf("%d-byte blob: ParseSealed %v, Check %v", n, err, s.Check())
		}
	}
}

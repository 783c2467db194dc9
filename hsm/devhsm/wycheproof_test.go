package devhsm

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/kmsgo/kmsgo/hsm"
)

type wycheproofFile struct {
	Algorithm     string `json:"algorithm"`
	Source        string `json:"source"`
	NumberOfTests int    `json:"numberOfTests"`
	TestGroups    []struct {
		IVSize  int `json:"ivSize"`
		KeySize int `json:"keySize"`
		TagSize int `json:"tagSize"`
		Tests   []struct {
			TcID    int      `json:"tcId"`
			Comment string   `json:"comment"`
			Flags   []string `json:"flags"`
			Key     string   `json:"key"`
			IV      string   `json:"iv"`
			AAD     string   `json:"aad"`
			Msg     string   `json:"msg"`
			CT      string   `json:"ct"`
			Tag     string   `json:"tag"`
			Result  string   `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// TestWycheproofAESGCM runs devhsm's own seal and open on the Project
// Wycheproof AES-GCM vectors with 96-bit IVs and 128-bit tags: valid vectors
// must give exactly the expected blob and open back to the message; invalid
// ones must fail with hsm.ErrDecrypt.
func TestWycheproofAESGCM(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "wycheproof", "aes_gcm_test.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f wycheproofFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if f.Algorithm != "AES-GCM" {
		t.Fatalf("algorithm %q", f.Algorithm)
	}
	var total, valid, invalid int
	keySizes := map[int]bool{}
	for _, g := range f.TestGroups {
		if g.IVSize != 96 || g.TagSize != 128 {
			t.Fatalf("group with ivSize %d tagSize %d: only 96/128 belong in this file", g.IVSize, g.TagSize)
		}
		keySizes[g.KeySize] = true
		for _, tc := range g.Tests {
			total++
			key, iv, aad := unhex(t, tc.Key), unhex(t, tc.IV), unhex(t, tc.AAD)
			msg, ct, tag := unhex(t, tc.Msg), unhex(t, tc.CT), unhex(t, tc.Tag)
			if len(key)*8 != g.KeySize || len(iv) != hsm.IVSize || len(tag) != hsm.TagSize {
				t.Fatalf("tcId %d: sizes do not match its group", tc.TcID)
			}
			a, err := newAEAD(key)
			if err != nil {
				t.Fatalf("tcId %d: newAEAD: %v", tc.TcID, err)
			}
			blob := append(append(append([]byte{hsm.SealedV1}, iv...), ct...), tag...)
			switch tc.Result {
			case "valid":
				valid++
				if got := seal(a, iv, msg, aad); !bytes.Equal(got, blob) {
					t.Errorf("tcId %d (%s): seal = %x, want %x", tc.TcID, tc.Comment, got, blob)
				}
				got, err := open(a, blob, aad)
				if err != nil || !bytes.Equal(got, msg) {
					t.Errorf("tcId %d (%s): open = %x, %v; want %x", tc.TcID, tc.Comment, got, err, msg)
				}
			case "invalid":
				invalid++
				got, err := open(a, blob, aad)
				if !errors.Is(err, hsm.ErrDecrypt) || got != nil {
					t.Errorf("tcId %d (%s): open of an invalid vector = %x, %v; want ErrDecrypt", tc.TcID, tc.Comment, got, err)
				}
			default:
				t.Fatalf("tcId %d: result %q", tc.TcID, tc.Result)
			}
		}
	}
	if total != f.NumberOfTests {
		t.Errorf("ran %d tests, file says %d", total, f.NumberOfTests)
	}
	if !keySizes[128] || !keySizes[256] || valid < 20 || invalid < 10 {
		t.Errorf("too little coverage: key sizes %v, %d valid, %d invalid", keySizes, valid, invalid)
	}
}

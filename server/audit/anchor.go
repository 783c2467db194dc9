package audit

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"sync"
	"time"
)

// Anchor is a signed chain head kept outside the database: the Logger
// writes one every Config.AnchorInterval while its chain grows, to an
// AnchorFile and to its log. Sig is an HMAC-SHA256 under a subkey of the
// chain key, so whoever can write the database (but does not hold the chain
// key) can neither forge nor move an anchor.
type Anchor struct {
	ReplicaID string    `json:"replica"`
	Seq       int64     `json:"seq"`
	Hash      string    `json:"hash"`
	Time      time.Time `json:"time"`
	Sig       string    `json:"sig"`
}

// Head returns the chain head a anchors.
func (a Anchor) Head() Head { return Head{ReplicaID: a.ReplicaID, Seq: a.Seq, Hash: a.Hash} }

const labelAnchor = "kmsgo/audit/anchor-key/v1"

func anchorMAC(chainKey []byte, a *Anchor) []byte {
	k := subkey(chainKey, labelAnchor)
	defer clear(k)
	return anchorMACSub(k, a)
}

// anchorMACSub is anchorMAC under the already derived anchor subkey.
func anchorMACSub(k []byte, a *Anchor) []byte {
	m := hmac.New(sha256.New, k)
	var b []byte
	str := func(s string) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	str("kmsgo/audit/anchor/v1")
	str(a.ReplicaID)
	b = binary.BigEndian.AppendUint64(b, uint64(a.Seq))
	str(a.Hash)
	b = binary.BigEndian.AppendUint64(b, uint64(a.Time.UnixMicro()))
	m.Write(b)
	return m.Sum(nil)
}

// SignAnchor returns the signed anchor of h at time t.
func SignAnchor(chainKey []byte, h Head, t time.Time) Anchor {
	a := Anchor{ReplicaID: h.ReplicaID, Seq: h.Seq, Hash: h.Hash, Time: t.UTC().Truncate(time.Microsecond)}
	a.Sig = hex.EncodeToString(anchorMAC(chainKey, &a))
	return a
}

// CheckAnchor reports whether a's signature is valid under chainKey
// (constant time).
func CheckAnchor(chainKey []byte, a Anchor) bool {
	got, err := hex.DecodeString(a.Sig)
	if err != nil {
		return false
	}
	return hmac.Equal(got, anchorMAC(chainKey, &a))
}

// maxAnchorLine bounds one line of an anchor file.
const maxAnchorLine = 4096

// ReadAnchors parses anchors as JSON lines (blank lines are skipped). Any
// malformed line is an error: an anchor file is evidence and is never
// guessed at. Signatures are not checked here (see CheckAnchor).
func ReadAnchors(r io.Reader) ([]Anchor, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1024), maxAnchorLine)
	var out []Anchor
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var a Anchor
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a); err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrBadAnchor, n, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("%w: line %d: trailing data", ErrBadAnchor, n)
		}
		if a.ReplicaID == "" || len(a.ReplicaID) > maxReplicaID || a.Seq < 1 || len(a.Hash) != hashHexLength {
			return nil, fmt.Errorf("%w: line %d: incomplete anchor", ErrBadAnchor, n)
		}
		out = append(out, a)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadAnchor, err)
	}
	return out, nil
}

// LatestHeads returns, per replica, the head of its highest anchor, sorted
// by replica. The newest anchor of a chain implies every earlier one (the
// chain links them), so it is the one to verify against.
func LatestHeads(anchors []Anchor) []Head {
	best := map[string]Head{}
	for _, a := range anchors {
		if b, ok := best[a.ReplicaID]; !ok || a.Seq > b.Seq {
			best[a.ReplicaID] = a.Head()
		}
	}
	out := make([]Head, 0, len(best))
	for _, h := range best {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ReplicaID < out[j].ReplicaID })
	return out
}

// DefaultAnchorFileMax is the size past which an AnchorFile starts a new
// file, keeping the previous one as <path>.1.
const DefaultAnchorFileMax = 1 << 20

// AnchorFile is an append-only JSON-lines file of anchors (mode 0600),
// normally <data_dir>/audit-anchors.jsonl. Every anchor is fsynced before
// Append returns. When the file passes DefaultAnchorFileMax it is renamed
// to <path>.1 (replacing the older one) and a new file starts; the newest
// anchor per replica is always in one of the two.
type AnchorFile struct {
	path string
	mu   sync.Mutex
}

// OpenAnchorFile creates path (0600) if needed and refuses a file readable
// or writable by group or others.
func OpenAnchorFile(path string) (*AnchorFile, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: anchor file: %w", err)
	}
	st, err := f.Stat()
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("audit: anchor file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: anchor file %s has mode %v, want 0600", ErrInvalidConfig, path, st.Mode().Perm())
	}
	return &AnchorFile{path: path}, nil
}

// Path returns the file's path.
func (f *AnchorFile) Path() string { return f.path }

// Append writes a as one line and syncs the file.
func (f *AnchorFile) Append(a Anchor) error {
	line, err := json.Marshal(a)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	f.mu.Lock()
	defer f.mu.Unlock()
	if st, err := os.Stat(f.path); err == nil && st.Size()+int64(len(line)) > DefaultAnchorFileMax {
		if err := os.Rename(f.path, f.path+".1"); err != nil {
			return fmt.Errorf("audit: rotate anchor file: %w", err)
		}
	}
	w, err := os.OpenFile(f.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: anchor file: %w", err)
	}
	if _, err := w.Write(line); err != nil {
		w.Close()
		return fmt.Errorf("audit: anchor file: %w", err)
	}
	if err := w.Sync(); err != nil {
		w.Close()
		return fmt.Errorf("audit: anchor file: %w", err)
	}
	return w.Close()
}

// Anchors returns every anchor in the file and its predecessor (<path>.1),
// oldest file first.
func (f *AnchorFile) Anchors() ([]Anchor, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var all []Anchor
	for _, p := range []string{f.path + ".1", f.path} {
		r, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("audit: anchor file: %w", err)
		}
		as, err := ReadAnchors(r)
		r.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		all = append(all, as...)
	}
	return all, nil
}

// Last returns the highest anchor of replica whose signature verifies under
// chainKey. An anchor with a bad signature is an error (the file was
// tampered with), not something to skip.
func (f *AnchorFile) Last(chainKey []byte, replica string) (Anchor, bool, error) {
	all, err := f.Anchors()
	if err != nil {
		return Anchor{}, false, err
	}
	var best Anchor
	found := false
	for _, a := range all {
		if a.ReplicaID != replica {
			continue
		}
		if !CheckAnchor(chainKey, a) {
			return Anchor{}, false, fmt.Errorf("%w: %s: anchor of seq %d has a bad signature", ErrBadAnchor, f.path, a.Seq)
		}
		if !found || a.Seq > best.Seq {
			best, found = a, true
		}
	}
	return best, found, nil
}

func hmacEqualString(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }

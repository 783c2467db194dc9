package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Result values.
const (
	ResultOK    = "ok"
	ResultError = "error"
	// ResultIntent marks an intent record: a state change about to be
	// attempted (see the package comment). Its outcome record carries
	// Details[DetailIntent] = the intent's seq.
	ResultIntent = "intent"
)

// Details names of the intent/outcome protocol.
const (
	// DetailIntent, in an outcome record, is the decimal seq of its intent
	// record in the same replica's chain.
	DetailIntent = "intent_seq"
)

// Record is one audit entry. Callers fill Time (optional, defaults to now),
// AccessKeyID, Action, KeyID, KeyVersion, Result, ReasonCode, RequestID,
// SourceAddr and Details; the Logger sets ReplicaID, Seq, PrevHash and Hash.
type Record struct {
	Time        time.Time `json:"time"`
	ReplicaID   string    `json:"replica_id"`
	Seq         int64     `json:"seq"`
	AccessKeyID string    `json:"access_key_id"`
	Action      string    `json:"action"` // e.g. "kms:Decrypt", "kms:DisableKey"
	KeyID       string    `json:"key_id"`
	KeyVersion  int       `json:"key_version"`
	Result      string    `json:"result"`      // ResultOK or ResultError
	ReasonCode  string    `json:"reason_code"` // the API error code on failure, e.g. "AccessDenied"
	RequestID   string    `json:"request_id"`
	SourceAddr  string    `json:"source_addr"`
	// Details holds extra non-secret facts or HMACValue digests of
	// sensitive ones (never plaintext secrets or encryption context values).
	Details  map[string]string `json:"details,omitempty"`
	PrevHash string            `json:"prev_hash"`
	Hash     string            `json:"hash"`
}

// Field limits (bytes), enforced identically on every dialect.
const (
	maxReplicaID  = 64
	maxShort      = 64  // Action, Result, ReasonCode
	maxID         = 191 // KeyID
	maxMedium     = 128 // AccessKeyID, RequestID, SourceAddr
	maxDetails    = 32
	maxDetailKey  = 64
	maxDetailVal  = 256
	minChainKey   = 32
	hashHexLength = 2 * sha256.Size
)

// Key derivation labels: the chain and value HMACs use independent subkeys
// of the configured key, so a value digest can never be replayed as a chain
// hash (an attacker choosing a value cannot obtain a valid record hash).
const (
	labelChain = "kmsgo/audit/chain-key/v1"
	labelValue = "kmsgo/audit/value-key/v1"
	domainRec  = "kmsgo/audit/record/v1"
)

func subkey(key []byte, label string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// HMACValue returns the hex HMAC-SHA256 of v under a subkey derived from key
// (the audit chain key). Use it for sensitive values in Record.Details: equal
// values give equal digests, so an admin holding the key can search for a
// value, but the log itself does not reveal it.
func HMACValue(key, v []byte) string {
	k := subkey(key, labelValue)
	defer clear(k)
	m := hmac.New(sha256.New, k)
	m.Write(v)
	return hex.EncodeToString(m.Sum(nil))
}

// canonical appends the unambiguous encoding of r (every field except Hash,
// in fixed order, each length-prefixed) to dst.
func canonical(dst []byte, r *Record) []byte {
	str := func(s string) {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
		dst = append(dst, s...)
	}
	str(domainRec)
	str(r.ReplicaID)
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.Seq))
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.Time.UnixMicro()))
	str(r.AccessKeyID)
	str(r.Action)
	str(r.KeyID)
	dst = binary.BigEndian.AppendUint64(dst, uint64(int64(r.KeyVersion)))
	str(r.Result)
	str(r.ReasonCode)
	str(r.RequestID)
	str(r.SourceAddr)
	keys := make([]string, 0, len(r.Details))
	for k := range r.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(keys)))
	for _, k := range keys {
		str(k)
		str(r.Details[k])
	}
	str(r.PrevHash)
	return dst
}

// recordMAC computes record hashes like hasher, reusing its state and
// buffers between records: for the one goroutine that writes a chain.
type recordMAC struct {
	ipad, opad   [sha256.BlockSize]byte
	inner, outer hash.Hash
	sum          [sha256.Size]byte
}

func newRecordMAC(key []byte) *recordMAC {
	m := &recordMAC{inner: sha256.New(), outer: sha256.New()}
	k := key
	if len(k) > sha256.BlockSize {
		s := sha256.Sum256(k)
		k = s[:]
	}
	copy(m.ipad[:], k)
	copy(m.opad[:], k)
	for i := range m.ipad {
		m.ipad[i] ^= 0x36
		m.opad[i] ^= 0x5c
	}
	return m
}

// hash returns HMAC-SHA256(key, canonical(r)) in hex, as hasher.sum.
func (m *recordMAC) hash(r *Record, buf []byte) (string, []byte) {
	buf = canonical(buf[:0], r)
	m.inner.Reset()
	m.inner.Write(m.ipad[:])
	m.inner.Write(buf)
	m.outer.Reset()
	m.outer.Write(m.opad[:])
	m.outer.Write(m.inner.Sum(m.sum[:0]))
	return hex.EncodeToString(m.outer.Sum(m.sum[:0])), buf
}

func (m *recordMAC) wipe() {
	clear(m.ipad[:])
	clear(m.opad[:])
	clear(m.sum[:])
	m.inner.Reset()
	m.outer.Reset()
}

// hasher computes record hashes under a derived chain subkey.
type hasher struct{ key []byte }

func newHasher(chainKey []byte) hasher { return hasher{key: subkey(chainKey, labelChain)} }

func (h hasher) sum(r *Record, buf []byte) (string, []byte) {
	buf = canonical(buf[:0], r)
	m := hmac.New(sha256.New, h.key)
	m.Write(buf)
	return hex.EncodeToString(m.Sum(nil)), buf
}

// check reports whether r.Hash is the correct hash of r (constant time).
func (h hasher) check(r *Record, buf []byte) (bool, []byte) {
	want, buf := h.sum(r, buf)
	return hmac.Equal([]byte(want), []byte(r.Hash)), buf
}

func (h hasher) wipe() { clear(h.key) }

// validate checks the caller-supplied fields of r.
func validate(r *Record) error {
	if r.Action == "" {
		return fmt.Errorf("%w: action is required", ErrInvalidRecord)
	}
	if r.Result != ResultOK && r.Result != ResultError && r.Result != ResultIntent {
		return fmt.Errorf("%w: result must be %q, %q or %q", ErrInvalidRecord, ResultOK, ResultError, ResultIntent)
	}
	if r.KeyVersion < 0 {
		return fmt.Errorf("%w: negative key version", ErrInvalidRecord)
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{
		{"access_key_id", r.AccessKeyID, maxMedium},
		{"action", r.Action, maxShort},
		{"key_id", r.KeyID, maxID},
		{"reason_code", r.ReasonCode, maxShort},
		{"request_id", r.RequestID, maxMedium},
		{"source_addr", r.SourceAddr, maxMedium},
	} {
		if err := checkText(f.name, f.v, f.max); err != nil {
			return err
		}
	}
	if len(r.Details) > maxDetails {
		return fmt.Errorf("%w: more than %d details", ErrInvalidRecord, maxDetails)
	}
	for k, v := range r.Details {
		if k == "" {
			return fmt.Errorf("%w: empty detail name", ErrInvalidRecord)
		}
		if err := checkText("detail name", k, maxDetailKey); err != nil {
			return err
		}
		if len(v) > maxDetailVal || !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
			return checkText("detail "+k, v, maxDetailVal) // names the problem
		}
	}
	return nil
}

// checkText enforces what every dialect can store losslessly: valid UTF-8
// without NUL, at most max bytes.
func checkText(name, v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalidRecord, name, max)
	}
	if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
		return fmt.Errorf("%w: %s is not valid UTF-8 text", ErrInvalidRecord, name)
	}
	return nil
}

// encodeDetails stores details as JSON (keys sorted by encoding/json); an
// empty map is stored as "".
func encodeDetails(d map[string]string) (string, error) {
	if len(d) == 0 {
		return "", nil
	}
	if s, ok := encodeSafeDetails(d); ok {
		return s, nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// encodeSafeDetails is json.Marshal(d) without reflection for the usual
// details: at most 16 entries, every key and value printable ASCII that
// encoding/json writes as is (no '"', '\\', '<', '>', '&'). It reports false
// for anything else.
func encodeSafeDetails(d map[string]string) (string, bool) {
	var arr [16]string
	if len(d) > len(arr) {
		return "", false
	}
	keys := arr[:0]
	n := 2
	for k, v := range d {
		if !jsonSafe(k) || !jsonSafe(v) {
			return "", false
		}
		keys = append(keys, k)
		n += len(k) + len(v) + 6
	}
	slices.Sort(keys)
	var b strings.Builder
	b.Grow(n)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(k)
		b.WriteString(`":"`)
		b.WriteString(d[k])
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String(), true
}

// jsonSafe reports whether encoding/json writes s unchanged inside quotes.
func jsonSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// decodeDetails parses a stored details column. It accepts only a JSON
// object of strings (or ""), so a tampered column is an error, not a guess.
func decodeDetails(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	var d map[string]string
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		return nil, err
	}
	if d == nil {
		return nil, fmt.Errorf("details: not an object")
	}
	if len(d) == 0 {
		return nil, nil
	}
	return d, nil
}

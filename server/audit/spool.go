package audit

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The spool is a local append-only file in front of the database (see
// Config.SpoolDir): a group commit is one write of the batch's records to
// it, after which the records survive the process being killed, and a
// background writer moves them into the database in large transactions.
//
// File layout: a sequence of frames, each
//
//	uint32 big-endian length n, then n bytes: canonical(record) || hex hash
//
// canonical is the encoding the chain hash covers (record.go), so a frame
// carries every field of the record and its hash verifies the whole frame:
// a torn or altered frame fails the HMAC check on recovery.
//
// Segments are named spool-<replica hex>-<first seq, 20 digits>.log; a
// segment is removed once every record in it is in the database.

const (
	// spoolSegmentMax is the size after which the leader starts a new segment.
	spoolSegmentMax = 4 << 20
	// maxSpoolFrame bounds a frame on recovery (a record is at most ~12 KiB).
	maxSpoolFrame = 64 << 10
	// spoolInsertBatch is the most spooled records per database transaction.
	spoolInsertBatch = 512
	// spoolLinger is how long the database writer waits for a small backlog
	// to grow before inserting it (fewer, larger transactions at low load).
	spoolLinger = 10 * time.Millisecond
)

// spoolSeg is a closed segment and the highest seq it holds.
type spoolSeg struct {
	path    string
	lastSeq int64
}

// spool is the leader-owned state of the spool files.
type spool struct {
	dir    string
	prefix string // "spool-<replica hex>-"
	sync   bool
	f      *os.File
	path   string
	size   int64
	last   int64 // highest seq written to f
	buf    []byte
}

func newSpool(dir, replica string, sync bool) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: spool dir: %v", ErrInvalidConfig, err)
	}
	return &spool{dir: dir, prefix: "spool-" + hex.EncodeToString([]byte(replica)) + "-", sync: sync}, nil
}

// segments lists this replica's spool segments, oldest first.
func (s *spool) segments() ([]string, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasPrefix(n, s.prefix) && strings.HasSuffix(n, ".log") {
			out = append(out, filepath.Join(s.dir, n))
		}
	}
	slices.Sort(out) // fixed-width seqs sort in order
	return out, nil
}

// open starts a new segment whose first record will be seq first.
func (s *spool) open(first int64) error {
	p := filepath.Join(s.dir, s.prefix+fmt.Sprintf("%020d", first)+".log")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if s.sync {
		// The new name must survive a power loss too.
		if d, err := os.Open(s.dir); err == nil {
			_ = d.Sync()
			_ = d.Close()
		}
	}
	s.f, s.path, s.size, s.last = f, p, 0, first-1
	return nil
}

// appendFrame appends the frame of a stamped record whose canonical
// encoding is canon to s.buf.
func (s *spool) appendFrame(canon []byte, hash string) {
	s.buf = binary.BigEndian.AppendUint32(s.buf, uint32(len(canon)+len(hash)))
	s.buf = append(s.buf, canon...)
	s.buf = append(s.buf, hash...)
}

// flush writes s.buf (the frames of records up to seq last) with one write
// and, in sync mode, fsyncs it. On failure it cuts the file back to its
// previous size, so no frame of a failed batch stays behind; if even that
// fails it returns errSpoolBroken.
func (s *spool) flush(last int64) error {
	n, err := s.f.Write(s.buf)
	if err == nil && s.sync {
		err = s.f.Sync()
	}
	if err != nil {
		if n > 0 || s.sync {
			if terr := s.f.Truncate(s.size); terr != nil {
				return fmt.Errorf("%w: %v (and cutting it back: %v)", errSpoolBroken, err, terr)
			}
		}
		return err
	}
	s.size += int64(n)
	s.last = last
	return nil
}

// close closes the current segment (if any) and returns it.
func (s *spool) close() (spoolSeg, error) {
	if s.f == nil {
		return spoolSeg{}, nil
	}
	err := s.f.Close()
	seg := spoolSeg{path: s.path, lastSeq: s.last}
	s.f = nil
	return seg, err
}

// errSpoolBroken: a failed spool write could not be cut back; the Logger
// refuses every record from then on (a later frame could follow a torn one).
var errSpoolBroken = errors.New("audit: spool file cannot be repaired")

// readSpool decodes the frames of one segment. torn reports that the file
// ends inside a frame (a write cut short by a crash of the OS); a complete
// frame that does not decode is an error.
func readSpool(r io.Reader) (recs []Record, torn bool, err error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, false, err
	}
	recs, rest := decodeSpool(b)
	if len(rest) == 0 {
		return recs, false, nil
	}
	if len(rest) < 4 || int(binary.BigEndian.Uint32(rest)) > len(rest)-4 {
		return recs, true, nil
	}
	return recs, false, errBadFrame
}

var errBadFrame = errors.New("audit: a spool frame does not decode")

// decodeSpool decodes frames from b until one does not decode; it returns
// the records and the undecoded rest.
func decodeSpool(b []byte) ([]Record, []byte) {
	var out []Record
	for len(b) > 0 {
		if len(b) < 4 {
			return out, b
		}
		n := binary.BigEndian.Uint32(b)
		if n < hashHexLength || n > maxSpoolFrame || int(n) > len(b)-4 {
			return out, b
		}
		body := b[4 : 4+n]
		r, err := decodeCanonical(body[:n-hashHexLength])
		if err != nil {
			return out, b
		}
		r.Hash = string(body[n-hashHexLength:])
		out = append(out, r)
		b = b[4+n:]
	}
	return out, nil
}

// decodeCanonical parses canonical's encoding back into a Record (without
// Hash). It accepts exactly what canonical writes.
func decodeCanonical(b []byte) (Record, error) {
	var r Record
	bad := errBadFrame
	str := func() (string, bool) {
		if len(b) < 4 {
			return "", false
		}
		n := binary.BigEndian.Uint32(b)
		if uint64(n) > uint64(len(b)-4) {
			return "", false
		}
		s := string(b[4 : 4+n])
		b = b[4+n:]
		return s, true
	}
	u64 := func() (uint64, bool) {
		if len(b) < 8 {
			return 0, false
		}
		v := binary.BigEndian.Uint64(b)
		b = b[8:]
		return v, true
	}
	dom, ok := str()
	if !ok || dom != domainRec {
		return r, bad
	}
	var seq, us, ver uint64
	if r.ReplicaID, ok = str(); !ok {
		return r, bad
	}
	if seq, ok = u64(); !ok {
		return r, bad
	}
	if us, ok = u64(); !ok {
		return r, bad
	}
	r.Seq = int64(seq)
	r.Time = time.UnixMicro(int64(us)).UTC()
	for _, f := range []*string{&r.AccessKeyID, &r.Action, &r.KeyID} {
		if *f, ok = str(); !ok {
			return r, bad
		}
	}
	if ver, ok = u64(); !ok {
		return r, bad
	}
	r.KeyVersion = int(int64(ver))
	for _, f := range []*string{&r.Result, &r.ReasonCode, &r.RequestID, &r.SourceAddr} {
		if *f, ok = str(); !ok {
			return r, bad
		}
	}
	if len(b) < 4 {
		return r, bad
	}
	nd := binary.BigEndian.Uint32(b)
	b = b[4:]
	if nd > maxDetails {
		return r, bad
	}
	if nd > 0 {
		r.Details = make(map[string]string, nd)
		prev := ""
		for i := range nd {
			k, ok1 := str()
			v, ok2 := str()
			if !ok1 || !ok2 || (i > 0 && k <= prev) {
				return r, bad
			}
			r.Details[k] = v
			prev = k
		}
	}
	if r.PrevHash, ok = str(); !ok || len(b) != 0 {
		return r, bad
	}
	return r, nil
}

// spoolSegFirst parses the first seq out of a segment's path.
func spoolSegFirst(path string) (int64, bool) {
	base := strings.TrimSuffix(filepath.Base(path), ".log")
	i := strings.LastIndexByte(base, '-')
	if i < 0 {
		return 0, false
	}
	v, err := strconv.ParseInt(base[i+1:], 10, 64)
	return v, err == nil
}

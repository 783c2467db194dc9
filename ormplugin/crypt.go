package ormplugin

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"reflect"
	"unsafe"
)

// nonceSource hands out fresh random 96-bit nonces, reading crypto/rand in
// blocks to avoid a system call per value. Each nonce is used once.
type nonceSource struct {
	buf []byte
}

const (
	nonceBlock = 64 * nonceLen
	arenaBlock = 16 << 10
)

func (n *nonceSource) next() []byte {
	if len(n.buf) < nonceLen {
		n.buf = make([]byte, nonceBlock)
		if _, err := rand.Read(n.buf); err != nil {
			n.buf = nil
			return nil
		}
	}
	out := n.buf[:nonceLen:nonceLen]
	n.buf = n.buf[nonceLen:]
	return out
}

// sealWithNonce encrypts plain for column ck under k and returns the stored
// value. nonce must never be reused.
func sealWithNonce(k *dek, ck colKey, plain, nonce []byte) string {
	return sealInto(k, valueAAD(ck.table, ck.column, k.id), plain, nonce, nil, nil, false)
}

// sealBound is sealWithNonce for a row-bound column (format 2).
func sealBound(k *dek, ck colKey, b *bindCtx, plain, nonce []byte) string {
	return sealInto(k, boundAAD(ck.table, ck.column, k.id, b.column, b.value), plain, nonce, nil, nil, true)
}

// sealInto is sealWithNonce with a precomputed AAD, using scratch (may be
// nil) as working space. bound selects format 2.
func sealInto(k *dek, aad, plain, nonce []byte, scratch, arena *[]byte, bound bool) string {
	var raw []byte
	if need := dkIDLen + nonceLen + len(plain) + tagLen; scratch != nil && cap(*scratch) >= need {
		raw = (*scratch)[:dkIDLen+nonceLen]
	} else {
		raw = make([]byte, dkIDLen+nonceLen, need)
		if scratch != nil {
			*scratch = raw
		}
	}
	binary.BigEndian.PutUint64(raw, uint64(k.id))
	copy(raw[dkIDLen:], nonce)
	raw = k.aead.Seal(raw, nonce, plain, aad)
	k.bytes.Add(int64(len(plain)))
	n := len(valuePrefix) + b64.EncodedLen(len(raw))
	var out []byte
	if arena == nil {
		out = make([]byte, n)
	} else { // carve the output from a block shared by the statement
		if len(*arena) < n {
			*arena = make([]byte, max(n, arenaBlock))
		}
		out, *arena = (*arena)[:n:n], (*arena)[n:]
	}
	if bound {
		copy(out, valuePrefix2)
	} else {
		copy(out, valuePrefix)
	}
	b64.Encode(out[len(valuePrefix):], raw)
	clear(raw)
	return unsafe.String(unsafe.SliceData(out), len(out)) // out is never modified again
}

// sealWith is sealWithNonce with a fresh nonce (tests and one-off use).
func sealWith(k *dek, ck colKey, plain []byte) (string, error) {
	var n nonceSource
	nonce := n.next()
	if nonce == nil {
		return "", fmt.Errorf("ormplugin: no randomness")
	}
	return sealWithNonce(k, ck, plain, nonce), nil
}

// bindCtx is the row binding of one value: the bound column and its value
// in the row (value nil with missing set when the row does not say).
type bindCtx struct {
	column  string
	value   []byte
	missing error
}

// decrypt opens a stored value of column ck. st (may be nil) caches the
// data keys used by one statement. b is the row binding of a bound field
// (nil for an unbound field). A format-1 value (written before binding was
// enabled) is accepted on a bound field; a format-2 value needs b.
func (p *Plugin) decrypt(ctx context.Context, st *stmtState, ck colKey, b *bindCtx, stored []byte) ([]byte, error) {
	var scratch []byte
	if st != nil {
		if need := b64.DecodedLen(len(stored)); cap(st.scratch) < need {
			st.scratch = make([]byte, need)
		}
		scratch = st.scratch
	}
	v, err := parseValueInto(stored, scratch)
	if err != nil {
		if err == ErrNotCiphertext && p.cfg.AllowPlaintextReads {
			return append([]byte{}, stored...), nil
		}
		return nil, err
	}
	if v.bound {
		if b == nil {
			return nil, ErrDecrypt // the model does not declare the binding
		}
		if b.value == nil {
			if b.missing != nil {
				return nil, b.missing
			}
			return nil, ErrBindMissing
		}
	}
	var k *dek
	if st != nil {
		st.mu.Lock()
		k = st.dkeys[v.dkID]
		st.mu.Unlock()
	}
	if k == nil {
		if k, err = p.keys.forDecrypt(ctx, p.db, ck, v.dkID); err != nil {
			return nil, err
		}
		if st != nil {
			st.mu.Lock()
			if st.dkeys == nil {
				st.dkeys = map[int64]*dek{}
			}
			st.dkeys[v.dkID] = k
			st.mu.Unlock()
		}
	}
	var aad []byte
	switch {
	case v.bound:
		aad = boundAAD(ck.table, ck.column, v.dkID, b.column, b.value)
	case st != nil:
		st.mu.Lock()
		if l := st.readAAD[ck]; l != nil && l.k == k {
			aad = l.aad
		} else {
			aad = valueAAD(ck.table, ck.column, v.dkID)
			if st.readAAD == nil {
				st.readAAD = map[colKey]*lease{}
			}
			st.readAAD[ck] = &lease{k: k, aad: aad}
		}
		st.mu.Unlock()
	default:
		aad = valueAAD(ck.table, ck.column, v.dkID)
	}
	// Open in place: v.sealed is private (fresh or the statement's scratch).
	plain, err := k.aead.Open(v.sealed[:0], v.nonce, v.sealed, aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return plain, nil
}

// openValue decrypts a raw database value into a value of type t.
func (p *Plugin) openValue(ctx context.Context, st *stmtState, ck colKey, b *bindCtx, t reflect.Type, dbValue any) (reflect.Value, error) {
	var stored []byte
	switch x := dbValue.(type) {
	case string:
		// parseValue only reads its input.
		stored = unsafe.Slice(unsafe.StringData(x), len(x))
	case []byte:
		stored = x
	case *string:
		stored = []byte(*x)
	default:
		return reflect.Value{}, fmt.Errorf("%w: stored %T", ErrNotCiphertext, dbValue)
	}
	plain, err := p.decrypt(ctx, st, ck, b, stored)
	if err != nil {
		return reflect.Value{}, err
	}
	defer clear(plain)
	return decodePlain(t, plain)
}

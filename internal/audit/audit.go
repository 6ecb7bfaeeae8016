// Package audit chains audit events by hash, so that an edited, deleted or reordered event is detectable.
package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"
)

// Record is one audit event as stored.
type Record struct {
	Seq    int64
	At     time.Time
	Actor  string
	Action string
	Object string
	Detail string
	Prev   []byte // Hash of the record before, or Genesis for the first
	Hash   []byte
}

// Genesis is the Prev of the first record.
var Genesis = make([]byte, sha256.Size)

// Hash returns the hash of r given the hash of the record before it: SHA-256
// over the previous hash and every field, each length-prefixed so that no
// two different records encode alike.
func Hash(prev []byte, r Record) []byte {
	h := sha256.New()
	h.Write(prev)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(r.Seq))
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(r.At.UnixNano()))
	h.Write(n[:])
	for _, s := range []string{r.Actor, r.Action, r.Object, r.Detail} {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return h.Sum(nil)
}

// BrokenError names the first record at which a chain does not verify.
type BrokenError struct {
	Seq    int64
	Reason string
}

func (e *BrokenError) Error() string {
	return fmt.Sprintf("audit: chain broken at event %d: %s", e.Seq, e.Reason)
}

// Verifier checks records one by one, in sequence order.
type Verifier struct {
	prev    []byte
	lastSeq int64
	n       int64
}

// Next checks r against the records seen before it.
func (v *Verifier) Next(r Record) error {
	if v.prev == nil {
		v.prev = Genesis
	}
	if r.Seq != v.lastSeq+1 {
		return &BrokenError{Seq: r.Seq, Reason: fmt.Sprintf("follows event %d: an event is missing or out of order", v.lastSeq)}
	}
	if string(r.Prev) != string(v.prev) {
		return &BrokenError{Seq: r.Seq, Reason: "does not point at the previous event's hash"}
	}
	if string(Hash(v.prev, r)) != string(r.Hash) {
		return &BrokenError{Seq: r.Seq, Reason: "its content does not match its hash: it was edited"}
	}
	v.prev, v.lastSeq = r.Hash, r.Seq
	v.n++
	return nil
}

// Count returns how many records verified.
func (v *Verifier) Count() int64 { return v.n }

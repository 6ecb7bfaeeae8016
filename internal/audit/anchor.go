package audit

import (
	"encoding/hex"
	"fmt"
)

// Head returns the hash of the last record verified: the head of the chain
// so far, or Genesis before any record.
func (v *Verifier) Head() []byte {
	if v.prev == nil {
		return Genesis
	}
	return v.prev
}

// An Anchor is a point of the chain recorded outside the database, such as
// the count and head printed by a verification and kept in a ticket or on
// write-once storage. The chain alone shows an edited, reordered or missing
// event, but not that its last events were deleted: what is left is a
// shorter, intact chain. Comparing it with an earlier anchor shows it.
//
// The zero value of a field is not checked.
type Anchor struct {
	Count int64  // the chain had this many events
	Head  []byte // the hash of its last event then
}

// AnchorError reports that a chain does not reach an anchor.
type AnchorError struct {
	Anchor Anchor
	Reason string
}

func (e *AnchorError) Error() string {
	return "audit: chain does not reach the expected head: " + e.Reason
}

// AnchorCheck checks that a chain reaches an anchor. Give it, with Next,
// every record that a Verifier accepted, in order; then Err says whether
// the anchor was reached. The log may have grown since the anchor was
// recorded: events after it are fine.
type AnchorCheck struct {
	Anchor Anchor

	n      int64 // records seen
	headAt int64 // sequence number of the record whose hash is Anchor.Head
	seen   bool  // whether that record was seen
}

// Next observes r, which must have verified.
func (c *AnchorCheck) Next(r Record) {
	c.n++
	if c.Anchor.Head != nil && !c.seen && string(r.Hash) == string(c.Anchor.Head) {
		c.headAt, c.seen = r.Seq, true
	}
}

// Err returns an *AnchorError when the records seen do not reach the
// anchor, and nil when they do.
func (c *AnchorCheck) Err() error {
	a := c.Anchor
	// The head of an empty log is Genesis, which every chain starts from.
	seen, headAt := c.seen, c.headAt
	if string(a.Head) == string(Genesis) {
		seen, headAt = true, 0
	}
	switch {
	case a.Count > 0 && c.n < a.Count:
		return &AnchorError{a, fmt.Sprintf("%d events, expected at least %d: events at the end were deleted", c.n, a.Count)}
	case a.Head != nil && !seen:
		return &AnchorError{a, fmt.Sprintf("no event has hash %x: events at the end were deleted or the log was replaced", a.Head)}
	case a.Head != nil && a.Count > 0 && headAt != a.Count:
		return &AnchorError{a, fmt.Sprintf("the event with hash %x is event %d, expected event %d", a.Head, headAt, a.Count)}
	}
	return nil
}

// ParseHead decodes a head as printed by a verification: hexadecimal, 64
// digits, either case.
func ParseHead(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(Genesis) {
		return nil, fmt.Errorf("audit: head %q is not %d hexadecimal digits", s, 2*len(Genesis))
	}
	return b, nil
}

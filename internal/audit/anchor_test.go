package audit_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/audit"
)

// chain returns n records chained from Genesis, as the store writes them.
func chain(n int) []audit.Record {
	var out []audit.Record
	prev := audit.Genesis
	at := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	for i := 1; i <= n; i++ {
		r := audit.Record{Seq: int64(i), At: at.Add(time.Duration(i) * time.Second), Actor: "cli", Action: "enrolment.invite",
			Object: fmt.Sprintf("enrolment:%d", i), Detail: fmt.Sprintf("policy default v1, u%d@example.com", i), Prev: prev}
		r.Hash = audit.Hash(prev, r)
		prev = r.Hash
		out = append(out, r)
	}
	return out
}

// verify runs rs through a Verifier and returns the first error, or nil,
// and the verifier.
func verify(rs []audit.Record) (*audit.Verifier, error) {
	var v audit.Verifier
	for _, r := range rs {
		if err := v.Next(r); err != nil {
			return &v, err
		}
	}
	return &v, nil
}

func TestVerifierFindsTampering(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func([]audit.Record) []audit.Record
		wantSeq int64 // 0: intact
	}{
		{"intact", func(rs []audit.Record) []audit.Record { return rs }, 0},
		{"empty", func([]audit.Record) []audit.Record { return nil }, 0},
		{"edited detail", func(rs []audit.Record) []audit.Record { rs[2].Detail = "nothing to see"; return rs }, 3},
		{"edited time", func(rs []audit.Record) []audit.Record { rs[3].At = rs[3].At.Add(-time.Hour); return rs }, 4},
		{"edited actor", func(rs []audit.Record) []audit.Record { rs[0].Actor = "admin:mallory@example.com"; return rs }, 1},
		{"moved field boundary", func(rs []audit.Record) []audit.Record {
			rs[1].Object, rs[1].Detail = rs[1].Object+"p", strings.TrimPrefix(rs[1].Detail, "p")
			return rs
		}, 2},
		{"deleted middle", func(rs []audit.Record) []audit.Record { return append(rs[:2:2], rs[3:]...) }, 4},
		{"deleted first", func(rs []audit.Record) []audit.Record { return rs[1:] }, 2},
		{"swapped", func(rs []audit.Record) []audit.Record { rs[1], rs[2] = rs[2], rs[1]; return rs }, 3},
		{"swapped content, seq kept", func(rs []audit.Record) []audit.Record {
			rs[1].Detail, rs[2].Detail = rs[2].Detail, rs[1].Detail
			return rs
		}, 2},
		{"edited and rehashed", func(rs []audit.Record) []audit.Record {
			rs[2].Detail = "nothing to see"
			rs[2].Hash = audit.Hash(rs[2].Prev, rs[2])
			return rs
		}, 4},
		{"whole tail rewritten but seq renumbered", func(rs []audit.Record) []audit.Record {
			rs[2].Seq = 7
			return rs
		}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := verify(tt.tamper(chain(6)))
			var be *audit.BrokenError
			switch {
			case tt.wantSeq == 0 && err != nil:
				t.Fatalf("Verifier.Next = %v, want intact", err)
			case tt.wantSeq != 0 && !errors.As(err, &be):
				t.Fatalf("Verifier.Next = %v, want a *BrokenError", err)
			case tt.wantSeq != 0 && be.Seq != tt.wantSeq:
				t.Errorf("broken at event %d (%s), want %d", be.Seq, be.Reason, tt.wantSeq)
			}
		})
	}
}

func TestVerifierHead(t *testing.T) {
	var v audit.Verifier
	if !bytes.Equal(v.Head(), audit.Genesis) || v.Count() != 0 {
		t.Errorf("empty Verifier: head %x, count %d; want Genesis, 0", v.Head(), v.Count())
	}
	rs := chain(3)
	v2, err := verify(rs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(v2.Head(), rs[2].Hash) || v2.Count() != 3 {
		t.Errorf("head %x, count %d; want %x, 3", v2.Head(), v2.Count(), rs[2].Hash)
	}
}

// TestAnchorDetectsTruncation: deleting the last events leaves a chain that
// verifies; only an anchor recorded earlier shows the loss.
func TestAnchorDetectsTruncation(t *testing.T) {
	full := chain(5)
	head := full[4].Hash
	other := bytes.Repeat([]byte{7}, len(head))
	tests := []struct {
		name    string
		records []audit.Record
		anchor  audit.Anchor
		ok      bool
	}{
		{"no anchor", full[:3], audit.Anchor{}, true},
		{"same log", full, audit.Anchor{Count: 5, Head: head}, true},
		{"grown since", append(full, chain(7)[5:]...), audit.Anchor{Count: 5, Head: head}, true},
		{"head only", full, audit.Anchor{Head: head}, true},
		{"count only", full, audit.Anchor{Count: 5}, true},
		{"empty log anchor", full, audit.Anchor{Head: audit.Genesis}, true},
		{"empty log anchor, empty log", nil, audit.Anchor{Count: 0, Head: audit.Genesis}, true},
		{"last deleted, head", full[:4], audit.Anchor{Head: head}, false},
		{"last deleted, count", full[:4], audit.Anchor{Count: 5}, false},
		{"last deleted, both", full[:4], audit.Anchor{Count: 5, Head: head}, false},
		{"all deleted", nil, audit.Anchor{Count: 5, Head: head}, false},
		{"unknown head", full, audit.Anchor{Head: other}, false},
		{"head at another count", full, audit.Anchor{Count: 4, Head: head}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := verify(tt.records); err != nil {
				t.Fatalf("the chain itself does not verify: %v", err)
			}
			c := audit.AnchorCheck{Anchor: tt.anchor}
			for _, r := range tt.records {
				c.Next(r)
			}
			err := c.Err()
			var ae *audit.AnchorError
			if tt.ok && err != nil {
				t.Errorf("Err() = %v, want nil", err)
			}
			if !tt.ok && !errors.As(err, &ae) {
				t.Errorf("Err() = %v, want an *AnchorError", err)
			}
		})
	}
}

func TestParseHead(t *testing.T) {
	h := chain(1)[0].Hash
	for _, s := range []string{fmt.Sprintf("%x", h), fmt.Sprintf("%X", h)} {
		got, err := audit.ParseHead(s)
		if err != nil || !bytes.Equal(got, h) {
			t.Errorf("ParseHead(%q) = %x, %v; want %x", s, got, err, h)
		}
	}
	for _, s := range []string{"", "abc", fmt.Sprintf("%x", h)[:62], fmt.Sprintf("%x00", h), strings.Repeat("g", 64)} {
		if _, err := audit.ParseHead(s); err == nil {
			t.Errorf("ParseHead(%q) succeeded, want an error", s)
		}
	}
}

func ExampleAnchorCheck() {
	var records []audit.Record
	prev := audit.Genesis
	for i := int64(1); i <= 3; i++ {
		r := audit.Record{Seq: i, At: time.Unix(i, 0), Actor: "cli", Action: "enrolment.invite", Object: fmt.Sprint("enrolment:", i), Prev: prev}
		r.Hash = audit.Hash(prev, r)
		prev = r.Hash
		records = append(records, r)
	}
	// Yesterday's verification printed "3 events, head ..."; since then
	// someone deleted the last event.
	yesterday := audit.Anchor{Count: 3, Head: records[2].Hash}
	records = records[:2]

	var v audit.Verifier
	check := audit.AnchorCheck{Anchor: yesterday}
	for _, r := range records {
		if err := v.Next(r); err != nil {
			fmt.Println(err)
			return
		}
		check.Next(r)
	}
	fmt.Println("chain intact:", v.Count(), "events")
	fmt.Println(check.Err())
	// Output:
	// chain intact: 2 events
	// audit: chain does not reach the expected head: 2 events, expected at least 3: events at the end were deleted
}

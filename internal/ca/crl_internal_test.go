package ca

import (
	"bytes"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"
)

// TestAppendHeader compares the hand-written DER headers with
// encoding/asn1 for each length form.
func TestAppendHeader(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 255, 256, 65535, 65536, 1<<24 - 1, 1 << 24, 50_000_000} {
		want, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: make([]byte, n)})
		if err != nil {
			t.Fatal(err)
		}
		want = want[:len(want)-n]
		if got := appendHeader(nil, 0x30, n); !bytes.Equal(got, want) {
			t.Errorf("appendHeader(0x30, %d) = %x, want %x", n, got, want)
		}
		if len(want) > headerRoom {
			t.Errorf("a header of %d octets exceeds headerRoom", len(want))
		}
	}
}

// TestAppendTime compares the hand-written times with encoding/asn1,
// which picks UTCTime and GeneralizedTime as RFC 5280 wants.
func TestAppendTime(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 27, 9, 5, 7, 0, time.UTC),
		time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2126, 6, 30, 12, 0, 0, 0, time.FixedZone("X", 3600)),
	} {
		want, err := asn1.Marshal(tm.UTC())
		if err != nil {
			t.Fatal(err)
		}
		if got := appendTime(nil, tm); !bytes.Equal(got, want) {
			t.Errorf("appendTime(%s) = %q, want %q", tm, got, want)
		}
	}
}

// TestSerialDER compares serial encodings with encoding/asn1.
func TestSerialDER(t *testing.T) {
	for _, s := range []string{"1", "7f", "80", "ff", "100", "0080", "00ff", "abc", "7fffffffffffffffffffffffffffffffffffffff", "ffffffffffffffffffffffffffffffffffffffff"} {
		n, _ := new(big.Int).SetString(s, 16)
		want, _ := asn1.Marshal(n)
		var buf [serialBytes + 1]byte
		got, err := serialDER(buf[:], []byte(s))
		if err != nil || !bytes.Equal(got, want[2:]) {
			t.Errorf("serialDER(%s) = %x, %v; want %x", s, got, err, want[2:])
		}
	}
	for _, bad := range []string{"", "xyz", "12 4", "fffffffffffffffffffffffffffffffffffffffff"} {
		var buf [serialBytes + 1]byte
		if _, err := serialDER(buf[:], []byte(bad)); err == nil {
			t.Errorf("serialDER(%q) succeeded", bad)
		}
	}
}

package enrolment

import (
	"net/http/httptest"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := newLimiter(3, 10*time.Minute, func() time.Time { return now })
	from := func(addr string) bool {
		r := httptest.NewRequest("POST", "/enrol/x", nil)
		r.RemoteAddr = addr
		return l.allow(r)
	}
	for i := range 3 {
		if !from("192.0.2.7:4000") {
			t.Fatalf("request %d refused within the limit", i+1)
		}
	}
	if from("192.0.2.7:4001") {
		t.Errorf("fourth request from the same address allowed")
	}
	if !from("192.0.2.8:4000") {
		t.Errorf("another address refused")
	}
	// One IPv6 client holds a /64: its addresses share a count.
	for i, a := range []string{"[2001:db8::1]:1", "[2001:db8::2]:1", "[2001:db8::3]:1"} {
		if !from(a) {
			t.Fatalf("IPv6 request %d refused", i+1)
		}
	}
	if from("[2001:db8::ffff]:1") {
		t.Errorf("a fourth address of the same /64 allowed")
	}
	if from("not an address") {
		t.Errorf("an unparseable client allowed")
	}
	now = now.Add(10 * time.Minute)
	if !from("192.0.2.7:4000") {
		t.Errorf("the limit did not reset after the window")
	}
}

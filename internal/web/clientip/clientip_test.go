package clientip_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mailca/mailca/internal/web/clientip"
)

func TestAddr(t *testing.T) {
	trusted, err := clientip.Parse([]string{"127.0.0.1/32", "10.0.0.0/8", "2001:db8::1"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		remote  string
		xff     []string
		trusted bool // use trusted; otherwise none
		want    string
	}{
		{"no proxies configured, header ignored", "192.0.2.1:4000", []string{"203.0.113.9"}, false, "192.0.2.1"},
		{"forged header from an untrusted peer", "192.0.2.1:4000", []string{"203.0.113.9"}, true, "192.0.2.1"},
		{"forged header, IPv6 peer", "[2001:db8::2]:443", []string{"203.0.113.9"}, true, "2001:db8::2"},
		{"trusted proxy", "127.0.0.1:5000", []string{"203.0.113.9"}, true, "203.0.113.9"},
		{"trusted IPv6 proxy", "[2001:db8::1]:5000", []string{"203.0.113.9"}, true, "203.0.113.9"},
		{"client forges a left entry", "127.0.0.1:5000", []string{"198.51.100.66, 203.0.113.9"}, true, "203.0.113.9"},
		{"chain of trusted proxies", "127.0.0.1:5000", []string{"198.51.100.66, 203.0.113.9, 10.1.2.3"}, true, "203.0.113.9"},
		{"several header lines", "127.0.0.1:5000", []string{"198.51.100.66", "203.0.113.9, 10.1.2.3"}, true, "203.0.113.9"},
		{"trusted proxy, no header", "127.0.0.1:5000", nil, true, "127.0.0.1"},
		{"all hops trusted", "127.0.0.1:5000", []string{"10.0.0.7, 10.0.0.8"}, true, "10.0.0.7"},
		{"junk entry stops the walk", "127.0.0.1:5000", []string{"203.0.113.9, junk, 10.0.0.8"}, true, "10.0.0.8"},
		{"entry with a port", "127.0.0.1:5000", []string{"203.0.113.9:1234"}, true, "203.0.113.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			var tr = trusted
			if !tt.trusted {
				tr = nil
			}
			if got := clientip.Addr(r, tr); got != tt.want {
				t.Errorf("Addr(%s, %q) = %q, want %q", tt.remote, tt.xff, got, tt.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	if _, err := clientip.Parse([]string{"10.0.0.0/8", "::1", "fd00::/8"}); err != nil {
		t.Errorf("Parse(good) = %v", err)
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.example.org", ""} {
		if _, err := clientip.Parse([]string{bad}); err == nil {
			t.Errorf("Parse(%q) = nil error, want one", bad)
		}
	}
}

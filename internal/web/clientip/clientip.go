// Package clientip finds the address of the client behind a request, through the reverse proxies trusted to say it.
package clientip

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Parse returns the prefixes of cidrs ("10.0.0.0/8", "127.0.0.1/32", or a
// bare address, which is one host), for Addr; an error naming the first
// that is not one.
func Parse(cidrs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cidrs))
	for _, c := range cidrs {
		c = strings.TrimSpace(c)
		p, err := netip.ParsePrefix(c)
		if err != nil {
			a, aerr := netip.ParseAddr(c)
			if aerr != nil {
				return nil, fmt.Errorf("clientip: %q is not a CIDR such as 10.0.0.0/8", c)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Addr returns the address of the client of r, without a port: the
// connection's address, unless that is in trusted, a proxy's; then the
// right-most address of the X-Forwarded-For header that is not in
// trusted. Entries left of that one were written by the client or by
// proxies nobody vouches for, so they are never used: a client that
// reaches mailca directly cannot choose its address with a forged
// header. When every forwarded address is trusted, the left-most is the
// answer; an entry that is not an address stops the walk, and the last
// trusted address before it is the answer.
func Addr(r *http.Request, trusted []netip.Prefix) string {
	peer := r.RemoteAddr
	if host, _, err := net.SplitHostPort(peer); err == nil {
		peer = host
	}
	if len(trusted) == 0 {
		return peer
	}
	a, ok := parse(peer)
	if !ok || !contains(trusted, a) {
		return peer
	}
	last := a.String()
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		hops := strings.Split(values[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			hop, ok := parse(strings.TrimSpace(hops[j]))
			if !ok {
				return last
			}
			if !contains(trusted, hop) {
				return hop.String()
			}
			last = hop.String()
		}
	}
	return last
}

// parse reads an address, with or without a port or brackets.
func parse(s string) (netip.Addr, bool) {
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

func contains(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

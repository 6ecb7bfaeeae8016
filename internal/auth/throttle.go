package auth

import (
	"container/list"
	"net"
	"net/netip"
	"sync"
	"time"
)

// The login throttle: each client address may make throttleBurst attempts
// at once, and one more every throttleEvery. It keeps a burst of guesses,
// and the argon2id work each one costs, off the server; the per-account
// lockout is what protects an account from guesses spread over addresses.
const (
	throttleBurst = 10
	throttleEvery = 20 * time.Second
	// throttleKeep is how many addresses the throttle remembers: past it,
	// the least recently seen is forgotten. A client forgotten gets a full
	// bucket again, so this bounds memory, and time under the mutex, at
	// the cost of letting an attacker with more addresses than this reset
	// its own buckets (it could as well use the addresses).
	throttleKeep = 10000
)

// throttle is a token bucket per client address, in memory: it protects
// this process's CPU, so it needs no sharing between nodes.
type throttle struct {
	mu      sync.Mutex
	buckets map[string]*list.Element // of *bucket
	order   list.List                // least recently seen first
}

type bucket struct {
	key    string
	tokens float64
	at     time.Time
}

// allow takes a token from from's bucket at now, and reports whether there
// was one. It takes constant time.
func (t *throttle) allow(from string, now time.Time) bool {
	key := clientKey(from)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.buckets == nil {
		t.buckets = map[string]*list.Element{}
	}
	el, ok := t.buckets[key]
	if ok {
		t.order.MoveToBack(el)
	} else {
		if len(t.buckets) >= throttleKeep {
			oldest := t.order.Front()
			delete(t.buckets, oldest.Value.(*bucket).key)
			t.order.Remove(oldest)
		}
		el = t.order.PushBack(&bucket{key: key, tokens: throttleBurst, at: now})
		t.buckets[key] = el
	}
	b := el.Value.(*bucket)
	if b.refill(now) < 1 {
		return false
	}
	b.tokens--
	return true
}

// size returns how many addresses the throttle remembers.
func (t *throttle) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.buckets)
}

// refill adds the tokens earned since the bucket was last used, and
// returns how many it holds.
func (b *bucket) refill(now time.Time) float64 {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(throttleBurst, b.tokens+float64(d)/float64(throttleEvery))
		b.at = now
	}
	return b.tokens
}

// clientKey returns the throttle key of a client address ("192.0.2.1",
// "192.0.2.1:5123", "[2001:db8::1]:443"): the IPv4 address, or the /64
// of an IPv6 address, since one IPv6 client commonly holds a whole /64.
// Anything else is its own key.
func clientKey(from string) string {
	host := from
	if h, _, err := net.SplitHostPort(from); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return from
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, _ := ip.WithZone("").Prefix(64)
	return p.String()
}

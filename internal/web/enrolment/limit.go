package enrolment

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Anyone may ask for an open self-enrolment link or submit a referral, and
// each does so makes mailca send email. limiter caps how many such requests
// one network may make in a window, so the pages cannot be used to flood the
// mailboxes of an allowed domain. Networks are /32 for IPv4 and /64 for
// IPv6, since one IPv6 client commonly holds a whole /64.
type limiter struct {
	mu     sync.Mutex
	window time.Duration
	max    int // requests per network per window
	start  time.Time
	counts map[netip.Prefix]int
	now    func() time.Time
}

// maxTracked bounds the memory of a limiter; past it, new networks are
// refused until the window ends, which only a flood reaches.
const maxTracked = 100_000

func newLimiter(max int, window time.Duration, now func() time.Time) *limiter {
	if now == nil {
		now = time.Now
	}
	return &limiter{window: window, max: max, counts: map[netip.Prefix]int{}, now: now}
}

// allow records a request from r's client and reports whether it is within
// the limit.
func (l *limiter) allow(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap().WithZone("")
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	key, _ := ip.Prefix(bits)

	l.mu.Lock()
	defer l.mu.Unlock()
	if now := l.now(); now.Sub(l.start) >= l.window {
		l.start, l.counts = now, map[netip.Prefix]int{}
	}
	n, seen := l.counts[key]
	if !seen && len(l.counts) >= maxTracked {
		return false
	}
	if n >= l.max {
		return false
	}
	l.counts[key] = n + 1
	return true
}

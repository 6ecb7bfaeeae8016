package api

import (
	"sync"
	"time"
)

// limiter is a token bucket per key: rate tokens a second up to burst.
// Buckets live in memory, so each node limits on its own.
type limiter struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), buckets: map[string]*bucket{}}
}

// take takes a token from id's bucket at now. When there is none it
// returns false and the seconds until there is one.
func (l *limiter) take(id string, now time.Time) (bool, float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[id]
	if b == nil {
		if len(l.buckets) > 10000 {
			l.buckets = map[string]*bucket{} // bounded; a reset only forgives
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[id] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false, (1 - b.tokens) / l.rate
	}
	b.tokens--
	return true, 0
}

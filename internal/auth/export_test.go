package auth

import "time"

// ThrottleAllow exposes the login throttle to the tests.
func (s *Service) ThrottleAllow(from string, now time.Time) bool { return s.thr.allow(from, now) }

// ThrottleSize returns how many client addresses the throttle remembers.
func (s *Service) ThrottleSize() int { return s.thr.size() }

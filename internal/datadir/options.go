package datadir

import (
	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/enrol"
)

// Option adjusts the objects Open builds.
type Option func(*options)

type options struct {
	ca    ca.Observer
	enrol enrol.Observer
}

// WithObservers makes the engine report to c and the enrolment service to
// e, for metrics; either may be nil.
func WithObservers(c ca.Observer, e enrol.Observer) Option {
	return func(o *options) { o.ca, o.enrol = c, e }
}

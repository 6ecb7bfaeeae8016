package enrol

// Observer is told of enrolment transitions once they are committed, for
// counting them (see internal/metrics). Its methods must not block and
// are given nothing that names a person.
type Observer interface {
	Invited()   // an invitation was stored and its email enqueued
	Submitted() // an application came in, by invitation, verification or referral
	Approved()  // an application was approved, by approvers or automatically
	Rejected()  // an application was rejected
}

// noObserver is the Observer of a service configured without one.
type noObserver struct{}

func (noObserver) Invited()   {}
func (noObserver) Submitted() {}
func (noObserver) Approved()  {}
func (noObserver) Rejected()  {}

// observeSubmit reports a committed submission, and its approval when the
// policy approved it at once.
func (s *Service) observeSubmit(e *Enrolment, err error) {
	if err != nil || e == nil {
		return
	}
	s.obs.Submitted()
	if e.State == Approved {
		s.obs.Approved()
	}
}

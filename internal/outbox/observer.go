package outbox

// Observer is told of delivery outcomes, for counting them (see
// internal/metrics). Its methods must not block and are given nothing that
// names the recipient.
type Observer interface {
	// Sent is called once per message the server accepted, before the
	// delivery is recorded: the message is out even if recording fails.
	Sent()
	// Failed is called once per failed attempt whose outcome was recorded:
	// permanent when the message failed for good, otherwise it will be
	// tried again.
	Failed(permanent bool)
}

// noObserver is the Observer of a worker configured without one.
type noObserver struct{}

func (noObserver) Sent()       {}
func (noObserver) Failed(bool) {}

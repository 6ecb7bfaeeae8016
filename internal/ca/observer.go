package ca

// Observer is told of the engine's outcomes, for counting them (see
// internal/metrics). Its methods are called after the outcome is stored,
// must not block, and are given nothing that names a subscriber: no
// mailbox, no serial.
type Observer interface {
	// Issued is called once per certificate signed and stored, with its
	// profile name.
	Issued(profile string)
	// LintRefused is called once per certificate the linter refused.
	LintRefused()
}

// noObserver is the Observer of an engine configured without one.
type noObserver struct{}

func (noObserver) Issued(string) {}
func (noObserver) LintRefused()  {}

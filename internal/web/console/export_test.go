package console

// Routes returns every route the console registered, in order, for the
// authorization matrix test: a new route cannot be left out of it.
func (c *Console) Routes() []Route { return append([]Route(nil), c.table...) }

// Closing is closed when Close begins; Stopping when Close cancels the
// imports still running. The shutdown tests hold an import until then.
func (c *Console) Closing() <-chan struct{}  { return c.closed }
func (c *Console) Stopping() <-chan struct{} { return c.stop.Done() }

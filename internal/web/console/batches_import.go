package console

import (
	"context"
	"os"
	"sync"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/errs"
)

// startImport runs enrol.Service.InviteCSV on file in the background and
// returns the batch's ID once the batch exists. InviteCSV stores each
// chunk's report lines with the chunk, for the batch page and report.csv,
// and the batch's error when it stops. The import outlives the request
// but not Close; file is closed and removed when it is done.
//
// When InviteCSV refuses the file before creating a batch (unknown policy,
// no invitation channel, no email column), or the console is closing,
// startImport returns that error.
func (c *Console) startImport(ctx context.Context, actor, policy, filename string, file *os.File) (int64, error) {
	c.importMu.Lock()
	if c.closing {
		c.importMu.Unlock()
		file.Close()
		os.Remove(file.Name())
		return 0, errs.E(errs.Conflict, "the server is shutting down; upload the file again in a minute")
	}
	c.imports.Add(1)
	c.importMu.Unlock()

	type started struct {
		id  int64
		err error
	}
	ch := make(chan started, 1)
	var once sync.Once
	announce := func(id int64, err error) {
		once.Do(func() { ch <- started{id, err} })
	}
	ctx = importContext{Context: c.stop, values: ctx}
	go func() {
		defer c.imports.Done()
		defer os.Remove(file.Name())
		defer file.Close()
		report := func(res enrol.RowResult) error {
			// The first row is reported after the first chunk is
			// committed, and with it the batch.
			announce(res.BatchID, nil)
			return nil
		}
		b, err := c.cfg.Enrol.InviteCSV(ctx, actor, policy, filename, file, report)
		if b == nil {
			// Refused before a batch was made: the form says why.
			announce(0, err)
			return
		}
		announce(b.ID, nil)
		if err != nil {
			c.log.Error("console: batch import stopped", "batch", b.ID, "err", err)
		}
	}()
	s := <-ch
	return s.id, s.err
}

// importContext is the context of a background import: the values of the
// request that started it (the audit details), and the cancellation of
// the console's Close, not the request's.
type importContext struct {
	context.Context // Console.stop
	values          context.Context
}

func (c importContext) Value(key any) any {
	if v := c.Context.Value(key); v != nil {
		return v // the context package's own keys, for context.Cause
	}
	return c.values.Value(key)
}

// Close waits for the background imports to end; the console starts no
// more. When ctx ends first, it cancels them with enrol.ErrShutdown: each
// stops after the chunk it is writing, its batch marked failed
// "interrupted by shutdown", and Close returns once they have. serve calls
// it after its HTTP server stopped.
func (c *Console) Close(ctx context.Context) {
	c.importMu.Lock()
	if !c.closing {
		c.closing = true
		close(c.closed)
	}
	c.importMu.Unlock()
	done := make(chan struct{})
	go func() {
		c.imports.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		c.log.Warn("console: stopping the batch imports still running at the shutdown deadline")
		c.stopAll(enrol.ErrShutdown)
		<-done
	}
	c.stopAll(enrol.ErrShutdown)
}

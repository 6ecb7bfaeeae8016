package main

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

// TestReloadEvery: the templates are read again every period, a failure
// does not stop the next reload, and the loop ends with its context.
func TestReloadEvery(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan struct{}, 8)
	n := 0
	reload := func() error {
		n++
		calls <- struct{}{}
		if n == 1 {
			return errors.New("a template directory that cannot be read")
		}
		return nil
	}
	done := make(chan struct{})
	go func() {
		reloadEvery(ctx, time.Millisecond, reload, slog.New(slog.DiscardHandler))
		close(done)
	}()
	for i := range 3 {
		select {
		case <-calls:
		case <-time.After(10 * time.Second):
			t.Fatalf("reload %d never came", i+1)
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("reloadEvery did not stop with its context")
	}
}

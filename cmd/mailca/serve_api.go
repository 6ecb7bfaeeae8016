package main

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"

	"github.com/mailca/mailca/internal/apikey"
	"github.com/mailca/mailca/internal/datadir"
	"github.com/mailca/mailca/internal/web/api"
	"github.com/mailca/mailca/internal/webhook"
)

// newAPI returns the integration API's handler for serve (mounted at
// /api/v1/ by package web).
func newAPI(in *datadir.Instance, chain []byte, logger *slog.Logger) (http.Handler, error) {
	return api.New(api.Config{
		Enrol: in.Enrol, Keys: apikey.NewService(in.DB, nil), Store: in.DB,
		PublicURL: in.Config.Server.PublicURL, ChainPEM: chain, Logger: logger,
		SpoolDir: filepath.Join(in.Config.Dir, "spool"),
	})
}

// startWebhooks runs the webhook dispatcher until ctx is done. It follows
// the audit log, so it needs nothing from the transitions themselves.
func startWebhooks(ctx context.Context, wg *sync.WaitGroup, in *datadir.Instance, logger *slog.Logger) {
	d := webhook.NewDispatcher(webhook.Config{Store: in.DB, Logger: logger})
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.Run(ctx)
	}()
}

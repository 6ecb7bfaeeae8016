package postgres

import "github.com/mailca/mailca/internal/store"

var _ store.Store = (*DB)(nil)

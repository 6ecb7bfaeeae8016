package audit

import (
	"context"
	"strings"
)

type originKey struct{}

// WithOrigin returns ctx carrying the address a request came from. The
// stores add it to the detail of every audit event appended in a
// transaction run with that context, so the log says from where without
// each caller passing the address along.
func WithOrigin(ctx context.Context, addr string) context.Context {
	if addr == "" {
		return ctx
	}
	return context.WithValue(ctx, originKey{}, addr)
}

// Origin returns the address of WithOrigin, or "" when ctx has none.
func Origin(ctx context.Context) string {
	s, _ := ctx.Value(originKey{}).(string)
	return s
}

// maxOrigin bounds what a client can make us write: an address with a
// port is at most 47 bytes.
const maxOrigin = 64

// DetailFrom returns detail with ", from ADDR" appended for the origin of
// ctx, or detail itself when ctx carries none.
func DetailFrom(ctx context.Context, detail string) string {
	from := Origin(ctx)
	if from == "" {
		return detail
	}
	if len(from) > maxOrigin {
		from = from[:maxOrigin]
	}
	from = strings.ToValidUTF8(from, "?")
	if detail == "" {
		return "from " + from
	}
	return detail + ", from " + from
}

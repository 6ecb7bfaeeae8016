package web

import "net/http"

// htmlPolicy lets an email's HTML part show with its inline styles and
// nothing else: no script, no fetch, no form, in a sandbox, and only
// inside our own page.
const htmlPolicy = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"

// html serves an email's HTML part for the frame of the show page.
//
// Pattern: GET /dev/mailbox/{id}/html (loopback only).
func (d *devMailbox) html(w http.ResponseWriter, r *http.Request) {
	m := d.message(w, r)
	if m == nil {
		return
	}
	if m.HTML == "" {
		d.notFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", htmlPolicy)
	h.Set("X-Frame-Options", "SAMEORIGIN")
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.Write([]byte(m.HTML))
}

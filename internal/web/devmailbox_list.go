package web

import "net/http"

// list shows the newest emails.
//
// Pattern: GET /dev/mailbox (loopback only).
func (d *devMailbox) list(w http.ResponseWriter, r *http.Request) {
	msgs, err := d.box.List(r.Context(), 200)
	if err != nil {
		d.log.ErrorContext(r.Context(), "web: dev mailbox list", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	d.render(w, r, "dev_list", struct {
		Title    string
		Messages []DevMessage
	}{"Development mailbox", msgs})
}

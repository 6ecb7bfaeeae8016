package console

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/store"
)

// certificatesPage is the data of the certificates view.
type certificatesPage struct {
	Q     string
	Rows  []store.CertificateRow
	Next  string
	First string
}

// certificateSearch fills q's search from what was typed (see
// parseSearch): a serial when it reads as one, else a mailbox or a
// surname; certificates are not searched by given name.
func certificateSearch(q *store.CertificateQuery, typed string) {
	s := parseSearch(typed)
	switch {
	case s.Serial != "":
		q.Serial = s.Serial
	case s.Mailbox != "":
		q.Mailbox = s.Mailbox
	default:
		q.Surname = s.Surname
	}
}

// normalSerial returns typed as the store writes serials (lower-case hex
// without leading zeros), or "" when it is not hex.
func normalSerial(typed string) string {
	s := strings.ToLower(strings.NewReplacer(":", "", " ", "", "-", "").Replace(typed))
	s = strings.TrimPrefix(s, "0x")
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return ""
		}
	}
	if t := strings.TrimLeft(s, "0"); t != "" {
		return t
	}
	return s
}

// certificateList lists issued certificates, newest first, or those whose
// mailbox, serial or surname starts with q; an officer limited to policies
// sees only the certificates issued under them.
//
// Pattern: GET /console/certificates (q, after).
func (c *Console) certificateList(w http.ResponseWriter, r *http.Request) {
	p := auth.FromContext(r.Context())
	data := certificatesPage{Q: r.URL.Query().Get("q")}
	policies, ok := scope(p, "")
	q := store.CertificateQuery{Policies: policies, After: r.URL.Query().Get("after"), Limit: pageSize + 1}
	certificateSearch(&q, data.Q)
	var rows []store.CertificateRow
	var err error
	if ok { // an officer of no policies sees none
		if rows, err = c.cfg.Store.ListCertificates(r.Context(), q); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	if len(rows) > pageSize {
		rows = rows[:pageSize]
		data.Next = pageLink("/console/certificates", url.Values{"q": {data.Q}, "after": {rows[pageSize-1].Serial}})
	}
	if q.After != "" {
		data.First = pageLink("/console/certificates", url.Values{"q": {data.Q}})
	}
	data.Rows = rows
	c.render(w, r, http.StatusOK, "certificates", data)
}

package console

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/store"
)

// batchPage is the data of the batch view.
type batchPage struct {
	Batch       *enrol.Batch
	Rows        []store.BatchRow
	RefusedOnly bool
	Next        string
	Self        string // this page, for the refresh link
	// Stalled: the import stopped with its process (enrol.Batch.Stalled).
	Stalled bool
}

// batch returns the batch of the path's {id} when p may see it.
func (c *Console) batch(r *http.Request) (*enrol.Batch, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return nil, err
	}
	b, err := c.cfg.Store.Batch(r.Context(), id)
	if isNotFound(err) || (err == nil && !auth.FromContext(r.Context()).CanPolicy(b.Policy)) {
		return nil, errHidden
	}
	return b, err
}

// batchShow shows a CSV batch: its progress while it is imported (the
// element #batch-state holds importing, done or failed; batch.js reloads
// the page while it says importing) and its report, a page of lines at a
// time (after=<line>; refused=1 for the refused lines only).
//
// Pattern: GET /console/batches/{id} (after, refused).
func (c *Console) batchShow(w http.ResponseWriter, r *http.Request) {
	b, err := c.batch(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	data := batchPage{Batch: b, RefusedOnly: r.URL.Query().Get("refused") == "1", Self: r.URL.RequestURI(), Stalled: b.Stalled(c.now())}
	after := int(queryID(r, "after"))
	if data.Rows, err = c.cfg.Store.BatchRows(r.Context(), b.ID, after, data.RefusedOnly, pageSize+1); err != nil {
		c.fail(w, r, err)
		return
	}
	if len(data.Rows) > pageSize {
		data.Rows = data.Rows[:pageSize]
		q := url.Values{"after": {strconv.Itoa(data.Rows[pageSize-1].Line)}}
		if data.RefusedOnly {
			q.Set("refused", "1")
		}
		data.Next = pageLink("/console/batches/"+strconv.FormatInt(b.ID, 10), q)
	}
	c.render(w, r, http.StatusOK, "batch", data)
}

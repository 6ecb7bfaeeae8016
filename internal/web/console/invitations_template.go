package console

import (
	"encoding/csv"
	"net/http"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/csvbatch"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/errs"
)

// invitationTemplateCSV downloads an empty invitation list for a policy:
// the header with the columns the CSV reader knows (email, given name,
// surname) and the policy's custom fields, which InviteCSV takes from the
// columns of those names.
//
// Pattern: GET /console/invitations/template.csv (policy).
func (c *Console) invitationTemplateCSV(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("policy")
	if !auth.FromContext(r.Context()).CanPolicy(name) {
		c.fail(w, r, errs.E(errs.NotFound, "no policy named %q", name))
		return
	}
	p, err := c.cfg.Enrol.Policy(r.Context(), name)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	header := []string{csvbatch.ColumnEmail, csvbatch.ColumnGivenName, csvbatch.ColumnSurname}
	for _, f := range p.Fields {
		if f.Name != enrol.FieldGivenName && f.Name != enrol.FieldSurname {
			header = append(header, f.Name)
		}
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="invitations-`+p.Name+`.csv"`)
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	cw.Write(header)
	cw.Flush()
}

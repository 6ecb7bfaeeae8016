package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/mailca/mailca/internal/audit"
	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/errs"
	"github.com/mailca/mailca/internal/store"
)

// pageRoutes registers the pages of invitations, batches, the Authorization
// Panel, certificates, policies and templates. Every domain rule is
// enrol.Service's: these handlers read forms, check that an officer limited
// to named policies acts only under those, call the service and show what
// it says.
func (c *Console) pageRoutes(handle handleFunc) {
	handle("GET /console/invitations", auth.ViewEnrolments, c.invitationList)
	handle("GET /console/invitations/new", auth.Invite, c.invitationNew)
	handle("POST /console/invitations", auth.Invite, c.invitationCreate)
	handle("GET /console/invitations/upload", auth.Invite, c.invitationUpload)
	handle("POST /console/invitations/upload", auth.Invite, c.invitationUploadSubmit)
	handle("GET /console/invitations/template.csv", auth.Invite, c.invitationTemplateCSV)
	handle("GET /console/batches/{id}", auth.ViewEnrolments, c.batchShow)
	handle("GET /console/batches/{id}/report.csv", auth.ViewEnrolments, c.batchReportCSV)
	handle("POST /console/enrolments/{id}/resend", auth.Invite, c.enrolmentResend)
	handle("POST /console/enrolments/{id}/cancel", auth.Invite, c.enrolmentCancel)

	handle("GET /console/applications", auth.ViewEnrolments, c.applicationList)
	handle("GET /console/enrolments/{id}", auth.ViewEnrolments, c.enrolmentShow)
	handle("POST /console/enrolments/{id}/approve", auth.Approve, c.applicationApprove)
	handle("POST /console/enrolments/{id}/reject", auth.Approve, c.applicationReject)
	handle("POST /console/applications/approve", auth.Approve, c.applicationBulkApprove)

	handle("GET /console/certificates", auth.ViewEnrolments, c.certificateList)
	handle("GET /console/certificates/{serial}", auth.ViewEnrolments, c.certificateShow)
	handle("GET /console/certificates/{serial}/cert.pem", auth.ViewEnrolments, c.certificatePEM)
	handle("GET /console/certificates/{serial}/chain.pem", auth.ViewEnrolments, c.certificateChainPEM)
	handle("POST /console/certificates/{serial}/revoke", auth.Revoke, c.certificateRevoke)

	// Policies hold the referral sites' secrets: only those who edit them
	// read them.
	handle("GET /console/policies", auth.EditPolicies, c.policyList)
	handle("GET /console/policies/new", auth.EditPolicies, c.policyNew)
	handle("POST /console/policies", auth.EditPolicies, c.policyCreate)
	handle("GET /console/policies/{name}", auth.EditPolicies, c.policyEdit)
	handle("POST /console/policies/{name}", auth.EditPolicies, c.policySave)
	handle("POST /console/policies/{name}/clone", auth.EditPolicies, c.policyClone)
	handle("GET /console/policies/{name}/history", auth.EditPolicies, c.policyHistory)

	handle("GET /console/templates", auth.EditTemplates, c.templateList)
	handle("GET /console/templates/{policy}/{name}", auth.EditTemplates, c.templateEdit)
	handle("POST /console/templates/{policy}/{name}", auth.EditTemplates, c.templateSave)
	handle("POST /console/templates/{policy}/{name}/preview", auth.EditTemplates, c.templatePreview)
}

// pageStore is the read queries of those pages (and the two writes of a
// batch's report); *sqlite.DB implements it (console_lists.go).
type pageStore interface {
	// ListEnrolments returns a page of enrolments, newest first or in the
	// order of the key searched; q.After is the previous page's last ID.
	ListEnrolments(ctx context.Context, q store.EnrolmentQuery) ([]*enrol.Enrolment, error)
	// ListApplications returns a page of the applications waiting for
	// approval, oldest submission first, with their approvers so far.
	ListApplications(ctx context.Context, q store.QueueQuery) ([]*enrol.Enrolment, error)
	// ListCertificates returns a page of issued certificates; q.After is
	// the previous page's last serial.
	ListCertificates(ctx context.Context, q store.CertificateQuery) ([]store.CertificateRow, error)
	// CertificateRow returns an issued certificate with its DER, or
	// enrol.ErrNotFound.
	CertificateRow(ctx context.Context, serial string) (*store.CertificateRow, error)
	// EnrolmentHistory returns the audit events of an enrolment, oldest first.
	EnrolmentHistory(ctx context.Context, id int64) ([]audit.Record, error)
	// EnrolmentValidations returns how an enrolment's mailbox was validated.
	EnrolmentValidations(ctx context.Context, id int64) ([]enrol.Validation, error)

	// Batch returns a CSV batch, or enrol.ErrNotFound.
	Batch(ctx context.Context, id int64) (*enrol.Batch, error)
	// RecentBatches returns the newest batches, newest first.
	RecentBatches(ctx context.Context, limit int) ([]*enrol.Batch, error)
	// BatchRows returns up to limit report rows after the given line.
	BatchRows(ctx context.Context, batchID int64, afterLine int, refusedOnly bool, limit int) ([]store.BatchRow, error)
	// ScanBatchRows calls fn with every report row, in line order.
	ScanBatchRows(ctx context.Context, batchID int64, fn func(store.BatchRow) error) error
}

// pageSize is the number of rows of every list page.
const pageSize = 50

// scope returns the policies a list shows to p when the page's filter
// names chosen ("" for all): nil for every policy, or the policies an
// officer is limited to. ok is false when p may not see chosen at all.
func scope(p *auth.Principal, chosen string) (policies []string, ok bool) {
	if chosen != "" {
		return []string{chosen}, p.CanPolicy(chosen)
	}
	if policies, limited := p.Scope(); limited {
		// An officer of no policies sees none; a nil filter would be all.
		return policies, len(policies) > 0
	}
	return nil, true
}

// visiblePolicies returns the names of the policies p may act under.
func (c *Console) visiblePolicies(ctx context.Context, p *auth.Principal) ([]string, error) {
	names, err := c.cfg.Enrol.PolicyNames(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(names, func(n string) bool { return !p.CanPolicy(n) }), nil
}

// errHidden is what a principal sees of an enrolment or certificate of a
// policy they are not limited to: the same as one that does not exist.
var errHidden = errs.E(errs.NotFound, "there is no such enrolment or certificate, or it is not under your policies")

// pathID returns the numeric path value name; an errs.NotFound otherwise.
func pathID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, errs.E(errs.NotFound, "there is no such page")
	}
	return id, nil
}

// queryID returns the numeric query parameter name, 0 when absent or bad.
func queryID(r *http.Request, name string) int64 {
	id, err := strconv.ParseInt(r.URL.Query().Get(name), 10, 64)
	if err != nil || id < 0 {
		return 0
	}
	return id
}

// enrolmentFor returns the enrolment id when p may see it: errHidden for
// an officer's other policies.
func (c *Console) enrolmentFor(ctx context.Context, p *auth.Principal, id int64) (*enrol.Enrolment, error) {
	e, err := c.cfg.Enrol.Enrolment(ctx, id)
	if err != nil {
		return nil, err
	}
	if !p.CanPolicy(e.Policy) {
		return nil, errHidden
	}
	return e, nil
}

// pathEnrolment returns the principal and the enrolment of the path's {id}
// when the principal may see it; otherwise it answers the request and
// reports false.
func (c *Console) pathEnrolment(w http.ResponseWriter, r *http.Request) (*auth.Principal, *enrol.Enrolment, bool) {
	p := auth.FromContext(r.Context())
	id, err := pathID(r, "id")
	if err != nil {
		c.fail(w, r, err)
		return nil, nil, false
	}
	e, err := c.enrolmentFor(r.Context(), p, id)
	if err != nil {
		c.fail(w, r, err)
		return nil, nil, false
	}
	return p, e, true
}

// pageLink returns path with the query values q, "" ones left out.
func pageLink(path string, q url.Values) string {
	for k, v := range q {
		if len(v) == 0 || v[0] == "" {
			delete(q, k)
		}
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// localBack returns the form's "back" value when it is a console path, or
// fallback: a redirect never leaves the console.
func localBack(r *http.Request, fallback string) string {
	b := r.PostFormValue("back")
	if u, err := url.Parse(b); err == nil && u.Scheme == "" && u.Host == "" && strings.HasPrefix(b, "/console/") && !strings.ContainsAny(b, "\\\r\n") {
		return b
	}
	return fallback
}

// isNotFound reports whether err is the store's "not found".
func isNotFound(err error) bool { return errors.Is(err, enrol.ErrNotFound) }

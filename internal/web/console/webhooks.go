package console

import (
	"cmp"
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/errs"
	"github.com/mailca/mailca/internal/store"
	"github.com/mailca/mailca/internal/webhook"
)

// WebhookStore keeps the webhook endpoints (webhook.Add and
// webhook.Remove write through it) and lists their deliveries; *sqlite.DB
// implements it.
type WebhookStore interface {
	webhook.Store
	// WebhookDeliveries returns the newest deliveries, at most limit.
	WebhookDeliveries(ctx context.Context, limit int) ([]store.WebhookDelivery, error)
}

// deliveriesShown is how many of the newest deliveries the webhooks page
// lists.
const deliveriesShown = 100

// webhooksPage is the data of the webhooks view.
type webhooksPage struct {
	Endpoints  []webhookRow
	Deliveries []store.WebhookDelivery // failed first, then pending, then delivered; newest first within each
	Policies   []string                // every policy, for the form
	// The form, shown again after an error.
	Policy, URL string
	// Error is the message of a refused addition.
	Error string
}

// webhookRow is one endpoint of the list, without its secret.
type webhookRow struct {
	ID        int64
	Policy    string
	URL       string // without its query, which may hold the receiver's token
	CreatedBy string
	Cursor    int64
	Created   time.Time
}

// webhookCreated is the data of the webhook_created view: the endpoint's
// signing secret, shown this once.
type webhookCreated struct {
	ID          int64
	Policy, URL string
	Secret      string
}

// webhooks lists the webhook endpoints per policy and their recent
// deliveries, failed ones first, with the form that adds an endpoint.
//
// Pattern: GET /console/webhooks.
func (c *Console) webhooks(w http.ResponseWriter, r *http.Request) {
	c.renderWebhooks(w, r, http.StatusOK, &webhooksPage{})
}

func (c *Console) renderWebhooks(w http.ResponseWriter, r *http.Request, status int, d *webhooksPage) {
	if c.cfg.Webhooks == nil {
		c.failStatus(w, r, http.StatusNotFound, "Not found", "webhooks are not available on this server")
		return
	}
	ctx := r.Context()
	eps, err := c.cfg.Webhooks.Webhooks(ctx)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	slices.SortStableFunc(eps, func(a, b webhook.Endpoint) int {
		return cmp.Or(cmp.Compare(a.Policy, b.Policy), cmp.Compare(a.ID, b.ID))
	})
	for _, e := range eps {
		d.Endpoints = append(d.Endpoints, webhookRow{ID: e.ID, Policy: e.Policy, URL: shownURL(e.URL), CreatedBy: e.CreatedBy, Cursor: e.Cursor, Created: e.CreatedAt})
	}
	if d.Deliveries, err = c.cfg.Webhooks.WebhookDeliveries(ctx, deliveriesShown); err != nil {
		c.fail(w, r, err)
		return
	}
	slices.SortStableFunc(d.Deliveries, func(a, b store.WebhookDelivery) int {
		return cmp.Compare(stateRank(a.State), stateRank(b.State))
	})
	if d.Policies, err = c.cfg.Store.PolicyNames(ctx); err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, status, "webhooks", d)
}

// stateRank orders delivery states for the list: failed, pending, delivered.
func stateRank(s string) int {
	switch s {
	case "failed":
		return 0
	case "pending":
		return 1
	}
	return 2
}

// shownURL is an endpoint's URL without its query, which may carry a
// token of the receiver's; "?…" marks that there was one.
func shownURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	if u.RawQuery == "" {
		return u.String()
	}
	u.RawQuery = ""
	return u.String() + "?…"
}

// addWebhook adds an endpoint (policy, url) and answers with a page that
// shows its signing secret this once; only events from now on are sent.
//
// Pattern: POST /console/webhooks.
func (c *Console) addWebhook(w http.ResponseWriter, r *http.Request) {
	if c.cfg.Webhooks == nil {
		c.failStatus(w, r, http.StatusNotFound, "Not found", "webhooks are not available on this server")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, formLimit)
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, errs.Wrap(errs.Invalid, err, "the form could not be read"))
		return
	}
	d := &webhooksPage{Policy: r.PostForm.Get("policy"), URL: strings.TrimSpace(r.PostForm.Get("url"))}
	ctx := r.Context()
	if d.Policy == "" {
		c.webhooksFailed(w, r, d, errs.E(errs.Invalid, "choose the policy whose events are sent"))
		return
	}
	if _, err := c.cfg.Enrol.Policy(ctx, d.Policy); err != nil {
		c.webhooksFailed(w, r, d, err)
		return
	}
	ep, err := webhook.Add(ctx, c.cfg.Webhooks, auth.FromContext(ctx).Actor(), d.Policy, d.URL, c.now())
	if err != nil {
		c.webhooksFailed(w, r, d, err)
		return
	}
	c.render(w, r, http.StatusOK, "webhook_created", webhookCreated{ID: ep.ID, Policy: ep.Policy, URL: shownURL(ep.URL), Secret: ep.Secret})
}

// removeWebhook removes the endpoint of the path; its pending deliveries
// are not sent.
//
// Pattern: POST /console/webhooks/{id}/remove.
func (c *Console) removeWebhook(w http.ResponseWriter, r *http.Request) {
	if c.cfg.Webhooks == nil {
		c.failStatus(w, r, http.StatusNotFound, "Not found", "webhooks are not available on this server")
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		c.notFound(w, r)
		return
	}
	ctx := r.Context()
	if err := webhook.Remove(ctx, c.cfg.Webhooks, auth.FromContext(ctx).Actor(), id, c.now()); err != nil {
		c.fail(w, r, err)
		return
	}
	c.redirect(w, r, "/console/webhooks", "Webhook "+strconv.FormatInt(id, 10)+" is removed.")
}

// webhooksFailed shows the webhooks page with the message of a refused
// addition; an internal error gets the error page.
func (c *Console) webhooksFailed(w http.ResponseWriter, r *http.Request, d *webhooksPage, err error) {
	switch errs.KindOf(err) {
	case errs.Invalid, errs.NotFound:
	default:
		c.fail(w, r, err)
		return
	}
	d.Error = errs.Message(err)
	c.renderWebhooks(w, r, http.StatusBadRequest, d)
}

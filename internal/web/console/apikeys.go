package console

import (
	"net/http"
	"slices"
	"strings"

	"github.com/mailca/mailca/internal/apikey"
	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/errs"
)

// integrationDefaults fills Config.APIKeys and Config.Webhooks from
// Config.Store when they are nil and the store can serve them, as
// *sqlite.DB can.
func (c *Console) integrationDefaults() {
	if c.cfg.APIKeys == nil {
		if ks, ok := c.cfg.Store.(apikey.Store); ok {
			c.cfg.APIKeys = apikey.NewService(ks, c.now)
		}
	}
	if c.cfg.Webhooks == nil {
		if ws, ok := c.cfg.Store.(WebhookStore); ok {
			c.cfg.Webhooks = ws
		}
	}
}

// apiKeysPage is the data of the apikeys view.
type apiKeysPage struct {
	Keys     []apiKeyRow
	Scopes   []apikey.Scope // every scope, for the checkboxes
	Policies []string       // every policy, for the policy limits
	// The creation form, shown again after an error.
	Name, Expires  string
	ChosenScopes   []string
	ChosenPolicies []string
	// Error is the message of a refused creation.
	Error string
}

// apiKeyRow is one key of the list.
type apiKeyRow struct {
	*apikey.Key
	Expired bool
}

// apiKeyCreated is the data of the apikey_created view: the key's secret
// form, shown this once.
type apiKeyCreated struct {
	Key   *apikey.Key
	Token string
}

// apiKeys lists the integration API's keys, revoked and expired ones
// included, with the form that creates one. No key's secret form is
// shown: only its SHA-256 is stored.
//
// Pattern: GET /console/apikeys.
func (c *Console) apiKeys(w http.ResponseWriter, r *http.Request) {
	c.renderAPIKeys(w, r, http.StatusOK, &apiKeysPage{Expires: "365d"})
}

func (c *Console) renderAPIKeys(w http.ResponseWriter, r *http.Request, status int, d *apiKeysPage) {
	if c.cfg.APIKeys == nil {
		c.failStatus(w, r, http.StatusNotFound, "Not found", "API keys are not available on this server")
		return
	}
	ctx := r.Context()
	keys, err := c.cfg.APIKeys.List(ctx)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	now := c.now()
	for _, k := range keys {
		d.Keys = append(d.Keys, apiKeyRow{Key: k, Expired: !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt)})
	}
	if d.Policies, err = c.cfg.Store.PolicyNames(ctx); err != nil {
		c.fail(w, r, err)
		return
	}
	d.Scopes = apikey.Scopes
	c.render(w, r, status, "apikeys", d)
}

// createAPIKey makes a key (name, scope repeated, policy repeated: none
// means every policy, expires: "90d", "36h" or "" for never) and answers
// with a page that shows its secret form this once. The secret is never
// put in a redirect, a cookie or the log; the console's no-store header
// keeps it out of caches.
//
// Pattern: POST /console/apikeys.
func (c *Console) createAPIKey(w http.ResponseWriter, r *http.Request) {
	if c.cfg.APIKeys == nil {
		c.failStatus(w, r, http.StatusNotFound, "Not found", "API keys are not available on this server")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, formLimit)
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, errs.Wrap(errs.Invalid, err, "the form could not be read"))
		return
	}
	d := &apiKeysPage{
		Name: strings.TrimSpace(r.PostForm.Get("name")), Expires: strings.TrimSpace(r.PostForm.Get("expires")),
		ChosenScopes: r.PostForm["scope"], ChosenPolicies: r.PostForm["policy"],
	}
	life, err := apikey.ParseLifetime(d.Expires)
	if err != nil {
		c.apiKeysFailed(w, r, d, err)
		return
	}
	scopes := make([]apikey.Scope, 0, len(d.ChosenScopes))
	for _, s := range d.ChosenScopes {
		scopes = append(scopes, apikey.Scope(s))
	}
	for _, p := range d.ChosenPolicies {
		if _, err := c.cfg.Enrol.Policy(r.Context(), p); err != nil {
			c.apiKeysFailed(w, r, d, err)
			return
		}
	}
	actor := auth.FromContext(r.Context()).Actor()
	k, token, err := c.cfg.APIKeys.Create(r.Context(), actor, apikey.CreateRequest{Name: d.Name, Scopes: scopes, Policies: d.ChosenPolicies, Lifetime: life})
	if err != nil {
		c.apiKeysFailed(w, r, d, err)
		return
	}
	c.render(w, r, http.StatusOK, "apikey_created", apiKeyCreated{Key: k, Token: token})
}

// revokeAPIKey revokes the key with the ID of the path; the API refuses it
// from the next request on.
//
// Pattern: POST /console/apikeys/{id}/revoke.
func (c *Console) revokeAPIKey(w http.ResponseWriter, r *http.Request) {
	if c.cfg.APIKeys == nil {
		c.failStatus(w, r, http.StatusNotFound, "Not found", "API keys are not available on this server")
		return
	}
	ctx := r.Context()
	keys, err := c.cfg.APIKeys.List(ctx)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	i := slices.IndexFunc(keys, func(k *apikey.Key) bool { return k.ID == r.PathValue("id") })
	if i < 0 {
		c.fail(w, r, errs.E(errs.NotFound, "no such API key"))
		return
	}
	name := keys[i].Name
	if err := c.cfg.APIKeys.Revoke(ctx, auth.FromContext(ctx).Actor(), name); err != nil {
		c.fail(w, r, err)
		return
	}
	c.redirect(w, r, "/console/apikeys", "The API key "+name+" is revoked.")
}

// apiKeysFailed shows the key list with the creation form and the message
// of a refused creation; an internal error gets the error page.
func (c *Console) apiKeysFailed(w http.ResponseWriter, r *http.Request, d *apiKeysPage, err error) {
	status := http.StatusBadRequest
	switch errs.KindOf(err) {
	case errs.Invalid:
	case errs.NotFound:
	case errs.Conflict:
		status = http.StatusConflict
	default:
		c.fail(w, r, err)
		return
	}
	d.Error = errs.Message(err)
	c.renderAPIKeys(w, r, status, d)
}

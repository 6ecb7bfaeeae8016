package console

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/errs"
)

// accountsStore is what the accounts page reads besides the accounts.
type accountsStore interface {
	// PolicyNames returns the names of the enrolment policies.
	PolicyNames(ctx context.Context) ([]string, error)
}

// accountsPage is the data of the accounts view.
type accountsPage struct {
	Accounts []auth.Account
	// Invitations are the account invitations not yet used nor expired.
	Invitations []auth.JoinToken
	Now         time.Time // for "locked until"
	Roles       []auth.Role
	Policies    []string // every policy, for an officer's choice
	Self        int64    // the principal's account: its role is not changeable here
	// The invitation form, shown again after an error. Chosen may hold
	// auth.AllPolicies.
	Email, Role string
	Chosen      []string
	// AllPolicies is auth.AllPolicies, for the forms.
	AllPolicies string
	// Invited is the join link of the invitation just made, shown once.
	Invited, InvitedEmail string
	// Error is the message of a refused change.
	Error string
}

// accounts lists the administrator accounts with the forms that invite,
// change and remove them.
//
// Pattern: GET /console/accounts.
func (c *Console) accounts(w http.ResponseWriter, r *http.Request) {
	c.renderAccounts(w, r, http.StatusOK, &accountsPage{Role: string(auth.Officer)})
}

func (c *Console) renderAccounts(w http.ResponseWriter, r *http.Request, status int, d *accountsPage) {
	ctx := r.Context()
	var err error
	if d.Accounts, err = c.cfg.Auth.Accounts(ctx); err != nil {
		c.fail(w, r, err)
		return
	}
	if d.Invitations, err = c.cfg.Auth.Invitations(ctx); err != nil {
		c.fail(w, r, err)
		return
	}
	d.Now, d.AllPolicies = c.now(), auth.AllPolicies
	if d.Policies, err = c.cfg.Store.PolicyNames(ctx); err != nil {
		c.fail(w, r, err)
		return
	}
	d.Roles = auth.Roles
	d.Self = auth.FromContext(ctx).ID
	c.render(w, r, status, "accounts", d)
}

// inviteAccount mints a join link for a new account (email, role, policy
// repeated for an officer) and shows it once: it is not stored anywhere it
// could be read again, and it is not emailed.
//
// Pattern: POST /console/accounts.
func (c *Console) inviteAccount(w http.ResponseWriter, r *http.Request) {
	p := auth.FromContext(r.Context())
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, errs.Wrap(errs.Invalid, err, "the form could not be read"))
		return
	}
	email := strings.TrimSpace(r.PostForm.Get("email"))
	role := r.PostForm.Get("role")
	policies := r.PostForm["policy"]
	d := &accountsPage{Email: email, Role: role, Chosen: policies}
	token, err := c.cfg.Auth.InviteAccount(r.Context(), p.Actor(), email, auth.Role(role), policies)
	if err != nil {
		c.accountsFailed(w, r, d, err)
		return
	}
	c.renderAccounts(w, r, http.StatusOK, &accountsPage{Role: string(auth.Officer), Invited: c.publicURL(r) + "/console/join/" + token, InvitedEmail: strings.ToLower(email)})
}

// setRole changes an account's role and an officer's policies.
//
// Pattern: POST /console/accounts/{id}/role.
func (c *Console) setRole(w http.ResponseWriter, r *http.Request) {
	c.accountAction(w, r, func(ctx context.Context, actor string, a *auth.Account) (string, error) {
		if err := r.ParseForm(); err != nil {
			return "", errs.Wrap(errs.Invalid, err, "the form could not be read")
		}
		role := auth.Role(r.PostForm.Get("role"))
		if err := c.cfg.Auth.SetRole(ctx, actor, a.ID, role, r.PostForm["policy"]); err != nil {
			return "", err
		}
		return a.Email + " is now " + string(role) + ".", nil
	})
}

// removeAccount deletes an account and ends its sessions.
//
// Pattern: POST /console/accounts/{id}/remove.
func (c *Console) removeAccount(w http.ResponseWriter, r *http.Request) {
	c.accountAction(w, r, func(ctx context.Context, actor string, a *auth.Account) (string, error) {
		if err := c.cfg.Auth.Remove(ctx, actor, a.ID); err != nil {
			return "", err
		}
		return "The account of " + a.Email + " is removed.", nil
	})
}

// logoutAccount ends every session of an account ("log out everywhere").
//
// Pattern: POST /console/accounts/{id}/logout.
func (c *Console) logoutAccount(w http.ResponseWriter, r *http.Request) {
	c.accountAction(w, r, func(ctx context.Context, actor string, a *auth.Account) (string, error) {
		if err := c.cfg.Auth.LogoutEverywhere(ctx, actor, a.ID); err != nil {
			return "", err
		}
		return "Every session of " + a.Email + " is ended.", nil
	})
}

// unlockAccount lifts an account's lockout after failed logins.
//
// Pattern: POST /console/accounts/{id}/unlock.
func (c *Console) unlockAccount(w http.ResponseWriter, r *http.Request) {
	c.accountAction(w, r, func(ctx context.Context, actor string, a *auth.Account) (string, error) {
		if err := c.cfg.Auth.Unlock(ctx, actor, a.ID); err != nil {
			return "", err
		}
		return a.Email + " may log in again.", nil
	})
}

// cancelAccountInvitation deletes an unused account invitation: its link
// no longer works.
//
// Pattern: POST /console/accounts/invitations/{id}/cancel.
func (c *Console) cancelAccountInvitation(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		c.notFound(w, r)
		return
	}
	t, err := c.cfg.Auth.CancelInvitation(r.Context(), auth.FromContext(r.Context()).Actor(), id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.redirect(w, r, "/console/accounts", "The invitation of "+t.Email+" is cancelled; its link no longer works.")
}

// accountAction runs do on the account of the path and returns to the
// accounts page with its message; a refused change shows the page with
// the reason.
func (c *Console) accountAction(w http.ResponseWriter, r *http.Request, do func(ctx context.Context, actor string, a *auth.Account) (string, error)) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		c.notFound(w, r)
		return
	}
	a, err := c.cfg.Auth.Account(r.Context(), id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	msg, err := do(r.Context(), auth.FromContext(r.Context()).Actor(), a)
	if err != nil {
		c.accountsFailed(w, r, &accountsPage{Role: string(auth.Officer)}, err)
		return
	}
	c.redirect(w, r, "/console/accounts", msg)
}

// accountsFailed shows the accounts page with the message of a refused
// change; an internal error gets the error page.
func (c *Console) accountsFailed(w http.ResponseWriter, r *http.Request, d *accountsPage, err error) {
	status := http.StatusBadRequest
	switch errs.KindOf(err) {
	case errs.Invalid:
	case errs.Forbidden:
		status = http.StatusForbidden
	case errs.Conflict:
		status = http.StatusConflict
	default:
		c.fail(w, r, err)
		return
	}
	d.Error = errs.Message(err)
	c.renderAccounts(w, r, status, d)
}

// publicURL is the address of mailca for links: Config.PublicURL, or the
// request's own scheme and host.
func (c *Console) publicURL(r *http.Request) string {
	if c.cfg.PublicURL != "" {
		return strings.TrimRight(c.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

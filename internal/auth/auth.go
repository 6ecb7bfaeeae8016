// Package auth holds the administrator accounts of the RA Management Console: roles, passwords with a TOTP second factor, and server-side sessions.
package auth

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Role is what an account may do in the console and the CLI.
type Role string

// The roles. An administrator does everything; an RA officer invites and
// approves under the policies named for it, or under every policy when
// those are [AllPolicies]; an auditor reads.
const (
	Administrator Role = "administrator"
	Officer       Role = "officer"
	Auditor       Role = "auditor"
)

// Roles lists the roles, most powerful first.
var Roles = []Role{Administrator, Officer, Auditor}

// ParseRole returns the role named s; an error naming the roles otherwise.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", errors.New("auth: unknown role " + quote(s) + ": one of administrator, officer, auditor")
}

func quote(s string) string { return "\"" + s + "\"" }

// AllPolicies, as an officer's only policy, is every policy, present and
// future. The choice is explicit: an officer with no policies may act
// under none.
const AllPolicies = "*"

// Permission is one kind of action in the console.
type Permission int

// The permissions. Each console route needs exactly one.
const (
	// ViewEnrolments: the dashboard, invitation and enrolment lists,
	// applications and certificates (read only).
	ViewEnrolments Permission = iota + 1
	// Invite: upload CSV batches, invite one person, resend, cancel.
	Invite
	// Approve: approve and reject applications.
	Approve
	// Revoke: revoke certificates.
	Revoke
	// EditPolicies: create, edit and clone enrolment policies.
	EditPolicies
	// EditTemplates: edit email and form templates.
	EditTemplates
	// ManageMail: mail settings, test messages, the development mailbox.
	ManageMail
	// ManageAccounts: add, change, unlock and remove administrator
	// accounts, and cancel their invitations.
	ManageAccounts
	// ManageAPIKeys: create and revoke API keys.
	ManageAPIKeys
	// ViewAudit: read and export the audit log.
	ViewAudit
)

// grants is what each role may do.
var grants = map[Role][]Permission{
	Administrator: {ViewEnrolments, Invite, Approve, Revoke, EditPolicies, EditTemplates, ManageMail, ManageAccounts, ManageAPIKeys, ViewAudit},
	Officer:       {ViewEnrolments, Invite, Approve, Revoke},
	Auditor:       {ViewEnrolments, ViewAudit},
}

// Allows reports whether role r has permission p.
func (r Role) Allows(p Permission) bool { return slices.Contains(grants[r], p) }

// Account is an administrator account.
type Account struct {
	ID    int64
	Email string // the login name, lower case
	Name  string
	Role  Role
	// Policies limits an officer to the named policies: [AllPolicies] is
	// every policy, and empty is none. Ignored for the other roles.
	Policies    []string
	CreatedAt   time.Time
	LastLogin   time.Time // zero before the first login
	LockedUntil time.Time // zero, or logins are refused until then
}

// Principal is the account behind a request, as loaded by Session at the
// start of that request: a role removed a moment ago is gone here.
type Principal struct {
	Account
	// SessionID identifies the session (not its secret token), for
	// "log out everywhere" and the audit log.
	SessionID int64
}

// Can reports whether the principal has permission p.
func (p *Principal) Can(perm Permission) bool { return p != nil && p.Role.Allows(perm) }

// CanPolicy reports whether the principal may act under the named policy:
// always for an administrator and an auditor, and for an officer when
// Policies is [AllPolicies] or names it. An officer with no policies may
// act under none: a scope fails closed.
func (p *Principal) CanPolicy(policy string) bool {
	policies, limited := p.Scope()
	return p != nil && (!limited || slices.Contains(policies, policy))
}

// Scope returns the policies the principal is limited to: limited is
// false for every policy (an administrator, an auditor, an officer of
// [AllPolicies]); otherwise policies names them, and may be empty. A nil
// principal is limited to none.
func (p *Principal) Scope() (policies []string, limited bool) {
	if p == nil {
		return nil, true
	}
	if p.Role != Officer || slices.Equal(p.Policies, []string{AllPolicies}) {
		return nil, false
	}
	return slices.DeleteFunc(slices.Clone(p.Policies), func(s string) bool { return s == AllPolicies }), true
}

// Actor is how the principal appears as the actor of enrolment transitions
// and audit events: "console:" and the account's email address.
func (p *Principal) Actor() string { return "console:" + p.Email }

type principalKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal of ctx, or nil when there is none.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

package api

import (
	"github.com/mailca/mailca/internal/apikey"
	"github.com/mailca/mailca/internal/enrol"
)

// route is one operation of the API. The route table below is the single
// source of both the handler's mux and the paths of the OpenAPI document
// (openapi.go), so the two cannot disagree.
type route struct {
	Method  string
	Path    string       // below Prefix, in net/http pattern syntax
	Scope   apikey.Scope // "" for the routes open to all
	ID      string       // OpenAPI operationId
	Summary string
	Tag     string
	Params  []param
	// Body names the schema of a JSON body in components/schemas; "" for
	// none. BodyTypes overrides the media types (default application/json).
	Body         string
	BodyOptional bool
	BodyTypes    []string
	Responses    []response
	handle       handlerFunc
}

// param is a path or query parameter.
type param struct {
	Name, In, Type, Desc string // In: "path" or "query"; Type: "string" or "integer"
	Enum                 []string
}

// response is one documented response. Schema names a component schema
// for JSON; Types overrides the media type (a non-JSON body).
type response struct {
	Status int
	Desc   string
	Schema string
	Types  []string
}

var (
	pID     = param{Name: "id", In: "path", Type: "integer", Desc: "enrolment ID"}
	pSerial = param{Name: "serial", In: "path", Type: "string", Desc: "serial number in hexadecimal, with or without colons"}
	pBefore = param{Name: "before", In: "query", Type: "integer", Desc: "keyset cursor: the next value of the previous page"}
	pLimit  = param{Name: "limit", In: "query", Type: "integer", Desc: "page size, 1 to 1000 (default 100)"}
	pPolicy = param{Name: "policy", In: "query", Type: "string", Desc: "only this policy"}
	pState  = param{Name: "state", In: "query", Type: "string", Desc: "only this state", Enum: states()}
	pMbox   = param{Name: "mailbox", In: "query", Type: "string", Desc: "only mailboxes starting with this"}
	pBatch  = param{Name: "batch", In: "query", Type: "integer", Desc: "only this CSV batch"}

	rEnrolment = response{Status: 200, Desc: "the enrolment", Schema: "Enrolment"}
	rList      = response{Status: 200, Desc: "a page of enrolments, newest first", Schema: "EnrolmentPage"}
)

// routeTable lists every operation.
func routeTable() []route {
	return []route{
		{Method: "GET", Path: "/openapi.json", ID: "getOpenAPI", Summary: "This API's OpenAPI 3.1 document (no key needed)", Tag: "meta",
			Responses: []response{{Status: 200, Desc: "the document", Schema: "OpenAPIDocument"}}, handle: (*server).openAPI},

		{Method: "POST", Path: "/invitations", Scope: apikey.InvitationsWrite, ID: "createInvitation", Summary: "Invite one person", Tag: "invitations",
			Body: "InvitationRequest", Responses: []response{{Status: 201, Desc: "the new enrolment", Schema: "Enrolment"}}, handle: (*server).createInvitation},
		{Method: "POST", Path: "/invitations/batch", Scope: apikey.InvitationsWrite, ID: "createInvitations", Tag: "invitations",
			Summary: "Invite many: a JSON array of invitees or a CSV file, streamed, with a report per row",
			Params:  []param{{Name: "policy", In: "query", Type: "string", Desc: "the policy to invite under (required)"}, {Name: "filename", In: "query", Type: "string", Desc: "a name for the batch in the audit log"}},
			Body:    "InvitationBatch", BodyTypes: []string{"application/json", "text/csv"},
			Responses: []response{{Status: 200, Desc: "the per-row report, streamed as rows are committed", Schema: "BatchReport"}}, handle: (*server).createInvitations},
		{Method: "GET", Path: "/invitations", Scope: apikey.InvitationsRead, ID: "listInvitations", Summary: "List invitations (enrolments; state invited unless a state is given)", Tag: "invitations",
			Params: []param{pPolicy, pState, pMbox, pBatch, pBefore, pLimit}, Responses: []response{rList}, handle: (*server).listInvitations},
		{Method: "GET", Path: "/invitations/{id}", Scope: apikey.InvitationsRead, ID: "getInvitation", Summary: "Get one invitation", Tag: "invitations",
			Params: []param{pID}, Responses: []response{rEnrolment}, handle: (*server).getInvitation},
		{Method: "POST", Path: "/invitations/{id}/resend", Scope: apikey.InvitationsWrite, ID: "resendInvitation", Summary: "Send a fresh invitation or activation link", Tag: "invitations",
			Params: []param{pID}, Responses: []response{rEnrolment}, handle: (*server).resendInvitation},
		{Method: "POST", Path: "/invitations/{id}/cancel", Scope: apikey.InvitationsWrite, ID: "cancelInvitation", Summary: "Withdraw an enrolment not yet issued", Tag: "invitations",
			Params: []param{pID}, Body: "CancelRequest", BodyOptional: true, Responses: []response{rEnrolment}, handle: (*server).cancelInvitation},

		{Method: "POST", Path: "/referrals", Scope: apikey.ReferralsWrite, ID: "createReferral", Summary: "Mint a signed referral link for a person and policy", Tag: "referrals",
			Body: "ReferralRequest", Responses: []response{{Status: 201, Desc: "the link", Schema: "Referral"}}, handle: (*server).createReferral},

		{Method: "GET", Path: "/enrolments", Scope: apikey.EnrolmentsRead, ID: "listEnrolments", Summary: "List enrolments, newest first", Tag: "enrolments",
			Params: []param{pPolicy, pState, pMbox, pBatch, pBefore, pLimit}, Responses: []response{rList}, handle: (*server).listEnrolments},
		{Method: "GET", Path: "/enrolments/{id}", Scope: apikey.EnrolmentsRead, ID: "getEnrolment", Summary: "Get one enrolment with its history", Tag: "enrolments",
			Params: []param{pID}, Responses: []response{{Status: 200, Desc: "the enrolment and its audit events", Schema: "EnrolmentWithHistory"}}, handle: (*server).getEnrolment},
		{Method: "POST", Path: "/enrolments/{id}/approve", Scope: apikey.ApprovalsWrite, ID: "approveEnrolment", Summary: "Approve a submitted application", Tag: "approvals",
			Params: []param{pID}, Responses: []response{rEnrolment}, handle: (*server).approve},
		{Method: "POST", Path: "/enrolments/{id}/reject", Scope: apikey.ApprovalsWrite, ID: "rejectEnrolment", Summary: "Reject a submitted application, with a reason sent to the applicant", Tag: "approvals",
			Params: []param{pID}, Body: "RejectRequest", Responses: []response{rEnrolment}, handle: (*server).reject},

		{Method: "GET", Path: "/certificates", Scope: apikey.CertificatesRead, ID: "searchCertificates", Summary: "Search issued certificates, newest first", Tag: "certificates",
			Params: []param{{Name: "mailbox", In: "query", Type: "string", Desc: "exact mailbox"}, {Name: "serial", In: "query", Type: "string", Desc: "serial number"}, pPolicy,
				{Name: "state", In: "query", Type: "string", Desc: "valid, revoked or expired", Enum: []string{"valid", "revoked", "expired"}}, pBefore, pLimit},
			Responses: []response{{Status: 200, Desc: "a page of certificates", Schema: "CertificatePage"}}, handle: (*server).searchCertificates},
		{Method: "GET", Path: "/certificates/{serial}", Scope: apikey.CertificatesRead, ID: "getCertificate", Summary: "Get one certificate, its PEM included", Tag: "certificates",
			Params: []param{pSerial}, Responses: []response{{Status: 200, Desc: "the certificate", Schema: "Certificate"}}, handle: (*server).getCertificate},
		{Method: "GET", Path: "/certificates/{serial}/pem", Scope: apikey.CertificatesRead, ID: "getCertificatePEM", Summary: "The certificate in PEM", Tag: "certificates",
			Params: []param{pSerial}, Responses: []response{{Status: 200, Desc: "PEM", Types: []string{"application/x-pem-file"}}}, handle: (*server).getCertificatePEM},
		{Method: "GET", Path: "/certificates/{serial}/der", Scope: apikey.CertificatesRead, ID: "getCertificateDER", Summary: "The certificate in DER", Tag: "certificates",
			Params: []param{pSerial}, Responses: []response{{Status: 200, Desc: "DER", Types: []string{"application/pkix-cert"}}}, handle: (*server).getCertificateDER},
		{Method: "GET", Path: "/certificates/{serial}/chain", Scope: apikey.CertificatesRead, ID: "getCertificateChain", Summary: "The certificate and its issuing chain in PEM, leaf first", Tag: "certificates",
			Params: []param{pSerial}, Responses: []response{{Status: 200, Desc: "PEM chain", Types: []string{"application/x-pem-file"}}}, handle: (*server).getCertificateChain},
		{Method: "POST", Path: "/certificates/{serial}/revoke", Scope: apikey.CertificatesRevoke, ID: "revokeCertificate", Summary: "Revoke a certificate with an RFC 5280 reason", Tag: "certificates",
			Params: []param{pSerial}, Body: "RevokeRequest", Responses: []response{{Status: 200, Desc: "the revocation", Schema: "Revocation"}}, handle: (*server).revoke},

		{Method: "GET", Path: "/policies", Scope: apikey.PoliciesRead, ID: "listPolicies", Summary: "List the policies this key may use", Tag: "policies",
			Responses: []response{{Status: 200, Desc: "the policies", Schema: "PolicyList"}}, handle: (*server).listPolicies},
		{Method: "GET", Path: "/policies/{name}", Scope: apikey.PoliciesRead, ID: "getPolicy", Summary: "Read a policy (referral secrets left out)", Tag: "policies",
			Params: []param{{Name: "name", In: "path", Type: "string", Desc: "policy name"}}, Responses: []response{{Status: 200, Desc: "the policy", Schema: "Policy"}}, handle: (*server).getPolicy},

		{Method: "GET", Path: "/events", Scope: apikey.EventsRead, ID: "listEvents", Summary: "Audit events after a cursor, oldest first", Tag: "events",
			Params:    []param{{Name: "after", In: "query", Type: "integer", Desc: "the next value of the previous page; 0 for the first event"}, pLimit},
			Responses: []response{{Status: 200, Desc: "a page of events", Schema: "EventPage"}}, handle: (*server).listEvents},
	}
}

func states() []string {
	out := make([]string, len(enrol.States))
	for i, s := range enrol.States {
		out[i] = string(s)
	}
	return out
}

package console_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/webhook"
)

var webhookSecretRE = regexp.MustCompile(`mwh_[A-Za-z0-9_-]{43}`)

// TestWebhookLifecycle adds a webhook in the console, checks its secret is
// shown once, lists it with its deliveries and removes it.
func TestWebhookLifecycle(t *testing.T) {
	e := newPagesEnv(t)
	ctx := context.Background()

	res, body := e.post("/console/webhooks", e.admin, url.Values{"policy": {"staff"}, "url": {"https://hooks.example/in?token=receiver-secret"}})
	wantStatus(t, "adding a webhook", res, body, http.StatusOK)
	secret := webhookSecretRE.FindString(body)
	if secret == "" {
		t.Fatalf("the answer shows no signing secret:\n%s", excerpt(body))
	}
	if strings.Contains(body, "receiver-secret") {
		t.Errorf("the answer shows the URL's query")
	}
	eps, err := e.db.Webhooks(ctx)
	if err != nil || len(eps) != 1 {
		t.Fatalf("Webhooks() = %v, %v; want the one added", eps, err)
	}
	ep := eps[0]
	if ep.Policy != "staff" || ep.URL != "https://hooks.example/in?token=receiver-secret" || ep.Secret != secret || ep.CreatedBy != e.adminActor {
		t.Errorf("endpoint = %+v, want staff's at https://hooks.example/in with the secret shown, by %s", ep, e.adminActor)
	}
	if got := e.auditActors("webhook.add"); !slices.Equal(got, []string{e.adminActor}) {
		t.Errorf("webhook.add events by %v, want one by %s", got, e.adminActor)
	}

	// Two deliveries: the older one failed, the newer one delivered.
	ds := []webhook.Delivery{
		{EndpointID: ep.ID, Seq: ep.Cursor + 1, Type: "enrolment.submitted", Body: []byte("{}")},
		{EndpointID: ep.ID, Seq: ep.Cursor + 2, Type: "enrolment.approved", Body: []byte("{}")},
	}
	if err := e.db.QueueDeliveries(ctx, ep.ID, ep.Cursor, ep.Cursor+2, ds, e.clock.Now()); err != nil {
		t.Fatalf("QueueDeliveries: %v", err)
	}
	claimed, err := e.db.ClaimWebhookDeliveries(ctx, e.clock.Now(), 10, time.Minute)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("ClaimWebhookDeliveries = %d, %v; want 2", len(claimed), err)
	}
	slices.SortFunc(claimed, func(a, b webhook.Delivery) int { return int(a.Seq - b.Seq) })
	if err := e.db.MarkWebhookFailed(ctx, claimed[0].ID, "connection refused"); err != nil {
		t.Fatal(err)
	}
	if err := e.db.MarkWebhookDelivered(ctx, claimed[1].ID, e.clock.Now()); err != nil {
		t.Fatal(err)
	}

	res, body = e.get("/console/webhooks", e.admin)
	wantStatus(t, "the webhooks page", res, body, http.StatusOK)
	if !strings.Contains(body, "https://hooks.example/in") || !strings.Contains(body, "/console/webhooks/"+strconv.FormatInt(ep.ID, 10)+"/remove") {
		t.Errorf("the page does not list the webhook:\n%s", excerpt(body))
	}
	if strings.Contains(body, secret) || strings.Contains(body, "receiver-secret") {
		t.Errorf("the webhooks page shows a secret")
	}
	failed, delivered := strings.Index(body, `class="delivery-failed"`), strings.Index(body, `class="delivery-delivered"`)
	if failed < 0 || delivered < 0 || failed > delivered || !strings.Contains(body, "connection refused") {
		t.Errorf("deliveries: failed at %d, delivered at %d; want both, the failed one first with its error", failed, delivered)
	}
	if strings.Contains(e.logs.String(), secret) {
		t.Errorf("the log holds the signing secret")
	}

	// Removing it.
	path := "/console/webhooks/" + strconv.FormatInt(ep.ID, 10) + "/remove"
	res, body = e.post(path, e.admin, nil)
	wantStatus(t, "removing the webhook", res, body, http.StatusSeeOther)
	if eps, err := e.db.Webhooks(ctx); err != nil || len(eps) != 0 {
		t.Errorf("Webhooks() after removal = %v, %v; want none", eps, err)
	}
	if got := e.auditActors("webhook.remove"); !slices.Equal(got, []string{e.adminActor}) {
		t.Errorf("webhook.remove events by %v, want one by %s", got, e.adminActor)
	}
	res, body = e.post(path, e.admin, nil)
	wantStatus(t, "removing the webhook again", res, body, http.StatusNotFound)
	if _, body = e.get("/console/webhooks", e.admin); strings.Contains(body, path) {
		t.Errorf("the page still lists the removed webhook")
	}
}

// TestWebhookAddRefused checks that a bad webhook re-renders the form with
// the reason and adds nothing.
func TestWebhookAddRefused(t *testing.T) {
	e := newPagesEnv(t)
	for _, tc := range []struct {
		name string
		form url.Values
	}{
		{"no policy", url.Values{"url": {"https://hooks.example/"}}},
		{"unknown policy", url.Values{"policy": {"nosuch"}, "url": {"https://hooks.example/"}}},
		{"no URL", url.Values{"policy": {"staff"}}},
		{"relative URL", url.Values{"policy": {"staff"}, "url": {"/in"}}},
		{"other scheme", url.Values{"policy": {"staff"}, "url": {"ftp://hooks.example/"}}},
		{"credentials", url.Values{"policy": {"staff"}, "url": {"https://u:p@hooks.example/"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := e.post("/console/webhooks", e.admin, tc.form)
			wantStatus(t, "POST /console/webhooks", res, body, http.StatusBadRequest)
			if !strings.Contains(body, `id="webhooks-error"`) || webhookSecretRE.MatchString(body) {
				t.Errorf("the answer is not the form with the reason:\n%s", excerpt(body))
			}
		})
	}
	if eps, err := e.db.Webhooks(context.Background()); err != nil || len(eps) != 0 {
		t.Errorf("Webhooks() = %v, %v; want none", eps, err)
	}
}

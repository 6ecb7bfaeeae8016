package outbox_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/outbox"
	"github.com/mailca/mailca/internal/testkit"
	"github.com/mailca/mailca/internal/testkit/smtpsink"
)

// TestEnrolmentMails runs the real enrolment process, so that every
// template is rendered with exactly the data enrolment stores, and delivers
// the mails: each arrives once, carries its link, and the issued one
// carries the certificate that was issued.
func TestEnrolmentMails(t *testing.T) {
	ctx := context.Background()
	db := testkit.MustOpenDB(t)
	h := testkit.NewHierarchy(t, keys.ECDSAP256)
	svc := enrol.NewService(enrol.Config{Store: db, Issuer: testkit.NewEngine(t, h, db), PublicURL: "https://certs.example.com", ServerKeyType: keys.ECDSAP256})
	p := enrol.DefaultPolicy()
	p.Name, p.Notify, p.Templates = "staff", []string{"ra@example.com"}, "acme"
	p.Channels.Open, p.AllowedDomains = true, []string{"example.com"}
	if _, err := svc.SavePolicy(ctx, "test", p); err != nil {
		t.Fatal(err)
	}
	overrides := t.TempDir()
	writeFiles(t, overrides, map[string]string{"acme/mail/invitation.subject": "ACME certificates: your invitation{{with .GivenName}}, {{.}}{{end}}"})

	// The links go out by mail, so take them from the outbox before the
	// worker sends and erases them.
	link := func(to, prefix string) string {
		t.Helper()
		msgs, err := db.Messages(ctx, outbox.Filter{To: to, State: "pending"})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if l := m.Data["Link"]; strings.Contains(l, prefix) {
				return l
			}
		}
		t.Fatalf("no %s link for %s", prefix, to)
		return ""
	}
	token := func(l string) string { return l[strings.LastIndex(l, "/")+1:] }
	app := enrol.Application{GivenName: "Alice", Surname: "Liddell", AcceptTerms: true, TermsVersion: p.Terms.Version}

	e, err := svc.Invite(ctx, "admin:root@example.com", "staff", enrol.Invitee{Email: "alice@example.com", GivenName: "Alice", Surname: "Liddell"})
	if err != nil {
		t.Fatal(err)
	}
	links := map[string]string{"invitation": link("alice@example.com", "/e/")} // Alice's, by template
	if _, err := svc.Submit(ctx, token(links["invitation"]), app); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Approve(ctx, "admin:ra@example.com", e.ID); err != nil {
		t.Fatal(err)
	}
	links["approved"] = link("alice@example.com", "/a/")
	act, err := svc.Activate(ctx, token(links["approved"]), enrol.KeyServer, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Near its end, Alice is reminded (with a renewal link) and the RA
	// gets the digest that lists her certificate.
	later := enrol.NewService(enrol.Config{Store: db, Issuer: testkit.NewEngine(t, h, db), PublicURL: "https://certs.example.com",
		Now: func() time.Time { return time.Now().Add(time.Duration(p.ValidityDays-20) * 24 * time.Hour) }})
	if n, err := later.SendReminders(ctx, []int{30}); err != nil || n != 1 {
		t.Fatalf("SendReminders() = %d, %v; want 1 reminder", n, err)
	}
	if n, err := later.SendDigest(ctx, 30, []string{"ra@example.com"}); err != nil || n != 1 {
		t.Fatalf("SendDigest() = %d, %v; want 1 certificate", n, err)
	}
	if msgs, err := db.Messages(ctx, outbox.Filter{To: "alice@example.com", State: "pending"}); err == nil && len(msgs) > 0 {
		links["reminder"] = msgs[0].Data["RenewalLink"]
	}

	// Alice's certificate is then revoked: the revoked mail goes to her.
	if _, err := svc.Revoke(ctx, "admin:ra@example.com", ca.SerialHex(act.Cert.Cert.SerialNumber), ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}

	bob, err := svc.Invite(ctx, "admin:root@example.com", "staff", enrol.Invitee{Email: "bob@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	app.GivenName, app.Surname = "Bob", "<script>x</script>"
	links["bob"] = link("bob@example.com", "/e/")
	if _, err := svc.Submit(ctx, token(links["bob"]), app); err != nil {
		t.Fatal(err)
	}
	if err := svc.Reject(ctx, "admin:ra@example.com", bob.ID, "not on the staff list"); err != nil {
		t.Fatal(err)
	}
	if err := svc.StartOpen(ctx, "staff", "ivy@example.com"); err != nil {
		t.Fatal(err)
	}
	links["verification"] = link("ivy@example.com", "/e/")

	sink := smtpsink.Start(t)
	w := newWorker(t, db, sink, nil, func(cfg *outbox.Config) { cfg.Templates = mustTemplates(t, overrides) })
	queued, _ := db.Counts(ctx)
	if n := runOnce(t, w); n != queued["pending"] || n < 8 {
		t.Fatalf("RunOnce() sent %d of %d", n, queued["pending"])
	}
	if got := mustCounts(t, db); !strings.HasPrefix(got, "pending 0,") || !strings.HasSuffix(got, "failed 0") {
		t.Errorf("counts: %s", got)
	}

	ids := messageIDs(t, sink.Messages())
	for _, m := range messages(t, db) {
		if ids[m.MessageID] != 1 {
			t.Errorf("%s (%s) arrived %d times", m.MessageID, m.Template, ids[m.MessageID])
		}
	}

	checked := map[string]int{}
	for _, r := range sink.Messages() {
		msg, err := r.Parse()
		if err != nil {
			t.Fatal(err)
		}
		subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		parts := readParts(t, msg)
		text := parts["text/plain"]
		switch {
		case strings.Contains(subject, "invitation"):
			checked["invitation"]++
			if want := map[string]string{"alice@example.com": "ACME certificates: your invitation, Alice", "bob@example.com": "ACME certificates: your invitation"}[r.To[0]]; subject != want {
				t.Errorf("invitation subject %q, want the acme override", subject)
			}
			want := links["invitation"]
			if r.To[0] == "bob@example.com" {
				want = links["bob"]
			}
			if !strings.Contains(text, want) || !strings.Contains(parts["text/html"], `href="`+want+`"`) {
				t.Errorf("invitation to %s lacks its link:\n%s", r.To[0], text)
			}
		case strings.Contains(subject, "Approval needed"):
			checked["application"]++
			if r.To[0] != "ra@example.com" || !strings.Contains(text, "mailca approve ") {
				t.Errorf("application to %s does not say how to approve:\n%s", r.To[0], text)
			}
		case strings.Contains(subject, "was approved"):
			checked["approved"]++
			if !strings.Contains(text, links["approved"]) || !strings.Contains(parts["text/html"], `href="`+links["approved"]+`"`) {
				t.Errorf("approved mail lacks its link")
			}
		case strings.Contains(subject, "Confirm"):
			checked["verification"]++
			if !strings.Contains(text, links["verification"]) {
				t.Errorf("verification text lacks its link")
			}
		case strings.Contains(subject, "not approved"):
			checked["rejected"]++
			if !strings.Contains(text, "not on the staff list") {
				t.Errorf("rejected text lacks the reason:\n%s", text)
			}
		case strings.Contains(subject, "revoked"):
			checked["revoked"]++
			if r.To[0] != "alice@example.com" || !strings.Contains(text, ca.SerialHex(act.Cert.Cert.SerialNumber)) || !strings.Contains(text, "compromised") || !strings.Contains(text, "Hello Alice,") {
				t.Errorf("revoked mail to %s lacks the serial, reason or name:\n%s", r.To[0], text)
			}
		case strings.Contains(subject, "within 30 days"):
			checked["digest"]++
			if r.To[0] != "ra@example.com" || !strings.Contains(text, "alice@example.com  serial "+ca.SerialHex(act.Cert.Cert.SerialNumber)) {
				t.Errorf("digest to %s lacks Alice's certificate:\n%s", r.To[0], text)
			}
		case strings.Contains(subject, "expires on"):
			checked["reminder"]++
			if l := links["reminder"]; !strings.Contains(l, "/e/") || !strings.Contains(text, l) || !strings.Contains(parts["text/html"], `href="`+l+`"`) {
				t.Errorf("reminder lacks its renewal link %q:\n%s", l, text)
			}
		case strings.Contains(subject, "issued"):
			checked["issued"]++
			if !bytes.Equal([]byte(parts["application/pkix-cert"]), act.Cert.Cert.Raw) {
				t.Errorf("issued mail does not carry the issued certificate in DER")
			}
			if !strings.Contains(parts["application/x-pem-file"], "BEGIN CERTIFICATE") {
				t.Errorf("issued mail lacks the PEM certificate")
			}
			if !strings.Contains(text, act.Cert.Cert.NotAfter.UTC().Format("2 January 2006")) {
				t.Errorf("issued text lacks the expiry date:\n%s", text)
			}
		}
		for ct, body := range parts {
			if strings.HasPrefix(ct, "text/html") && strings.Contains(body, "<script>") {
				t.Errorf("%q: HTML holds a raw <script>", subject)
			}
		}
	}
	for _, name := range templateNames {
		if checked[name] == 0 {
			t.Errorf("no %s mail was checked", name)
		}
	}
}

// readParts returns the decoded leaf parts of msg by media type.
func readParts(t *testing.T, msg *mail.Message) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func(ct, cte string, body io.Reader)
	walk = func(ct, cte string, body io.Reader) {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil {
			t.Fatalf("Content-Type %q: %v", ct, err)
		}
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(body, params["boundary"])
			for {
				p, err := mr.NextRawPart()
				if errors.Is(err, io.EOF) {
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				walk(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p)
			}
		}
		switch strings.ToLower(cte) {
		case "quoted-printable":
			body = quotedprintable.NewReader(body)
		case "base64":
			body = base64.NewDecoder(base64.StdEncoding, body) // ignores line breaks
		}
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatalf("%s part: %v", mt, err)
		}
		out[mt] = strings.ReplaceAll(string(b), "\r\n", "\n")
	}
	walk(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	return out
}

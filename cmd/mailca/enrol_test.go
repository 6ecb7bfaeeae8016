package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestPolicyExportImport(t *testing.T) {
	dir := initDir(t)
	yml := mustMailca(t, "policy", "export", "--dir", dir)
	for _, want := range []string{"name: default", "approval:", "mode: manual", "invitation_lifetime: 336h0m0s", "terms:"} {
		if !strings.Contains(yml, want) {
			t.Errorf("exported policy lacks %q:\n%s", want, yml)
		}
	}
	// A changed copy imports as version 2; the JSON form round-trips too.
	p := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(p, []byte(strings.Replace(yml, "mode: manual", "mode: automatic", 1)), 0o600)
	if out := mustMailca(t, "policy", "import", "--dir", dir, p); !strings.Contains(out, "version 2") {
		t.Errorf("import said %q", out)
	}
	js := mustMailca(t, "policy", "export", "--dir", dir, "--format", "json")
	if !strings.Contains(js, `"mode": "automatic"`) {
		t.Errorf("JSON export: %s", js)
	}
	if old := mustMailca(t, "policy", "export", "--dir", dir, "--version", "1"); !strings.Contains(old, "mode: manual") {
		t.Errorf("version 1 changed")
	}

	tests := []struct{ name, body, want string }{
		{"unknown setting", "name: x\napproval: {mode: manual}\nsurprise: 1\n", "surprise"},
		{"invalid values", strings.Replace(yml, "mode: manual", "mode: sometimes", 1), "approval.mode"},
		{"activation too long", strings.Replace(yml, "activation_lifetime: 24h0m0s", "activation_lifetime: 48h", 1), "activation_lifetime"},
		{"bad duration", strings.Replace(yml, "activation_lifetime: 24h0m0s", "activation_lifetime: tomorrow", 1), "duration"},
		{"bad JSON", `{"name": "x",`, "JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "bad")
			os.WriteFile(f, []byte(tt.body), 0o600)
			code, _, errOut := mailca(t, "policy", "import", "--dir", dir, f)
			if code != 1 || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, %q; want a message naming %q", code, errOut, tt.want)
			}
		})
	}
}

func TestInviteRejectResendCancel(t *testing.T) {
	dir := initDir(t)
	csv := filepath.Join(t.TempDir(), "people.csv")
	os.WriteFile(csv, []byte("email\tfirst name\nann@example.com\tAnn\nann@example.com\tAnn\nbob@example.com\tBob\n"), 0o600)
	code, out, errOut := mailca(t, "invite", "--dir", dir, csv)
	if code != 0 || !strings.Contains(out, "3,ann@example.com,refused,duplicate in file") || !strings.Contains(errOut, "2 invited, 1 refused") {
		t.Fatalf("invite: exit %d\n%s\n%s", code, out, errOut)
	}
	list := mustMailca(t, "enrolments", "--dir", dir, "--state", "invited")
	ids := regexp.MustCompile(`(?m)^(\d+)\s+invited`).FindAllStringSubmatch(list, -1)
	if len(ids) != 2 {
		t.Fatalf("enrolments:\n%s", list)
	}
	mustMailca(t, "resend", "--dir", dir, ids[0][1])
	mustMailca(t, "cancel", "--dir", dir, "--reason", "left the company", ids[0][1])
	if code, _, errOut := mailca(t, "cancel", "--dir", dir, ids[0][1]); code != 1 || !strings.Contains(errOut, "cancelled") {
		t.Errorf("second cancel: exit %d, %q", code, errOut)
	}
	// Rejecting an enrolment that is not submitted is a clear conflict.
	if code, _, errOut := mailca(t, "reject", "--dir", dir, "--reason", "no", ids[1][1]); code != 1 || !strings.Contains(errOut, "not waiting for approval") {
		t.Errorf("reject of an invited enrolment: exit %d, %q", code, errOut)
	}
	if code, _, _ := mailca(t, "approve", "--dir", dir, "abc"); code != 1 {
		t.Errorf("approve abc: exit %d", code)
	}
	if code, _, _ := mailca(t, "approve", "--dir", dir); code != 2 {
		t.Errorf("approve without ID: exit %d", code)
	}
	if code, _, errOut := mailca(t, "approve", "--dir", dir, "999"); code != 1 || !strings.Contains(errOut, "no enrolment 999") {
		t.Errorf("approve 999: exit %d, %q", code, errOut)
	}
	if code, _, errOut := mailca(t, "invite", "--dir", dir, "--policy", "nope", "--email", "x@example.com"); code != 1 || !strings.Contains(errOut, "no policy") {
		t.Errorf("invite under a missing policy: exit %d, %q", code, errOut)
	}
}

package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/mailca/mailca/internal/csvbatch"
	"github.com/mailca/mailca/internal/enrol"
)

// FuzzSpoolJSON feeds batch bodies to the JSON checker: it never panics,
// refuses with a problem, or writes a CSV that csvbatch reads back with
// one record per array element.
func FuzzSpoolJSON(f *testing.F) {
	p := enrol.DefaultPolicy()
	p.Fields = append(p.Fields, enrol.Field{Name: "dept"})
	for _, s := range []string{`[]`, `[{"email":"a@example.com"}]`, `[{"email":"a@example.com","fields":{"dept":"x,\"y\""}}]`,
		`[{"email":1}]`, `{}`, `[`, `[{"email":"a"},]`, `[{"given_name":"=cmd|' /C calc'!A0"}]`, `[{"email":"a\u2028b"}]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var out bytes.Buffer
		err := spoolJSON(strings.NewReader(body), &out, p)
		if err != nil {
			var pr *Problem
			if !errors.As(err, &pr) || pr.Status != 400 {
				t.Fatalf("spoolJSON(%q) = %v, want a 400 problem", body, err)
			}
			return
		}
		var elems []json.RawMessage
		if json.Unmarshal([]byte(body), &elems) != nil {
			t.Fatalf("spoolJSON accepted %q, which is not a JSON array", body)
		}
		rd, err := csvbatch.NewReader(&out, csvbatch.Options{})
		if err != nil {
			t.Fatalf("CSV of %q does not read: %v\n%s", body, err, out.String())
		}
		n := 0
		for {
			_, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("CSV of %q breaks: %v", body, err)
			}
			n++
		}
		if n != len(elems) {
			t.Fatalf("CSV of %q has %d records, want %d", body, n, len(elems))
		}
	})
}

func TestProblemKindsHaveTitles(t *testing.T) {
	for _, k := range ProblemKinds {
		if titles[k] == "" {
			t.Errorf("problem kind %s has no title", k)
		}
	}
}

package outbox_test

import (
	"fmt"

	"github.com/mailca/mailca/internal/outbox"
)

func ExampleTemplates_Render() {
	tm, err := outbox.NewTemplates("") // no organisation overrides
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := tm.Render(outbox.Message{
		Template: "approved",
		To:       "alice@example.com",
		Data: map[string]string{
			"Link": "https://certs.example.com/a/TOKEN", "Expires": "15 March 2026 09:00 UTC",
			"GivenName": "Alice\r\nBcc: mallory@example.net", "Surname": "Liddell",
			"Mailbox": "alice@example.com", "Policy": "staff",
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Subject)
	fmt.Println(len(r.Text) > 0, len(r.HTML) > 0, len(r.Attachments))
	// Output:
	// Your email certificate application was approved: please activate it
	// true true 0
}

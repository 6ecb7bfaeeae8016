package webhook_test

import (
	"fmt"
	"time"

	"github.com/mailca/mailca/internal/webhook"
)

// A receiver checks each delivery's signature with the endpoint's secret
// before it trusts the body.
func ExampleVerify() {
	secret := "mwh_example-secret"
	body := []byte(`{"id":"118","type":"enrolment.approved"}`)
	sent := time.Unix(1_800_000_000, 0)
	header := webhook.Sign(secret, sent, body) // what mailca sends as Mailca-Signature

	fmt.Println(header)
	fmt.Println(webhook.Verify(secret, header, body, sent.Add(time.Minute), 5*time.Minute))
	fmt.Println(webhook.Verify(secret, header, []byte(`{"id":"119"}`), sent, 5*time.Minute))
	// Output:
	// t=1800000000,v1=761c765619741de158f84a831c94da2f9a23841a57592f3ab881f042ed9455bc
	// true
	// false
}

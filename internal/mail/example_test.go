package mail_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/mailca/mailca/internal/mail"
	"github.com/mailca/mailca/internal/testkit/smtpsink"
)

func ExampleCompose() {
	raw, id, err := mail.Compose(&mail.Message{
		From:      mail.Address{Name: "Example CA", Addr: "ca@example.com"},
		To:        []mail.Address{{Name: "Jürgen Groß", Addr: "juergen@example.com"}},
		Subject:   "Bitte bestätigen Sie Ihre Adresse",
		Text:      "Open the link to continue.",
		Headers:   map[string]string{"Auto-Submitted": "auto-generated"},
		MessageID: "<invite.42@example.com>",
	}, time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(id)
	fmt.Print(strings.ReplaceAll(string(raw), "\r\n", "\n"))

	// Output:
	// <invite.42@example.com>
	// Date: Sat, 14 Mar 2026 15:09:26 +0000
	// From: Example CA <ca@example.com>
	// To: =?utf-8?q?J=C3=BCrgen_Gro=C3=9F?= <juergen@example.com>
	// Subject: =?utf-8?q?Bitte_best=C3=A4tigen_Sie_Ihre_Adresse?=
	// Message-ID: <invite.42@example.com>
	// Auto-Submitted: auto-generated
	// MIME-Version: 1.0
	// Content-Type: text/plain; charset=utf-8
	// Content-Transfer-Encoding: quoted-printable
	//
	// Open the link to continue.
}

func ExampleCompose_injection() {
	_, _, err := mail.Compose(&mail.Message{
		From: mail.Address{Addr: "ca@example.com"},
		To:   []mail.Address{{Name: "Alice\r\nBcc: mallory@example.net", Addr: "alice@example.com"}},
		Text: "x",
	}, time.Now())
	fmt.Println(err)
	// Output:
	// mail: To[0].Name contains a control character
}

func ExampleSender() {
	sink, err := smtpsink.Listen("127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sink.Close()
	host, port, _ := net.SplitHostPort(sink.Addr)
	p, _ := strconv.Atoi(port)

	s, err := mail.NewSender(mail.SMTPConfig{Host: host, Port: p, TLS: "none"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	raw, _, _ := mail.Compose(&mail.Message{
		From: mail.Address{Addr: "ca@example.com"},
		To:   []mail.Address{{Addr: "nobody@example.com"}},
		Text: "x",
	}, time.Now())
	err = s.Send(context.Background(), "ca@example.com", []string{"nobody@example.com"}, raw)
	fmt.Println(err, mail.IsPermanent(err))
	// Output:
	// <nil> false
}

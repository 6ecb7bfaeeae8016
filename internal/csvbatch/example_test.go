package csvbatch_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mailca/mailca/internal/csvbatch"
)

func ExampleReader() {
	const file = "\uFEFFE-Mail;Vorname;Nachname;Abteilung\r\n" +
		"alice@example.com;Alice;Smith;Sales\r\n" +
		"bob@example;Bob;Jones;HR\r\n" +
		"ALICE@example.com;Alice;Smith;Sales\r\n" +
		"carol@example.com;\"Eve\r\nBcc: mallory@example.net\";Ng;IT\r\n"

	r, err := csvbatch.NewReader(strings.NewReader(file), csvbatch.Options{Require: []string{"given name"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("delimiter %q, columns %q\n", r.Delimiter(), r.Columns())
	for {
		row, err := r.Next()
		if err == io.EOF {
			break
		}
		var e *csvbatch.Error
		if errors.As(err, &e) {
			fmt.Println("the rest of the file is unread:", err)
			break
		} else if err != nil {
			fmt.Println("upload failed:", err)
			break
		}
		if row.Problem != nil {
			fmt.Printf("line %d: %s: %s\n", row.Line, csvbatch.Printable(row.RawEmail), row.Problem.Reason)
			continue
		}
		fmt.Printf("line %d: invite %s %s <%s>, department %s\n", row.Line, row.GivenName, row.Surname, row.Email, row.Fields["abteilung"])
	}
	// Output:
	// delimiter ';', columns ["E-Mail" "Vorname" "Nachname" "Abteilung"]
	// line 2: invite Alice Smith <alice@example.com>, department Sales
	// line 3: bob@example: invalid mailbox
	// line 4: ALICE@example.com: duplicate in file
	// line 5: carol@example.com: invalid name
}

func ExampleReportWriter() {
	var b bytes.Buffer
	w := csvbatch.NewReportWriter(&b)
	w.Write(2, "alice@example.com", "invited", "")
	w.Write(3, "=cmd|' /C calc'!A0", "rejected", csvbatch.InvalidMailbox.String())
	w.Write(4, "bob@example.com\r\nBcc: mallory@example.net", "rejected", csvbatch.InvalidMailbox.String())
	if err := w.Flush(); err != nil {
		fmt.Println(err)
		return
	}
	// The report starts with a byte order mark for Excel.
	report, _ := strings.CutPrefix(b.String(), "\uFEFF")
	fmt.Print(strings.ReplaceAll(report, "\r\n", "\n"))
	// Output:
	// line,email,outcome,reason
	// 2,alice@example.com,invited,
	// 3,'=cmd|' /C calc'!A0,rejected,invalid mailbox
	// 4,bob@example.com\r\nBcc: mallory@example.net,rejected,invalid mailbox
}

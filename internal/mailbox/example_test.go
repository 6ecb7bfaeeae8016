package mailbox_test

import (
	"errors"
	"fmt"

	"github.com/mailca/mailca/internal/mailbox"
)

func ExampleParse() {
	a, err := mailbox.Parse(" Alice.Smith@Bücher.example ")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(a)
	fmt.Println(a.IsASCII())
	fmt.Println(a.Key())

	_, err = mailbox.Parse("alice@example.com\r\nBcc: mallory@example.net")
	var e *mailbox.Error
	if errors.As(err, &e) && e.Reason == mailbox.ControlCharacter {
		fmt.Println(err)
	}
	// Output:
	// Alice.Smith@xn--bcher-kva.example
	// true
	// alice.smith@xn--bcher-kva.example
	// mailbox: parsing "alice@example.com\r\nBcc: mallory@example.net": address contains a control character
}

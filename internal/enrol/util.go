package enrol

import (
	"encoding/pem"
	"regexp"
)

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// matchWhole reports whether v matches pattern as a whole. Patterns were
// compiled once when the policy was validated; compiling again per form
// post costs microseconds.
func matchWhole(pattern, v string) bool {
	re, err := regexp.Compile(`^(?:` + pattern + `)$`)
	return err == nil && re.MatchString(v)
}

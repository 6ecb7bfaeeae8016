package enrol

import (
	"encoding/pem"
	"regexp"
)

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// matchWhole reports whether v matches pattern as a whole. Validate
// refused patterns that do not compile; compiling again for each form post
// costs microseconds and keeps no state between requests.
func matchWhole(pattern, v string) bool {
	re, err := regexp.Compile(`^(?:` + pattern + `)$`)
	return err == nil && re.MatchString(v)
}

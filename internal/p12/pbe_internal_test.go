package p12

import (
	"bytes"
	"crypto/sha1"
	"encoding/asn1"
	"encoding/binary"
	"io"
	"testing"
)

// shortSalt returns a salt whose 3DES key derivation for password makes a
// block of I start with a zero byte, found by counting through salts.
func shortSalt(t *testing.T, password string, iterations int) []byte {
	t.Helper()
	salt := make([]byte, 8)
	for n := uint64(0); n < 20000; n++ {
		binary.BigEndian.PutUint64(salt, n)
		if _, short := kdf(sha1.New, bmpPassword(password), salt, idKey, iterations, 24); short {
			return salt
		}
	}
	t.Fatal("no salt among 20,000 makes a short block")
	return nil
}

// TestLegacySaltAvoidsShortBlocks: a 3DES salt that would make a block of
// the key derivation start with zero (which gpgsm 2.2 derives wrongly) is
// drawn again, and the key and IV still come from the salt written.
func TestLegacySaltAvoidsShortBlocks(t *testing.T) {
	const password, iterations = "correct horse", 2048
	bad := shortSalt(t, password, iterations)
	good := bytes.Repeat([]byte{0x5a}, 8)
	if _, short := kdf(sha1.New, bmpPassword(password), good, idKey, iterations, 24); short {
		t.Fatal("the test's good salt makes a short block")
	}
	// The random source yields the bad salt first, then the good one.
	rand := io.MultiReader(bytes.NewReader(bad), bytes.NewReader(good))
	alg, _, err := encrypt(rand, Legacy, password, iterations, []byte("plaintext"))
	if err != nil {
		t.Fatal(err)
	}
	var params pbeParams
	if _, err := asn1.Unmarshal(alg.Parameters.FullBytes, &params); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(params.Salt, good) {
		t.Errorf("encrypt wrote salt %x, want the second draw %x (the first, %x, makes a short block)", params.Salt, good, bad)
	}
}

// TestKDFShortBlockLeavesOutput: the short-block report changes nothing
// derived (RFC 7292's result does not depend on how a reader carries it).
func TestKDFShortBlockLeavesOutput(t *testing.T) {
	bad := shortSalt(t, "pw", 1)
	a, short := kdf(sha1.New, bmpPassword("pw"), bad, idKey, 1, 24)
	if !short || !bytes.Equal(a, pkcs12KDF(sha1.New, bmpPassword("pw"), bad, idKey, 1, 24)) {
		t.Errorf("kdf = %x, short %v; pkcs12KDF differs or the block is not reported", a, short)
	}
}

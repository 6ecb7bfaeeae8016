package clients

import (
	"context"
	"testing"
)

// OpenSSLSignVerify signs a message with id's key and certificate, including
// the chain, and verifies it with openssl cms against id.Root alone, for the
// smimesign purpose. It fails tb on any error.
func OpenSSLSignVerify(tb testing.TB, id Identity) {
	tb.Helper()
	RequireTool(tb, "openssl")
	if err := CheckOpenSSLSignVerify(tb.Context(), tb.TempDir(), id); err != nil {
		failOrSkip(tb, err)
	}
}

// OpenSSLEncryptDecrypt encrypts a message to id's certificate with
// AES-256-CBC and decrypts it with id's key. It fails tb on any error.
func OpenSSLEncryptDecrypt(tb testing.TB, id Identity) {
	tb.Helper()
	RequireTool(tb, "openssl")
	if err := CheckOpenSSLEncryptDecrypt(tb.Context(), tb.TempDir(), id); err != nil {
		failOrSkip(tb, err)
	}
}

// CheckOpenSSLSignVerify is OpenSSLSignVerify returning an error instead,
// a *CommandError when openssl fails. It writes its files into a new
// directory under dir.
//
// OpenSSL 3 reads the PKCS#12 without -legacy, as a mail client built on it
// would: a file encrypted with RC2 fails here by design.
func CheckOpenSSLSignVerify(ctx context.Context, dir string, id Identity) error {
	f, err := writeFiles(dir, "openssl", id)
	if err != nil {
		return err
	}
	cert, key, err := opensslUnpack(ctx, f)
	if err != nil {
		return err
	}
	signed, verified := f.path("signed.eml"), f.path("verified.txt")
	sign := []string{"openssl", "cms", "-sign", "-in", f.message, "-signer", cert, "-inkey", key, "-out", signed}
	if f.chain != "" {
		sign = append(sign, "-certfile", f.chain)
	}
	if _, err := run(ctx, invocation{args: sign}); err != nil {
		return err
	}
	// Only the root is given: the issuing CA must come from the message.
	verify := invocation{args: []string{"openssl", "cms", "-verify", "-in", signed, "-CAfile", f.root, "-purpose", "smimesign", "-out", verified}}
	if _, err := run(ctx, verify); err != nil {
		return err
	}
	return sameFile(verified, message)
}

// CheckOpenSSLEncryptDecrypt is OpenSSLEncryptDecrypt returning an error
// instead, a *CommandError when openssl fails. It writes its files into a
// new directory under dir.
func CheckOpenSSLEncryptDecrypt(ctx context.Context, dir string, id Identity) error {
	f, err := writeFiles(dir, "openssl", id)
	if err != nil {
		return err
	}
	cert, key, err := opensslUnpack(ctx, f)
	if err != nil {
		return err
	}
	enc, dec := f.path("encrypted.eml"), f.path("decrypted.txt")
	encrypt := invocation{args: []string{"openssl", "cms", "-encrypt", "-aes-256-cbc", "-in", f.message, "-out", enc, cert}}
	if _, err := run(ctx, encrypt); err != nil {
		return err
	}
	decrypt := invocation{args: []string{"openssl", "cms", "-decrypt", "-in", enc, "-recip", cert, "-inkey", key, "-out", dec}}
	if _, err := run(ctx, decrypt); err != nil {
		return err
	}
	return sameFile(dec, message)
}

// opensslUnpack splits the PKCS#12 into the leaf certificate and the key.
// Reading them apart avoids depending on the order openssl prints bags in.
func opensslUnpack(ctx context.Context, f files) (cert, key string, err error) {
	cert, key = f.path("leaf.pem"), f.path("key.pem")
	env := []string{"MAILCA_P12_PASSWORD=" + f.pass}
	pass := "env:MAILCA_P12_PASSWORD"
	for _, args := range [][]string{
		{"openssl", "pkcs12", "-in", f.p12, "-passin", pass, "-clcerts", "-nokeys", "-out", cert},
		{"openssl", "pkcs12", "-in", f.p12, "-passin", pass, "-nocerts", "-nodes", "-out", key},
	} {
		if _, err := run(ctx, invocation{env: env, args: args}); err != nil {
			return "", "", err
		}
	}
	return cert, key, nil
}

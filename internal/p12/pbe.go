package p12

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"hash"
	"io"
)

// pbeParams is pkcs-12PbeParams (RFC 7292, appendix C).
type pbeParams struct {
	Salt       []byte
	Iterations int
}

// pbes2Params is PBES2-params (RFC 8018, appendix A.4).
type pbes2Params struct {
	KeyDerivationFunc pkix.AlgorithmIdentifier
	EncryptionScheme  pkix.AlgorithmIdentifier
}

// pbkdf2Params is PBKDF2-params (RFC 8018, appendix A.2). keyLength is
// left out because AES-256-CBC fixes it; prf must be present because its
// default is HMAC-SHA-1.
type pbkdf2Params struct {
	Salt           []byte
	IterationCount int
	PRF            pkix.AlgorithmIdentifier
}

// encrypt encrypts plaintext under password with the algorithm of Format f
// and returns the AlgorithmIdentifier, salt and IV included, that decrypts it.
func encrypt(rand io.Reader, f Format, password string, iterations int, plaintext []byte) (pkix.AlgorithmIdentifier, []byte, error) {
	salt := make([]byte, saltLen(f))
	if _, err := io.ReadFull(rand, salt); err != nil {
		return pkix.AlgorithmIdentifier{}, nil, fmt.Errorf("p12: reading salt: %w", err)
	}
	if f == Modern {
		return encryptPBES2(rand, password, salt, iterations, plaintext)
	}
	// Some readers derive a 3DES key wrongly from about one salt in a
	// hundred (see shortBlock); draw again until every reader agrees.
	for range maxSaltDraws {
		if _, short := kdf(sha1.New, bmpPassword(password), salt, idKey, iterations, 24); !short {
			break
		}
		if _, err := io.ReadFull(rand, salt); err != nil {
			return pkix.AlgorithmIdentifier{}, nil, fmt.Errorf("p12: reading salt: %w", err)
		}
	}
	return encryptTripleDES(password, salt, iterations, plaintext)
}

// maxSaltDraws bounds the salts encrypt draws for 3DES. One in about a
// hundred is refused, so the bound is never reached with a real random
// source; it only keeps a broken one from looping for ever.
const maxSaltDraws = 64

// encryptTripleDES implements pbeWithSHAAnd3-KeyTripleDES-CBC (RFC 7292,
// appendix C): key and IV both come from the PKCS#12 KDF with SHA-1.
func encryptTripleDES(password string, salt []byte, iterations int, plaintext []byte) (pkix.AlgorithmIdentifier, []byte, error) {
	params, err := asn1.Marshal(pbeParams{Salt: salt, Iterations: iterations})
	if err != nil {
		return pkix.AlgorithmIdentifier{}, nil, fmt.Errorf("p12: %w", err)
	}
	pw := bmpPassword(password)
	key := pkcs12KDF(sha1.New, pw, salt, idKey, iterations, 24)
	iv := pkcs12KDF(sha1.New, pw, salt, idIV, iterations, des.BlockSize)
	block, err := des.NewTripleDESCipher(key)
	if err != nil {
		return pkix.AlgorithmIdentifier{}, nil, fmt.Errorf("p12: %w", err)
	}
	alg := pkix.AlgorithmIdentifier{Algorithm: oidPBEWithSHA3KeyTDES, Parameters: asn1.RawValue{FullBytes: params}}
	return alg, cbcEncrypt(block, iv, plaintext), nil
}

// encryptPBES2 implements PBES2 (RFC 8018, section 6.2) with PBKDF2-HMAC-SHA-256
// and AES-256-CBC. PBKDF2 takes the password as UTF-8 bytes, not as the
// BMPString of the PKCS#12 KDF, as OpenSSL does and RFC 9579 confirms.
func encryptPBES2(rand io.Reader, password string, salt []byte, iterations int, plaintext []byte) (pkix.AlgorithmIdentifier, []byte, error) {
	iv := make([]byte, aes.BlockSize)
	if _, err := io.ReadFull(rand, iv); err != nil {
		return pkix.AlgorithmIdentifier{}, nil, fmt.Errorf("p12: reading iv: %w", err)
	}
	key, err := pbkdf2.Key(sha256.New, password, salt, iterations, 32)
	if err != nil {
		return pkix.AlgorithmIdentifier{}, nil, fmt.Errorf("p12: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return pkix.AlgorithmIdentifier{}, nil, fmt.Errorf("p12: %w", err)
	}

	kdf, err := asn1.Marshal(pbkdf2Params{
		Salt:           salt,
		IterationCount: iterations,
		PRF:            pkix.AlgorithmIdentifier{Algorithm: oidHMACWithSHA256, Parameters: asn1.NullRawValue},
	})
	if err != nil {
		return pkix.AlgorithmIdentifier{}, nil, fmt.Errorf("p12: %w", err)
	}
	ivDER, err := asn1.Marshal(iv)
	if err != nil {
		return pkix.AlgorithmIdentifier{}, nil, fmt.Errorf("p12: %w", err)
	}
	params, err := asn1.Marshal(pbes2Params{
		KeyDerivationFunc: pkix.AlgorithmIdentifier{Algorithm: oidPBKDF2, Parameters: asn1.RawValue{FullBytes: kdf}},
		EncryptionScheme:  pkix.AlgorithmIdentifier{Algorithm: oidAES256CBC, Parameters: asn1.RawValue{FullBytes: ivDER}},
	})
	if err != nil {
		return pkix.AlgorithmIdentifier{}, nil, fmt.Errorf("p12: %w", err)
	}
	alg := pkix.AlgorithmIdentifier{Algorithm: oidPBES2, Parameters: asn1.RawValue{FullBytes: params}}
	return alg, cbcEncrypt(block, iv, plaintext), nil
}

// cbcEncrypt pads plaintext as PKCS #5 (RFC 8018, section 6.1.1) requires
// and encrypts it in CBC mode.
func cbcEncrypt(block cipher.Block, iv, plaintext []byte) []byte {
	n := block.BlockSize() - len(plaintext)%block.BlockSize()
	buf := append(bytes.Clone(plaintext), bytes.Repeat([]byte{byte(n)}, n)...)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(buf, buf)
	return buf
}

// Purposes of the PKCS#12 KDF, its diversifier ID (RFC 7292, appendix B.3).
const (
	idKey byte = 1
	idIV  byte = 2
	idMAC byte = 3
)

// pkcs12KDF returns n bytes derived from password, a NUL-terminated
// BMPString, and salt for the purpose id, following RFC 7292, appendix B.2.
func pkcs12KDF(newHash func() hash.Hash, password, salt []byte, id byte, iterations, n int) []byte {
	out, _ := kdf(newHash, password, salt, id, iterations, n)
	return out
}

// kdf is pkcs12KDF, and also reports shortBlock: whether a block Ij of I,
// updated for a further round, began with a zero byte. Readers that
// convert Ij through a big integer without padding it back to v bytes
// (gpgsm 2.2's minip12, with libgcrypt's gcry_mpi_print) shift such a
// block and derive another key, so they cannot open the file: with
// SHA-1, a 3DES key (24 bytes) takes two rounds, and one salt in about a
// hundred makes such a block.
func kdf(newHash func() hash.Hash, password, salt []byte, id byte, iterations, n int) (out []byte, shortBlock bool) {
	h := newHash()
	u, v := h.Size(), h.BlockSize()
	d := bytes.Repeat([]byte{id}, v)
	// I = S || P, each stretched to a whole number of v-byte blocks.
	i := append(stretch(salt, v), stretch(password, v)...)
	b := make([]byte, v)
	for {
		// A = H^r(D || I)
		h.Reset()
		h.Write(d)
		h.Write(i)
		a := h.Sum(nil)
		for range iterations - 1 {
			h.Reset()
			h.Write(a)
			a = h.Sum(a[:0])
		}
		out = append(out, a...)
		if len(out) >= n {
			return out[:n], shortBlock
		}
		// Every v-byte block Ij of I becomes (Ij + B + 1) mod 2^8v, where
		// B is A repeated to v bytes.
		for k := range b {
			b[k] = a[k%u]
		}
		for j := 0; j < len(i); j += v {
			carry := 1
			for k := v - 1; k >= 0; k-- {
				sum := int(i[j+k]) + int(b[k]) + carry
				i[j+k] = byte(sum)
				carry = sum >> 8
			}
			shortBlock = shortBlock || i[j] == 0
		}
	}
}

// stretch repeats p to the next multiple of v bytes; an empty p stays empty.
func stretch(p []byte, v int) []byte {
	s := make([]byte, v*((len(p)+v-1)/v))
	for k := range s {
		s[k] = p[k%len(p)]
	}
	return s
}

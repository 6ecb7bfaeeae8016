package ca

import (
	"encoding/asn1"
	"unicode/utf8"
)

// Attribute types used in subscriber subjects (RFC 5280 appendix A, PKCS#9).
var (
	oidCountry      = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidOrganization = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidGivenName    = asn1.ObjectIdentifier{2, 5, 4, 42}
	oidSurname      = asn1.ObjectIdentifier{2, 5, 4, 4}
	oidCommonName   = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidEmailAddress = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
)

// Upper bounds from RFC 5280 appendix A (ub-*), in characters.
const (
	ubCommonName   = 64
	ubOrganization = 64
	ubEmailAddress = 255 // PKCS#9 pkcs-9-ub-emailAddress
)

// rdn is one attribute of a distinguished name with an explicit string type:
// Go's pkix.Name would pick PrintableString or UTF8String by content, but
// RFC 5280 wants emailAddress as IA5String and countryName as PrintableString.
type rdn struct {
	oid   asn1.ObjectIdentifier
	tag   int
	value string
}

type attributeTypeAndValue struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// attributeSET is one RelativeDistinguishedName; encoding/asn1 encodes a
// slice type whose name ends in "SET" as a SET OF.
type attributeSET []attributeTypeAndValue

// marshalName encodes attrs as an RDNSequence with one attribute per RDN,
// in the given order, and returns the DER.
func marshalName(attrs []rdn) ([]byte, error) {
	seq := make([]attributeSET, 0, len(attrs))
	for _, a := range attrs {
		seq = append(seq, attributeSET{{
			Type:  a.oid,
			Value: asn1.RawValue{Class: asn1.ClassUniversal, Tag: a.tag, Bytes: []byte(a.value)},
		}})
	}
	return asn1.Marshal(seq)
}

func fitsLength(s string, max int) bool { return utf8.RuneCountInString(s) <= max }

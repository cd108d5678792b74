package testenv

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// anonymousPrincipal is the principal anonymous PKINIT needs in the
// database (RFC 8062 §4).
const anonymousPrincipal = "WELLKNOWN/ANONYMOUS"

// ErrPKINITMissing is wrapped by the errors of Start with
// Options.AnonymousPKINIT, and by RequirePKINIT's messages, when MIT's
// PKINIT plugin is not installed.
var ErrPKINITMissing = errors.New("testenv: MIT PKINIT plugin not installed (apt-get install krb5-pkinit)")

// pkinitPluginPaths are where distributions put MIT's pkinit.so.
var pkinitPluginPaths = []string{
	"/usr/lib/*/krb5/plugins/preauth/pkinit.so", // Debian, Ubuntu
	"/usr/lib64/krb5/plugins/preauth/pkinit.so", // Fedora, RHEL
	"/usr/lib/krb5/plugins/preauth/pkinit.so",
}

// lookPKINIT finds MIT's PKINIT plugin.
func lookPKINIT() (string, error) {
	for _, pat := range pkinitPluginPaths {
		if m, _ := filepath.Glob(pat); len(m) > 0 {
			return m[0], nil
		}
	}
	return "", ErrPKINITMissing
}

// RequirePKINIT is Require for realms with Options.AnonymousPKINIT: it
// also checks MIT's PKINIT plugin, skipping the test without it, or
// failing it when CI=true.
func RequirePKINIT(tb testing.TB) {
	tb.Helper()
	Require(tb)
	if _, err := lookPKINIT(); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%v (CI=true: the tools must be installed)", err)
		}
		tb.Skip(err.Error())
	}
}

// pkinitFiles are the PEM files of a realm's PKINIT setup, in its
// directory.
type pkinitFiles struct {
	Cert, Key string // the KDC's certificate and private key
	Anchors   string // the CA certificate clients trust
}

// Object identifiers of RFC 4556 §3.2.2.
var (
	oidPKINITSAN = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 2, 2}    // id-pkinit-san
	oidPKINITKDC = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 2, 3, 5} // id-pkinit-KPKdc
	oidSAN       = asn1.ObjectIdentifier{2, 5, 29, 17}
)

// writePKINITFiles makes a throwaway CA and a KDC certificate for realm as
// RFC 4556 §3.2.2 wants it (the id-pkinit-KPKdc extended key usage and
// krbtgt/REALM@REALM as id-pkinit-san), valid for a day, and writes them
// to dir.
func writePKINITFiles(dir, realm string) (*pkinitFiles, error) {
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("testenv: PKINIT CA key: %w", err)
	}
	kdcKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("testenv: PKINIT KDC key: %w", err)
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "testenv CA for " + realm},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("testenv: PKINIT CA certificate: %w", err)
	}
	san, err := pkinitSAN(realm)
	if err != nil {
		return nil, err
	}
	kdc := &x509.Certificate{
		SerialNumber:       big.NewInt(2),
		Subject:            pkix.Name{CommonName: "krbtgt/" + realm},
		NotBefore:          now.Add(-time.Hour),
		NotAfter:           now.Add(24 * time.Hour),
		KeyUsage:           x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		UnknownExtKeyUsage: []asn1.ObjectIdentifier{oidPKINITKDC},
		ExtraExtensions:    []pkix.Extension{{Id: oidSAN, Value: san}},
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("testenv: PKINIT CA certificate: %w", err)
	}
	kdcDER, err := x509.CreateCertificate(rand.Reader, kdc, caCert, &kdcKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("testenv: PKINIT KDC certificate: %w", err)
	}
	f := &pkinitFiles{
		Cert:    filepath.Join(dir, "pkinit-kdc.pem"),
		Key:     filepath.Join(dir, "pkinit-kdc-key.pem"),
		Anchors: filepath.Join(dir, "pkinit-ca.pem"),
	}
	for _, w := range []struct {
		path, typ string
		der       []byte
	}{
		{f.Anchors, "CERTIFICATE", caDER},
		{f.Cert, "CERTIFICATE", kdcDER},
		{f.Key, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(kdcKey)},
	} {
		if err := os.WriteFile(w.path, pem.EncodeToMemory(&pem.Block{Type: w.typ, Bytes: w.der}), 0o600); err != nil {
			return nil, fmt.Errorf("testenv: %w", err)
		}
	}
	return f, nil
}

// pkinitSAN encodes a subjectAltName holding krbtgt/REALM@REALM as an
// id-pkinit-san otherName (RFC 4556 §3.2.2: KRB5PrincipalName, whose
// strings are GeneralStrings, which encoding/asn1 does not write).
func pkinitSAN(realm string) ([]byte, error) {
	oid, err := asn1.Marshal(oidPKINITSAN)
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	gs := func(s string) []byte { return derTLV(0x1b, []byte(s)) }
	principalName := derTLV(0x30,
		derTLV(0xa0, derTLV(0x02, []byte{2})), // NT-SRV-INST
		derTLV(0xa1, derTLV(0x30, gs("krbtgt"), gs(realm))))
	krb5PrincipalName := derTLV(0x30, derTLV(0xa0, gs(realm)), derTLV(0xa1, principalName))
	otherName := derTLV(0xa0, oid, derTLV(0xa0, krb5PrincipalName))
	return derTLV(0x30, otherName), nil
}

// derTLV encodes one DER element of the given tag around the parts.
func derTLV(tag byte, parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := []byte{tag}
	switch {
	case n < 0x80:
		out = append(out, byte(n))
	case n < 0x100:
		out = append(out, 0x81, byte(n))
	default:
		out = append(out, 0x82, byte(n>>8), byte(n))
	}
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// KinitAnonymous gets an anonymous TGT (kinit -n, RFC 8062 anonymous
// PKINIT: client WELLKNOWN/ANONYMOUS@WELLKNOWN:ANONYMOUS) from the realm's
// KDC into a new FILE: ccache in r.Dir and returns its path. The realm
// must have been started with Options.AnonymousPKINIT.
func (r *Realm) KinitAnonymous() (ccachePath string, err error) {
	if r.pkinit == nil {
		return "", errors.New("testenv: KinitAnonymous: the realm was started without AnonymousPKINIT")
	}
	return r.kinit(r.Krb5Conf, "", "-n", "@"+r.Name)
}

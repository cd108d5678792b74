package policy

import "fmt"

// Method is the front door a session came through and how its client
// authenticated: the SOCKS5 method of RFC 1928 §3 (GSS-API per RFC 1961,
// USERNAME/PASSWORD per RFC 1929, or none), an HTTP CONNECT proxy request
// authenticated with Negotiate (RFC 4559), or SOCKS4/4a, which has no
// authentication at all. Rules may match on it (Rule.Methods); the audit
// record carries Method.String().
//
// The zero value, MethodUnknown, is what a caller that did not say gets:
// rules without a methods matcher still match it, rules with one never do
// (fail closed).
type Method uint8

// Methods. The names (String) are the values of the `methods` matcher in
// the configuration, of `gssocks explain --method` and of the audit
// record's "method" field.
const (
	MethodUnknown   Method = iota
	MethodGSSAPI           // SOCKS5 method 0x01, RFC 1961: Kerberos V5, per-message protection
	MethodPassword         // SOCKS5 method 0x02, RFC 1929, the password verified by the KDC; always clear
	MethodNegotiate        // HTTP CONNECT/forwarding with Proxy-Authorization: Negotiate (RFC 4559); clear
	MethodNone             // SOCKS5 method 0x00 from a no_auth source; no identity
	MethodSOCKS4           // SOCKS4/4a from a no_auth source; no identity (the USERID is never trusted)
)

// methodNames are the names of the known methods, in constant order.
var methodNames = [...]string{
	MethodUnknown:   "unknown",
	MethodGSSAPI:    "gssapi",
	MethodPassword:  "password",
	MethodNegotiate: "negotiate",
	MethodNone:      "none",
	MethodSOCKS4:    "socks4",
}

func (m Method) String() string {
	if int(m) < len(methodNames) {
		return methodNames[m]
	}
	return fmt.Sprintf("Method(%d)", uint8(m))
}

// ParseMethod returns the Method named s ("gssapi", "password",
// "negotiate", "none", "socks4"); "unknown" and anything else is false.
func ParseMethod(s string) (Method, bool) {
	for m, name := range methodNames {
		if Method(m) != MethodUnknown && name == s {
			return Method(m), true
		}
	}
	return MethodUnknown, false
}

// Authenticates reports whether sessions of method m carry an identity.
func (m Method) Authenticates() bool {
	return m == MethodGSSAPI || m == MethodPassword || m == MethodNegotiate
}

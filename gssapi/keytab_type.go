package gssapi

import "github.com/jcmturner/gokrb5/v8/keytab"

// Keytab is a parsed keytab, as LoadKeytab and ParseKeytab return it and
// AcceptorConfig.Keytab and SetKeytab take it. It is gokrb5's type, named
// here so that the rest of gssocks handles keytabs through this package
// alone and never imports the Kerberos library. Its entries hold the
// service keys: never log or print one.
type Keytab = keytab.Keytab

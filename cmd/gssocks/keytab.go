package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/gssocks/gssocks/config"
	"github.com/gssocks/gssocks/gssapi"
)

// keytabCmd lists what the gateway will accept: principal, kvno and
// enctype of each key, marking the ones the acceptor uses; never the keys.
func keytabCmd(args []string, stdout, stderr io.Writer) int {
	fs, path := configFlag("keytab", stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg := loadConfig(*path, stderr)
	if cfg == nil {
		return 1
	}
	// SWITCH(gssapi.LoadKeytab), as in gateway's loadKeytab.
	kt, err := config.LoadKeytab(cfg.Kerberos.Keytab)
	if err != nil {
		fmt.Fprintf(stderr, "gssocks keytab: %v\n", err)
		return 1
	}
	var allowed []gssapi.Principal
	for _, s := range cfg.Kerberos.Principals {
		p, err := gssapi.ParsePrincipal(s)
		if err != nil {
			fmt.Fprintf(stderr, "gssocks keytab: %v\n", err)
			return 1
		}
		allowed = append(allowed, p)
	}
	type row struct {
		principal string
		kvno      uint32
		enctype   int32
	}
	var rows []row
	for _, e := range kt.Entries {
		rows = append(rows, row{strings.Join(e.Principal.Components, "/") + "@" + e.Principal.Realm, e.KVNO, e.Key.KeyType})
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].principal != rows[j].principal {
			return rows[i].principal < rows[j].principal
		}
		return rows[i].kvno > rows[j].kvno
	})
	fmt.Fprintf(stdout, "keytab %s (%d keys)\n", cfg.Kerberos.Keytab, len(rows))
	fmt.Fprintf(stdout, "%-44s %5s  %-28s %s\n", "PRINCIPAL", "KVNO", "ENCTYPE", "ACCEPTED")
	for _, r := range rows {
		acc := "yes"
		if len(allowed) > 0 && !matches(allowed, r.principal) {
			acc = "no (not in kerberos.principals)"
		} else if _, err := gssapiProfile(r.enctype); err != nil {
			acc = "no (enctype not supported for sessions; tickets only)"
		}
		fmt.Fprintf(stdout, "%-44s %5d  %-28s %s\n", r.principal, r.kvno, fmt.Sprintf("%s (%d)", gssapi.EnctypeName(r.enctype), r.enctype), acc)
	}
	return 0
}

func matches(allowed []gssapi.Principal, principal string) bool {
	name, realm, _ := strings.Cut(principal, "@")
	for _, p := range allowed {
		if p.Name == name && (p.Realm == "" || p.Realm == realm) {
			return true
		}
	}
	return false
}

// gssapiProfile reports whether an enctype can key an RFC 4121 context.
func gssapiProfile(enctype int32) (string, error) {
	switch enctype {
	case gssapi.EnctypeAES128SHA1, gssapi.EnctypeAES256SHA1, gssapi.EnctypeAES128SHA256, gssapi.EnctypeAES256SHA384:
		return gssapi.EnctypeName(enctype), nil
	}
	return "", &gssapi.UnsupportedEnctypeError{Enctype: enctype, Role: "keytab key"}
}

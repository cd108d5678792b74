package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"

	"github.com/gssocks/gssocks/config"
	"github.com/gssocks/gssocks/gssapi"
)

// keytabCmd lists what the gateway will accept: principal, kvno and
// enctype of each key as the acceptor treats it (gssapi.KeytabFacts),
// never the keys. It exits 1 when the keytab cannot be read or, as check
// and serve refuse it, a configured principal has no AES key.
func keytabCmd(args []string, stdout, stderr io.Writer) int {
	fs, path := configFlag("keytab", stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg := loadConfig(*path, stderr)
	if cfg == nil {
		return 1
	}
	facts, err := keytabFacts(cfg)
	if facts == nil && err != nil {
		fmt.Fprintf(stderr, "gssocks keytab: %v\n", err)
		return 1
	}
	writeKeytabFacts(stdout, cfg.Kerberos.Keytab, facts)
	if err != nil {
		for line := range strings.SplitSeq(err.Error(), "\n") {
			fmt.Fprintf(stderr, "%s: refused: %s\n", cfg.Kerberos.Keytab, line)
		}
		return 1
	}
	return 0
}

// keytabFacts loads the configured keytab with the acceptor's loader and
// describes its entries as an acceptor with the configured principals
// treats them. facts is nil when the keytab cannot be read; err joins the
// configured principals without an AES key (gssapi.ErrNoAESKey) otherwise.
func keytabFacts(cfg *config.Config) ([]gssapi.KeytabEntryFact, error) {
	kt, err := gssapi.LoadKeytab(cfg.Kerberos.Keytab)
	if err != nil {
		return nil, err
	}
	pats, err := gssapi.ParsePrincipals(cfg.Kerberos.Principals)
	if err != nil {
		return nil, err
	}
	facts, err := gssapi.KeytabFacts(kt, pats)
	if len(cfg.HTTPListen) > 0 && facts != nil {
		// An HTTP/ key without an AES entry is checkHTTPKeytab's refusal,
		// not this listing's.
		if hp, perr := gssapi.ParsePrincipals(cfg.HTTPPrincipals(gssapi.KeytabPrincipals(kt))); perr == nil {
			hf, _ := gssapi.KeytabFacts(kt, hp)
			facts = withHTTPFacts(facts, hf)
		}
	}
	return facts, err
}

// withHTTPFacts marks in facts (the SOCKS acceptor's) the entries the HTTP
// proxy's acceptor accepts; hf are its facts over the same keytab, entry
// for entry. Without it the listing said "not a configured principal" of
// the HTTP/ keys an http_listen serves with.
func withHTTPFacts(facts, hf []gssapi.KeytabEntryFact) []gssapi.KeytabEntryFact {
	if len(hf) != len(facts) {
		return facts
	}
	for i := range facts {
		f, h := &facts[i], hf[i]
		if !h.Accepted {
			continue
		}
		switch {
		case !f.Accepted:
			f.Accepted, f.Note = true, "by the HTTP proxy only (http_listen)"
			if h.Note != "" {
				f.Note += "; " + h.Note
			}
		case f.Note == "":
			f.Note = "also by the HTTP proxy"
		default:
			f.Note += "; also by the HTTP proxy"
		}
	}
	return facts
}

// writeKeytabFacts prints one line per keytab entry, in keytab order (the
// order MIT's lookup breaks ties in), saying whether and how the acceptor
// uses it, then how tickets find their key.
func writeKeytabFacts(w io.Writer, path string, facts []gssapi.KeytabEntryFact) {
	fmt.Fprintf(w, "keytab %s (%d keys)\n", path, len(facts))
	fmt.Fprintf(w, "%-44s %-9s %-33s %s\n", "PRINCIPAL", "KVNO", "ENCTYPE", "ACCEPTED")
	anyKVNO, accepted := false, 0
	for _, f := range facts {
		kvno := strconv.FormatUint(uint64(f.KVNO), 10)
		if f.KVNO == 0 {
			kvno, anyKVNO = "0 (any)", true
		}
		acc := "no: " + f.Note
		if f.Accepted {
			accepted++
			acc = "yes"
			if f.Note != "" {
				acc = "yes; " + f.Note
			}
		}
		fmt.Fprintf(w, "%-44s %-9s %-33s %s\n", printable(f.Principal.String()), kvno,
			fmt.Sprintf("%s (%d)", gssapi.EnctypeName(f.Enctype), f.Enctype), acc)
	}
	if accepted == 0 {
		fmt.Fprintln(w, "No entry is accepted: no ticket can be.")
		return
	}
	fmt.Fprintln(w, "Tickets find their key as with MIT's acceptor: the accepted entry of the ticket's principal, enctype and kvno;")
	if anyKVNO {
		fmt.Fprintln(w, "an entry of kvno 0 matches any kvno;")
	}
	fmt.Fprintln(w, "an entry of kvno below 256 also matches tickets whose kvno has the same low 8 bits (keytabs that store only 8 bits);")
	fmt.Fprintln(w, "a ticket naming a principal the keytab does not hold as written (another case, an alias) is tried with the")
	fmt.Fprintln(w, "accepted keys of its enctype, a bounded number of them, and is served as the principal whose key opens it.")
}

// printable quotes a name from the keytab file when it holds anything a
// terminal would not show as itself.
func printable(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) || r == '"' }) {
		return strconv.Quote(s)
	}
	return s
}

// isKeytabRefusal reports whether err (from gateway.Provision) is about
// the keytab's keys, so that check shows the listing with it.
func isKeytabRefusal(err error) bool { return errors.Is(err, gssapi.ErrNoAESKey) }

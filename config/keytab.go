package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/gssocks/gssocks/gssapi"
	"github.com/hashicorp/hcl/v2"
)

// keytabSource says where the keytab path came from, for diagnostics.
type keytabSource struct {
	rng    hcl.Range // the keytab attribute's value, or the kerberos block
	origin string    // "" or " (from $KRB5_KTNAME)"
}

// resolveKeytab fills in the keytab from $KRB5_KTNAME when the file does
// not set one.
func (d *decoder) resolveKeytab(cfg *Config, fb *fileBody, fileStart hcl.Range) keytabSource {
	if fb.Kerberos != nil && fb.Kerberos.Keytab != nil {
		return keytabSource{rng: fb.Kerberos.Keytab.Expr.Range()}
	}
	src := keytabSource{rng: fileStart, origin: " (from $KRB5_KTNAME)"}
	if fb.Kerberos != nil {
		src.rng = fb.Kerberos.DefRange
	}
	if env := d.getenv("KRB5_KTNAME"); env != "" {
		if path, ok := d.keytabPath(item{s: env, rng: src.rng}, "$KRB5_KTNAME"); ok {
			cfg.Kerberos.Keytab = path
		}
	}
	return src
}

// checkKeytab checks that the keytab exists, is readable, is not
// world-readable, is a keytab and holds the configured principals. The
// file is read by gssapi.LoadKeytab, the acceptor's own loader, and the
// principals matched by gssapi's matcher: what passes here is what the
// acceptor will read. Whether each principal has an AES key is the
// gateway's check (gateway.Provision), where the acceptor is built.
func (d *decoder) checkKeytab(cfg *Config, fb *fileBody, src keytabSource) {
	path := cfg.Kerberos.Keytab
	if path == "" {
		if fb.Kerberos != nil && fb.Kerberos.Keytab != nil {
			return // the attribute was diagnosed already
		}
		d.errorf(src.rng, "No keytab",
			"The gateway needs its service keys to accept Kerberos tickets: set keytab in the kerberos block, or the KRB5_KTNAME environment variable.")
		return
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		d.errorf(src.rng, "Keytab not found", "The keytab %q%s does not exist.", path, src.origin)
		return
	case err != nil:
		d.errorf(src.rng, "Keytab unreadable", "Cannot read the keytab%s: %v.", src.origin, err)
		return
	case fi.IsDir():
		d.errorf(src.rng, "Keytab is a directory", "The keytab %q%s is a directory; give the keytab file.", path, src.origin)
		return
	}
	if perm := fi.Mode().Perm(); perm&0o004 != 0 {
		d.warnf(src.rng, "Keytab is world-readable",
			"Anyone on this host can read the service keys in %q (mode %04o), and with them impersonate the gateway or forge tickets to it. Run: chmod 600 %s",
			path, perm, path)
	}
	kt, err := gssapi.LoadKeytab(path)
	ke, _ := errors.AsType[*gssapi.KeytabError](err)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		d.errorf(src.rng, "Keytab not found", "The keytab %q%s does not exist.", path, src.origin)
		return
	case ke != nil && ke.Err != nil: // an I/O error
		d.errorf(src.rng, "Keytab unreadable", "Cannot read the keytab%s: %s: %v. The gateway must run as a user that can read it.", src.origin, ke.Reason, ke.Err)
		return
	case ke != nil:
		where := ""
		if ke.Entry > 0 {
			where = fmt.Sprintf("entry %d: ", ke.Entry)
		}
		d.errorf(src.rng, "Invalid keytab", "%q%s is not a keytab the gateway can read: %s%s.", path, src.origin, where, ke.Reason)
		return
	default:
		d.errorf(src.rng, "Invalid keytab", "%q%s cannot be read: %v.", path, src.origin, err)
		return
	}
	have := gssapi.KeytabPrincipals(kt)
	if len(have) == 0 {
		d.errorf(src.rng, "Empty keytab", "The keytab %q%s holds no keys.", path, src.origin)
		return
	}
	d.checkPrincipals(fb, path, have)
}

// checkPrincipals reports configured principals without a key: an error
// when none has one (the gateway could accept nothing), a warning each
// otherwise.
func (d *decoder) checkPrincipals(fb *fileBody, path string, have []gssapi.Principal) {
	if fb.Kerberos == nil || fb.Kerberos.Principals == nil {
		return
	}
	items, _ := (&decoder{}).list(fb.Kerberos.Principals)
	var missing []item
	checked := 0
	for _, it := range items {
		if checkServicePrincipal(it.s) != "" {
			continue // diagnosed already
		}
		pat, err := gssapi.ParsePrincipal(it.s)
		if err != nil {
			continue // checkServicePrincipal refuses what this does
		}
		checked++
		if !slices.ContainsFunc(have, pat.Matches) {
			missing = append(missing, it)
		}
	}
	if checked == 0 {
		return
	}
	if len(missing) == checked {
		names := make([]string, len(have))
		for i, h := range have {
			names[i] = strconv.Quote(h.String())
		}
		slices.Sort(names)
		d.errorf(fb.Kerberos.Principals.Expr.Range(), "Keytab holds none of the principals",
			"The keytab %q has no key for any of these principals, so no ticket could be accepted. It holds: %s.",
			path, strings.Join(names, ", "))
		return
	}
	for _, it := range missing {
		d.warnf(it.rng, "Principal not in keytab",
			"The keytab %q has no key for %q: tickets for it will be refused.", path, it.s)
	}
}

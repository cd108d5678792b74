package config

import (
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/jcmturner/gokrb5/v8/keytab"
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
// world-readable and holds the configured principals.
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
	b, err := os.ReadFile(path)
	if err != nil {
		d.errorf(src.rng, "Keytab unreadable", "Cannot read the keytab%s: %v. The gateway must run as a user that can read it.", src.origin, err)
		return
	}
	kt, err := parseKeytab(b)
	if err != nil {
		d.errorf(src.rng, "Invalid keytab", "%q%s is not a keytab: %v.", path, src.origin, err)
		return
	}
	var have []string
	for _, e := range kt.Entries {
		p := strings.Join(e.Principal.Components, "/") + "@" + e.Principal.Realm
		if !slices.Contains(have, p) {
			have = append(have, p)
		}
	}
	if len(have) == 0 {
		d.errorf(src.rng, "Empty keytab", "The keytab %q%s holds no keys.", path, src.origin)
		return
	}
	d.checkPrincipals(fb, path, have)
}

// checkPrincipals reports configured principals without a key: an error
// when none has one (the gateway could accept nothing), a warning each
// otherwise.
func (d *decoder) checkPrincipals(fb *fileBody, path string, have []string) {
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
		checked++
		if !slices.ContainsFunc(have, func(h string) bool { return principalIn(it.s, h) }) {
			missing = append(missing, it)
		}
	}
	if checked == 0 {
		return
	}
	slices.Sort(have)
	if len(missing) == checked {
		d.errorf(fb.Kerberos.Principals.Expr.Range(), "Keytab holds none of the principals",
			"The keytab %q has no key for any of these principals, so no ticket could be accepted. It holds: %s.",
			path, strings.Join(have, ", "))
		return
	}
	for _, it := range missing {
		d.warnf(it.rng, "Principal not in keytab",
			"The keytab %q has no key for %q: tickets for it will be refused.", path, it.s)
	}
}

// principalIn reports whether configured matches the keytab principal
// "comp/comp@REALM"; without a realm it matches any realm.
func principalIn(configured, have string) bool {
	if strings.Contains(configured, "@") {
		return configured == have
	}
	name, _, _ := strings.Cut(have, "@")
	return configured == name
}

// parseKeytab is keytab.Unmarshal, which indexes the input without always
// checking its length: a damaged file must be a diagnostic, not a crash.
func parseKeytab(b []byte) (kt *keytab.Keytab, err error) {
	// The MIT keytab format starts with 5 and version 1 or 2; checking it
	// first gives a plain message for the common mistake of naming some
	// other file.
	if len(b) < 2 || b[0] != 5 || (b[1] != 1 && b[1] != 2) {
		return nil, errors.New("it does not start with the keytab format bytes 05 01 or 05 02")
	}
	defer func() {
		if r := recover(); r != nil {
			kt, err = nil, errors.New("it is truncated or damaged")
		}
	}()
	kt = keytab.New()
	if err := kt.Unmarshal(b); err != nil {
		// gokrb5's messages quote raw file bytes; they help nobody here.
		return nil, errors.New("it is truncated or damaged")
	}
	return kt, nil
}

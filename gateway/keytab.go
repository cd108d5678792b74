package gateway

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gssocks/gssocks/config"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/jcmturner/gokrb5/v8/keytab"
)

// DefaultKeytabPoll is how often the keytab file is checked for a
// rotation.
const DefaultKeytabPoll = 2 * time.Second

// loadKeytab is the gateway's one keytab load: Provision, Reload and the
// watcher all come here, and check refuses what serve would.
//
// SWITCH(gssapi.LoadKeytab): when the gssapi keytab loader lands, call it
// here (and keytabKeys becomes gssapi.KeytabFacts); until then the
// configuration package's panic-guarded parser is used.
func loadKeytab(path string, principals []string) (*keytab.Keytab, error) {
	kt, err := config.LoadKeytab(path)
	if err != nil {
		return nil, err
	}
	if err := keytabKeys(kt, principals); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return kt, nil
}

// ErrNoAESKey: the keytab has no AES key for a configured principal (or,
// with none configured, none at all), so no context could be established
// for it: RFC 4121 contexts here need an AES session key, and a KDC picks
// the session key among the service's enctypes.
var ErrNoAESKey = errors.New("no AES key")

// keytabKeys checks that each configured principal (each "name[@REALM]";
// without a realm any realm) has an AES key, or, with none configured,
// that the keytab has one at all.
//
// SWITCH(gssapi.KeytabFacts): the gssapi helper's KeytabFacts makes the
// same check with the acceptor's own principal matcher.
func keytabKeys(kt *keytab.Keytab, principals []string) error {
	type count struct{ keys, aes int }
	tally := func(match func(name, realm string) bool) count {
		var c count
		for _, e := range kt.Entries {
			if match(strings.Join(e.Principal.Components, "/"), e.Principal.Realm) {
				c.keys++
				if aesEnctype(e.Key.KeyType) {
					c.aes++
				}
			}
		}
		return c
	}
	describe := func(who string, c count) error {
		if c.keys == 0 {
			return fmt.Errorf("%w: the keytab holds no key for %s", ErrNoAESKey, who)
		}
		return fmt.Errorf("%w: the keytab holds %d keys for %s, none of them AES (enctypes 17, 18, 19, 20)", ErrNoAESKey, c.keys, who)
	}
	if len(principals) == 0 {
		if c := tally(func(string, string) bool { return true }); c.aes == 0 {
			return describe("any principal", c)
		}
		return nil
	}
	var errs []error
	for _, s := range principals {
		p, err := gssapi.ParsePrincipal(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c := tally(func(name, realm string) bool { return name == p.Name && (p.Realm == "" || p.Realm == realm) })
		if c.aes == 0 {
			errs = append(errs, describe(strconv.Quote(s), c))
		}
	}
	return errors.Join(errs...)
}

// aesEnctype reports whether a key of enctype e can key an RFC 4121
// context here.
func aesEnctype(e int32) bool {
	return slices.Contains([]int32{gssapi.EnctypeAES128SHA1, gssapi.EnctypeAES256SHA1, gssapi.EnctypeAES128SHA256, gssapi.EnctypeAES256SHA384}, e)
}

// keytabStamp identifies a version of the keytab file: modification time,
// size and inode (a rename over it changes the inode even within the
// same second). "" when the file cannot be stat'ed.
func keytabStamp(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	return fmt.Sprintf("%d/%d/%d", fi.ModTime().UnixNano(), fi.Size(), ino)
}

// kvnos lists the key version numbers of kt, for the log.
func kvnos(kt *keytab.Keytab) string {
	var seen []uint32
	var out []string
	for _, e := range kt.Entries {
		if !slices.Contains(seen, e.KVNO) {
			seen = append(seen, e.KVNO)
			out = append(out, strconv.FormatUint(uint64(e.KVNO), 10))
		}
	}
	return strings.Join(out, ",")
}

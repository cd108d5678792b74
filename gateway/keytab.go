package gateway

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gssocks/gssocks/gssapi"
)

// DefaultKeytabPoll is how often the keytab file is checked for a
// rotation.
const DefaultKeytabPoll = 2 * time.Second

// loadKeytab is the gateway's one keytab load: Provision, Reload and the
// watcher all come here, and check refuses what serve would. The file is
// read by gssapi.LoadKeytab (format checked before gokrb5 decodes it,
// panics recovered, errors that never quote the file) and judged by
// gssapi.KeytabFacts with the acceptor's own principal matcher: each
// configured principal (or, with none configured, the keytab) needs an
// AES key.
//
// The error joins one error per problem, each wrapping ErrKeytab and
// gssapi.ErrBadKeytab (a *gssapi.KeytabError), gssapi.ErrBadName or
// gssapi.ErrNoAESKey (a *gssapi.KeytabKeyError).
func loadKeytab(path string, principals []string) (*gssapi.Keytab, error) {
	kt, err := gssapi.LoadKeytab(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeytab, err)
	}
	pats, err := gssapi.ParsePrincipals(principals)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeytab, err)
	}
	if _, err := gssapi.KeytabFacts(kt, pats); err != nil {
		var errs []error
		for _, e := range unjoin(err) {
			errs = append(errs, fmt.Errorf("%w %q: %w", ErrKeytab, path, e))
		}
		return nil, errors.Join(errs...)
	}
	return kt, nil
}

// unjoin returns the errors an errors.Join holds, or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// keytabStamp identifies a version of the keytab file: modification time,
// size and inode (a rename over it changes the inode even within the
// same second). "" when the file cannot be stat'ed.
func keytabStamp(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%d/%d/%d", fi.ModTime().UnixNano(), fi.Size(), inode(fi))
}

// kvnos lists the key version numbers of kt, for the log.
func kvnos(kt *gssapi.Keytab) string {
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

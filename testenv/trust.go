package testenv

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Cross-realm trust (RFC 4120 §1.2): a principal of realm A reaches a
// service of realm B with a ticket for krbtgt/B@A from A's KDC, which B's
// KDC decrypts with its own copy of that key. Realms named on one domain
// hierarchy (A.CORP.TEST, CORP.TEST, B.CORP.TEST) let MIT's KDCs check a
// transited path without [capaths]: B's KDC then sets the
// TRANSITED-POLICY-CHECKED flag, where for other names it would refuse the
// path it cannot verify.

// Trust creates the cross-realm key krbtgt/TO@FROM in the databases of
// both realms, from one random password, so that both derive the same
// keys: principals of from can then get tickets for services of to (or
// pass through to to reach a realm to trusts). It is one-way; Trust(to,
// from) adds the other direction.
func Trust(from, to *Realm) error {
	if from == nil || to == nil || from.Name == to.Name {
		return errors.New("testenv: Trust needs two different realms")
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("testenv: cross-realm password: %w", err)
	}
	pw := hex.EncodeToString(b)
	principal := "krbtgt/" + to.Name + "@" + from.Name
	for _, r := range []*Realm{from, to} {
		if err := r.kadmin("addprinc", "-pw", quote(pw), principal); err != nil {
			return err
		}
	}
	return nil
}

// crossRealmData is what krb5-crossrealm.conf.tmpl is rendered with.
type crossRealmData struct {
	Client, Service string
	Via             []string
	Realms          []*Realm
	Enctypes        []string
}

// CrossRealmConfig writes a krb5.conf for clients of client that use
// services of service and returns its path (in client.Dir): client's
// realm as the default, the KDCs of client, service and via, localhost and
// 127.0.0.1 mapped to service's realm, and [capaths] naming the realms via
// in the order the path takes them (none: a direct trust). Use it for
// kinit (Kinit's enctypes variants do not know the other realms) and for
// the client's requests.
func CrossRealmConfig(client, service *Realm, via ...*Realm) (string, error) {
	d := crossRealmData{
		Client:   client.Name,
		Service:  service.Name,
		Realms:   append([]*Realm{client, service}, via...),
		Enctypes: keyEnctypes(false),
	}
	for _, v := range via {
		d.Via = append(d.Via, v.Name)
	}
	var b bytes.Buffer
	if err := client.tmpl.ExecuteTemplate(&b, "krb5-crossrealm.conf.tmpl", d); err != nil {
		return "", fmt.Errorf("testenv: render cross-realm krb5.conf: %w", err)
	}
	name := "krb5-to-" + service.Name
	if len(d.Via) > 0 {
		name += "-via-" + strings.Join(d.Via, "-")
	}
	path := filepath.Join(client.Dir, name+".conf")
	client.confMu.Lock()
	defer client.confMu.Unlock()
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	return path, nil
}

// KinitWith is Kinit with the krb5.conf at conf (such as CrossRealmConfig
// writes): it gets a TGT for principal into a new FILE: ccache in r.Dir
// and returns its path.
func (r *Realm) KinitWith(conf, principal, password string) (ccachePath string, err error) {
	if err := checkArg("principal", principal); err != nil {
		return "", err
	}
	return r.kinit(conf, password+"\n", r.qualify(principal))
}

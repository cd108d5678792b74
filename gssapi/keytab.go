package gssapi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	krbcrypto "github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/types"
)

// maxKeytabSize bounds what LoadKeytab reads: an entry takes about 100
// bytes, so this is tens of thousands of keys.
const maxKeytabSize = 4 << 20

// LoadKeytab reads and parses the keytab file at path (MIT keytab format,
// versions 0x0501 and 0x0502). Errors are *KeytabError values wrapping
// ErrBadKeytab and, for I/O failures, the underlying error (test
// fs.ErrNotExist, fs.ErrPermission); they say what is wrong and where
// (entry N), and never quote the file's bytes.
func LoadKeytab(path string) (*keytab.Keytab, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &KeytabError{Path: path, Reason: "cannot open", Err: pathCause(err)}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeytabSize+1))
	if err != nil {
		return nil, &KeytabError{Path: path, Reason: "cannot read", Err: pathCause(err)}
	}
	kt, err := ParseKeytab(b)
	if ke, ok := errors.AsType[*KeytabError](err); ok {
		ke.Path = path
	}
	return kt, err
}

// pathCause drops the *fs.PathError around an I/O error: the KeytabError
// names the path already.
func pathCause(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}

// ParseKeytab parses keytab file contents. The structure is checked here
// before gokrb5's decoder sees it (that decoder indexes without checking
// and quotes raw bytes, keys included, in its errors), and the decoder's
// panics are recovered. A record length of zero ends the keytab, as in
// MIT's reader: it is what an append in progress (kadmin ktadd) looks like.
// Errors are *KeytabError values wrapping ErrBadKeytab.
func ParseKeytab(b []byte) (kt *keytab.Keytab, err error) {
	recs, err := checkKeytab(b)
	if err != nil {
		return nil, err
	}
	decoderFailed := &KeytabError{Reason: "the keytab decoder disagrees with the format check"}
	defer func() {
		if r := recover(); r != nil {
			kt, err = nil, decoderFailed
		}
	}()
	kt = keytab.New()
	if len(recs) == 0 {
		return kt, nil // gokrb5 refuses a keytab of only its version
	}
	if err := kt.Unmarshal(b); err != nil || len(kt.Entries) != len(recs) {
		return nil, decoderFailed
	}
	for i, e := range kt.Entries {
		r := recs[i]
		if !slices.Equal(e.Principal.Components, r.components) || e.Principal.Realm != r.realm ||
			e.Key.KeyType != r.enctype || len(e.Key.KeyValue) != r.keyLen || e.KVNO != r.kvno {
			return nil, decoderFailed
		}
	}
	return kt, nil
}

// keytabRecord is what checkKeytab read from one entry, to compare with
// what gokrb5 decoded.
type keytabRecord struct {
	components []string
	realm      string
	kvno       uint32
	enctype    int32
	keyLen     int
}

// checkKeytab walks the MIT keytab format: 05 VV, then records, each a
// signed 32-bit length (negative: a hole of that many bytes; zero: the
// end) and an entry of that many bytes. Version 1 uses the host's byte
// order, version 2 big-endian.
func checkKeytab(b []byte) ([]keytabRecord, error) {
	if len(b) > maxKeytabSize {
		return nil, &KeytabError{Reason: fmt.Sprintf("larger than %d bytes", maxKeytabSize)}
	}
	if len(b) < 2 {
		return nil, &KeytabError{Reason: fmt.Sprintf("truncated: %d bytes, not even a version", len(b))}
	}
	if b[0] != 5 || (b[1] != 1 && b[1] != 2) {
		return nil, &KeytabError{Reason: fmt.Sprintf("bad version 0x%02x%02x (a keytab starts with 0x0502 or 0x0501)", b[0], b[1])}
	}
	var order binary.ByteOrder = binary.BigEndian
	v1 := b[1] == 1
	if v1 {
		order = binary.NativeEndian
	}
	var recs []keytabRecord
	for off := 2; off < len(b); {
		n := len(recs) + 1
		if len(b)-off < 4 {
			return nil, &KeytabError{Entry: n, Reason: fmt.Sprintf("truncated in its length field (%d bytes left)", len(b)-off)}
		}
		size := int32(order.Uint32(b[off:]))
		off += 4
		if size == 0 {
			break
		}
		if size < 0 {
			if size == math.MinInt32 || int(-size) > len(b)-off {
				return nil, &KeytabError{Entry: n, Reason: fmt.Sprintf("truncated: a hole of %d bytes before it, %d left", -int64(size), len(b)-off)}
			}
			off += int(-size)
			continue
		}
		if int(size) > len(b)-off {
			return nil, &KeytabError{Entry: n, Reason: fmt.Sprintf("truncated: record of %d bytes, %d left", size, len(b)-off)}
		}
		r, reason := checkKeytabEntry(b[off:off+int(size)], v1, order)
		if reason != "" {
			return nil, &KeytabError{Entry: n, Reason: reason}
		}
		recs = append(recs, r)
		off += int(size)
	}
	return recs, nil
}

// checkKeytabEntry checks one entry: principal (component count, realm,
// components, name type in version 2), timestamp, 8-bit kvno, enctype,
// key, and the optional 32-bit kvno that overrides the 8-bit one when it
// is present and not zero. It returns why the entry is bad, or "".
func checkKeytabEntry(e []byte, v1 bool, order binary.ByteOrder) (keytabRecord, string) {
	var r keytabRecord
	p := 0
	u16 := func() (int16, bool) {
		if len(e)-p < 2 {
			return 0, false
		}
		v := int16(order.Uint16(e[p:]))
		p += 2
		return v, true
	}
	str := func(what string) (string, string) {
		l, ok := u16()
		switch {
		case !ok:
			return "", fmt.Sprintf("ends inside the length of its %s", what)
		case l <= 0:
			return "", fmt.Sprintf("%s length %d", what, l)
		case int(l) > len(e)-p:
			return "", fmt.Sprintf("%s length %d exceeds the entry (%d bytes left)", what, l, len(e)-p)
		}
		s := string(e[p : p+int(l)])
		p += int(l)
		return s, ""
	}
	count, ok := u16()
	if !ok {
		return r, "ends inside its component count"
	}
	if v1 {
		count-- // version 1 counts the realm as a component
	}
	if count <= 0 {
		return r, fmt.Sprintf("principal of %d components", count)
	}
	var bad string
	if r.realm, bad = str("realm"); bad != "" {
		return r, bad
	}
	for range count {
		var c string
		if c, bad = str("principal component"); bad != "" {
			return r, bad
		}
		r.components = append(r.components, c)
	}
	fixed := 4 + 1 + 2 // timestamp, 8-bit kvno, enctype
	if !v1 {
		fixed += 4 // name type
	}
	if len(e)-p < fixed {
		return r, "ends inside its timestamp, kvno or enctype"
	}
	p += fixed
	r.kvno = uint32(e[p-3])
	r.enctype = int32(int16(order.Uint16(e[p-2:])))
	l, ok := u16()
	switch {
	case !ok:
		return r, "ends inside its key length"
	case l <= 0:
		return r, fmt.Sprintf("key length %d", l)
	case int(l) > len(e)-p:
		return r, fmt.Sprintf("key length %d exceeds the entry (%d bytes left)", l, len(e)-p)
	}
	if want := EnctypeKeyLen(r.enctype); want != 0 && int(l) != want {
		return r, fmt.Sprintf("%s key of %d bytes, want %d", EnctypeName(r.enctype), l, want)
	}
	r.keyLen = int(l)
	p += int(l)
	if len(e)-p >= 4 {
		if v := order.Uint32(e[p:]); v != 0 {
			r.kvno = v
		}
	}
	return r, ""
}

// KeytabPrincipals lists the distinct principals of the keytab's entries,
// in keytab order.
func KeytabPrincipals(kt *keytab.Keytab) []Principal {
	var out []Principal
	for _, e := range kt.Entries {
		if p := keytabPrincipal(e.Principal.Components, e.Principal.Realm); !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

func keytabPrincipal(components []string, realm string) Principal {
	return Principal{Name: strings.Join(components, "/"), Realm: realm}
}

// KeytabEntryFact is what an acceptor makes of one keytab entry. It holds
// no key material.
type KeytabEntryFact struct {
	Principal Principal
	KVNO      uint32 // 0: matches any kvno, as in MIT
	Enctype   int32
	// Supported: the key is AES (EnctypeSupported), so tickets under it
	// from the usual KDCs carry session keys that can key a context.
	Supported bool
	// Allowed: the principal matches the acceptor's configured principals
	// (MatchPrincipal).
	Allowed bool
	// Accepted: the acceptor opens tickets with this key: Allowed, and an
	// enctype it can decrypt (AES, and DES3 and RC4 for tickets only).
	Accepted bool
	// Note says why the entry is not Accepted, or what limits it.
	Note string
}

// KeytabFacts describes each entry of kt (keytab order) as an acceptor
// configured with patterns (see AcceptorConfig.Principals) treats it, for
// `check` and `keytab` to print. A ticket naming an Accepted entry's
// principal is opened with the entry's key whatever its kvno rule (exact,
// kvno 0, or the low 8 bits); tickets naming other principals (aliases, a
// case difference) are tried with the accepted keys of their enctype, at
// most maxKeyTrials distinct keys.
//
// The error joins one *KeytabKeyError (wrapping ErrNoAESKey) per
// configured pattern that has no AES key, or one for the whole keytab when
// no pattern is configured and it holds no AES key: an acceptor could not
// establish a context for those.
func KeytabFacts(kt *keytab.Keytab, patterns []Principal) ([]KeytabEntryFact, error) {
	facts := make([]KeytabEntryFact, 0, len(kt.Entries))
	for _, e := range kt.Entries {
		f := KeytabEntryFact{
			Principal: keytabPrincipal(e.Principal.Components, e.Principal.Realm),
			KVNO:      e.KVNO,
			Enctype:   e.Key.KeyType,
			Supported: EnctypeSupported(e.Key.KeyType),
		}
		f.Allowed = MatchPrincipal(patterns, f.Principal)
		f.Accepted = f.Allowed && opensTickets(f.Enctype)
		switch {
		case !f.Allowed:
			f.Note = "not a configured principal"
		case !f.Accepted:
			f.Note = "enctype not supported"
		case !f.Supported:
			f.Note = "opens tickets, but contexts need an AES session key"
		}
		facts = append(facts, f)
	}
	var errs []error
	missing := func(match func(Principal) bool, pat Principal) {
		keys, aes := 0, 0
		for _, f := range facts {
			if match(f.Principal) {
				keys++
				if f.Supported {
					aes++
				}
			}
		}
		if aes == 0 {
			errs = append(errs, &KeytabKeyError{Principal: pat, Keys: keys})
		}
	}
	if len(patterns) == 0 {
		missing(func(Principal) bool { return true }, Principal{})
	}
	for _, pat := range patterns {
		missing(pat.Matches, pat)
	}
	return facts, errors.Join(errs...)
}

// opensTickets reports whether a service key of the enctype can decrypt
// tickets here: ours for AES, gokrb5's for DES3 and RC4.
func opensTickets(enctype int32) bool {
	if EnctypeSupported(enctype) {
		return true
	}
	if EnctypeKeyLen(enctype) == 0 {
		return false
	}
	_, err := krbcrypto.GetEtype(enctype)
	return err == nil
}

// maxKeyTrials bounds the keys one AP-REQ can make the acceptor try. MIT's
// acceptor tries every keytab key of the ticket's enctype when the ticket
// names no principal it has exactly (an alias, a case difference); each
// trial is a key derivation and an HMAC over the ticket, chosen by an
// unauthenticated peer, so the scan stops here.
const maxKeyTrials = 16

// keyIndex is a keytab prepared for ticket lookups by one acceptor. It is
// built when the keytab is set and read-only afterwards.
type keyIndex struct {
	kt      *keytab.Keytab
	entries []indexedKey
	byName  map[Principal][]int // entries naming each principal, keytab order
	// distinct lists, per enctype, the allowed entries whose keys differ
	// from every earlier allowed entry's of that enctype (a shared key is
	// tried once).
	distinct map[int32][]int
}

type indexedKey struct {
	principal Principal
	kvno      uint32
	timestamp time.Time
	key       types.EncryptionKey
	allowed   bool // the principal matches the configured patterns
}

func newKeyIndex(kt *keytab.Keytab, patterns []Principal) *keyIndex {
	x := &keyIndex{kt: kt, byName: map[Principal][]int{}, distinct: map[int32][]int{}}
	seen := map[int32]map[string]bool{}
	for i, e := range kt.Entries {
		k := indexedKey{
			principal: keytabPrincipal(e.Principal.Components, e.Principal.Realm),
			kvno:      e.KVNO,
			timestamp: e.Timestamp,
			key:       e.Key,
		}
		k.allowed = MatchPrincipal(patterns, k.principal)
		x.entries = append(x.entries, k)
		x.byName[k.principal] = append(x.byName[k.principal], i)
		if !k.allowed || !opensTickets(e.Key.KeyType) {
			continue
		}
		if seen[e.Key.KeyType] == nil {
			seen[e.Key.KeyType] = map[string]bool{}
		}
		if s := string(e.Key.KeyValue); !seen[e.Key.KeyType][s] {
			seen[e.Key.KeyType][s] = true
			x.distinct[e.Key.KeyType] = append(x.distinct[e.Key.KeyType], i)
		}
	}
	return x
}

// kvnoMatch ranks how a keytab entry's kvno fits a ticket's, as MIT's
// keytab lookup (krb5_kt_get_entry): 3 equal; 2 either is 0 (0 matches any
// kvno, and the newest such entry is taken); 1 the entry holds only the low
// 8 bits of a kvno above 255 (older keytab writers); 0 no match.
func kvnoMatch(entry, ticket uint32) int {
	switch {
	case entry == 0 || ticket == 0:
		return 2
	case entry == ticket:
		return 3
	case entry == ticket&0xff:
		return 1
	}
	return 0
}

// keyLookup is the outcome of a lookup: the entries to try, in order, and
// what the keytab says about the ticket's principal, for the error when
// none of them opens the ticket.
type keyLookup struct {
	tries []int
	// exact: tries[0] is the entry for the ticket's principal, kvno and
	// enctype.
	exact bool
	// named: some entry names the ticket's principal exactly; namedAllowed:
	// one of those is allowed.
	named, namedAllowed bool
}

// lookup returns the entries to try on a ticket for sname with kvno and
// enctype (one opensTickets accepts): first the entry MIT's krb5_kt_get_entry would pick for sname
// (exact kvno; else kvno 0 on either side, the highest kvno then the
// newest; else the first whose kvno is the ticket's low 8 bits), then the
// other allowed keys of the enctype, those whose kvno fits first, each key
// once, maxKeyTrials in all.
func (x *keyIndex) lookup(sname Principal, kvno uint32, enctype int32) keyLookup {
	var l keyLookup
	best, bestRank := -1, 0
	for _, i := range x.byName[sname] {
		e := &x.entries[i]
		l.named = true
		if !e.allowed {
			continue
		}
		l.namedAllowed = true
		if e.key.KeyType != enctype {
			continue
		}
		switch r := kvnoMatch(e.kvno, kvno); {
		case r == 0 || r < bestRank:
		case r > bestRank, r == 2 && (e.kvno > x.entries[best].kvno ||
			e.kvno == x.entries[best].kvno && e.timestamp.After(x.entries[best].timestamp)):
			best, bestRank = i, r
		}
	}
	if best >= 0 {
		l.tries, l.exact = append(l.tries, best), true
	}
	for _, fits := range []bool{true, false} {
		for _, i := range x.distinct[enctype] {
			if len(l.tries) == maxKeyTrials {
				return l
			}
			e := &x.entries[i]
			if (kvnoMatch(e.kvno, kvno) > 0) != fits || (best >= 0 && string(e.key.KeyValue) == string(x.entries[best].key.KeyValue)) {
				continue
			}
			l.tries = append(l.tries, i)
		}
	}
	return l
}

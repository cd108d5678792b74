package client

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

const (
	maxCCacheFile   = 16 << 20 // a ccache with thousands of tickets is still far below
	maxKeytabFile   = 16 << 20
	maxTickets      = 64 // service tickets kept per Dialer
	refreshRetryMin = time.Second
	refreshRetryMax = time.Minute
)

// TicketInfo describes a ticket a Dialer holds: names and times, never
// its key or bytes.
type TicketInfo struct {
	Client    string // "alice@EXAMPLE.COM"
	Server    string // "krbtgt/EXAMPLE.COM@EXAMPLE.COM"
	AuthTime  time.Time
	StartTime time.Time
	EndTime   time.Time
	RenewTill time.Time // zero if not renewable
	// Renewals counts the renewals (RFC 4120 KDC option RENEW) this
	// process made of the ticket since it was issued or loaded.
	Renewals int
}

func (t *ticket) info() TicketInfo {
	return TicketInfo{
		Client: t.client.PrincipalNameString() + "@" + t.realm, Server: t.server,
		AuthTime: t.auth, StartTime: t.start, EndTime: t.end, RenewTill: t.renew, Renewals: t.renewals,
	}
}

// refreshAt is when a ticket should be replaced: with a sixth of its
// lifetime left, as MIT's and gokrb5's clients do.
func (t *ticket) refreshAt() time.Time {
	return t.end.Add(-t.end.Sub(t.start) / 6)
}

// credSource holds a client identity and its tickets: a ticket-granting
// ticket, acquired (password, keytab) or loaded (ticket cache), renewed
// or re-acquired before it expires, and the service tickets got with it.
type credSource struct {
	kdc *kdc
	// One of: a secret (password or keytab) with the principal, or a ccache.
	secret    *secret
	principal types.PrincipalName
	realm     string
	ccache    string // ccache name as configured, for messages
	ccPath    string // the file to read
	ccStat    fs.FileInfo

	mu      sync.Mutex
	tgt     *ticket
	tickets map[string]*ticket // service tickets by SPN
	// newTGT wakes refreshLoop when a TGT is acquired or replaced.
	newTGT chan struct{}
}

// setTGT installs t. Callers hold s.mu.
func (s *credSource) setTGT(t *ticket) {
	s.tgt = t
	select {
	case s.newTGT <- struct{}{}:
	default:
	}
}

// newSecretSource makes a source that logs in with a password or keytab.
// It does no I/O with the KDC: the first dial (or Dialer.Login) does.
func newSecretSource(k *kdc, principal string, s secret) (*credSource, error) {
	name, realm, err := splitPrincipal(principal, k.conf.cfg.LibDefaults.DefaultRealm)
	if err != nil {
		return nil, err
	}
	return &credSource{kdc: k, secret: &s, principal: name, realm: realm, tickets: map[string]*ticket{}, newTGT: make(chan struct{}, 1)}, nil
}

func loadKeytab(path string) (*keytab.Keytab, error) {
	path = strings.TrimPrefix(path, "FILE:")
	b, err := readBounded(path, maxKeytabFile)
	if err != nil {
		return nil, fmt.Errorf("client: keytab: %w", err)
	}
	kt := keytab.New()
	if err := safeDecode(func() error { return kt.Unmarshal(b) }); err != nil {
		return nil, fmt.Errorf("client: keytab %s is not a keytab: %v", path, err)
	}
	return kt, nil
}

// splitPrincipal parses "alice", "alice@R" or "svc/host@R".
func splitPrincipal(s, defaultRealm string) (types.PrincipalName, string, error) {
	name, realm, _ := strings.Cut(s, "@")
	if realm == "" {
		realm = defaultRealm
	}
	if name == "" || realm == "" {
		return types.PrincipalName{}, "", fmt.Errorf("client: principal %q needs a name and a realm (no default_realm in krb5.conf)", s)
	}
	nt := nametype.KRB_NT_PRINCIPAL
	if strings.Contains(name, "/") {
		nt = nametype.KRB_NT_SRV_HST
	}
	return types.PrincipalName{NameType: nt, NameString: strings.Split(name, "/")}, realm, nil
}

// cacheTypes are the ccache types of MIT krb5 and Heimdal that are not
// a file this package could read.
var cacheTypes = []string{"KEYRING", "KCM", "API", "MSLSA", "MEMORY"}

// newCCacheSource resolves the ccache name (name, else KRB5CCNAME, else
// default_ccache_name, else FILE:/tmp/krb5cc_<uid>) to a file. FILE:
// caches are the file; DIR: collections hold one file per principal and
// name the primary one in the file "primary" (MIT's ccache collection
// format); "DIR::/path/tktXYZ" names one member directly.
func newCCacheSource(k *kdc, name string, getenv func(string) string) (*credSource, error) {
	if name == "" {
		name = getenv("KRB5CCNAME")
	}
	if name == "" && k.conf.defaultCCache != "" {
		name = expandCCacheName(k.conf.defaultCCache)
	}
	if name == "" {
		name = fmt.Sprintf("FILE:/tmp/krb5cc_%d", os.Getuid())
	}
	typ, rest := "FILE", name
	if t, r, ok := strings.Cut(name, ":"); ok && len(t) > 1 && strings.Trim(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") == "" {
		typ, rest = strings.ToUpper(t), r
	}
	s := &credSource{kdc: k, ccache: name, tickets: map[string]*ticket{}, newTGT: make(chan struct{}, 1)}
	switch typ {
	case "FILE":
		s.ccPath = rest
	case "DIR":
		if member, ok := strings.CutPrefix(rest, ":"); ok {
			s.ccPath = member
			break
		}
		primary, err := readBounded(filepath.Join(rest, "primary"), 4096)
		switch {
		case err == nil:
			p := strings.TrimSpace(string(primary))
			if p == "" || strings.ContainsAny(p, "/\\") {
				return nil, &NoCredentialsError{Cache: name, Err: fmt.Errorf("the collection's primary file names %q", p)}
			}
			s.ccPath = filepath.Join(rest, p)
		case errors.Is(err, fs.ErrNotExist):
			s.ccPath = filepath.Join(rest, "tkt") // MIT's name for the first member
		default:
			return nil, &NoCredentialsError{Cache: name, Err: err}
		}
	default:
		for _, t := range cacheTypes {
			if typ == t {
				return nil, &NoCredentialsError{Cache: name, Type: typ}
			}
		}
		return nil, &NoCredentialsError{Cache: name, Type: typ, Err: errors.New("unknown ticket cache type")}
	}
	return s, nil
}

func readBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	b := make([]byte, fi.Size())
	n, err := f.ReadAt(b, 0)
	if err != nil && n != len(b) {
		return nil, err
	}
	return b, nil
}

// loadCCache reads the ccache file and takes its TGT for the default
// principal's realm.
func (s *credSource) loadCCache() (*ticket, error) {
	fi, err := os.Stat(s.ccPath)
	if err != nil {
		return nil, &NoCredentialsError{Cache: s.ccache, Err: err}
	}
	b, err := readBounded(s.ccPath, maxCCacheFile)
	if err != nil {
		return nil, &NoCredentialsError{Cache: s.ccache, Err: err}
	}
	t, err := s.parseCCache(b)
	if err != nil {
		return nil, err
	}
	s.ccStat = fi
	s.principal, s.realm = t.client, t.realm
	return t, nil
}

// parseCCache decodes a ticket cache file (MIT's format, version 4) and
// returns its TGT for the default principal's realm.
func (s *credSource) parseCCache(b []byte) (*ticket, error) {
	var cc credentials.CCache
	b, err := checkCCache(b)
	if err != nil {
		return nil, &NoCredentialsError{Cache: s.ccache, Err: fmt.Errorf("not a ticket cache this program can read (%v)", err)}
	}
	if err := safeDecode(func() error { return cc.Unmarshal(b) }); err != nil {
		return nil, &NoCredentialsError{Cache: s.ccache, Err: fmt.Errorf("not a ticket cache this program can read (%v)", err)}
	}
	realm := cc.DefaultPrincipal.Realm
	for _, c := range cc.GetEntries() {
		sn := c.Server.PrincipalName.NameString
		if len(sn) != 2 || sn[0] != "krbtgt" || sn[1] != realm || c.Server.Realm != realm {
			continue
		}
		var tkt messages.Ticket
		if err := safeDecode(func() error { return tkt.Unmarshal(c.Ticket) }); err != nil {
			return nil, &NoCredentialsError{Cache: s.ccache, Err: fmt.Errorf("its TGT does not decode (%v)", err)}
		}
		t := &ticket{
			client: cc.DefaultPrincipal.PrincipalName, realm: realm, tkt: tkt, key: c.Key,
			auth: c.AuthTime, start: c.StartTime, end: c.EndTime,
			server: "krbtgt/" + realm + "@" + realm,
		}
		if t.start.IsZero() {
			t.start = t.auth
		}
		if types.IsFlagSet(&c.TicketFlags, flags.Renewable) {
			t.renew = c.RenewTill
		}
		return t, nil
	}
	return nil, &NoCredentialsError{Cache: s.ccache, Err: fmt.Errorf("no ticket-granting ticket for %s@%s in it", cc.DefaultPrincipal.PrincipalName.PrincipalNameString(), realm)}
}

// ccacheChanged reports whether the file differs from the one loaded
// (kinit or a renewal daemon wrote a new ticket).
func (s *credSource) ccacheChanged() bool {
	fi, err := os.Stat(s.ccPath)
	return err == nil && (s.ccStat == nil || !fi.ModTime().Equal(s.ccStat.ModTime()) || fi.Size() != s.ccStat.Size())
}

// currentTGT returns a TGT good for now, acquiring, reloading, renewing
// or re-acquiring it as needed. Callers hold s.mu.
func (s *credSource) currentTGT(ctx context.Context) (*ticket, error) {
	now := s.kdc.now()
	if s.tgt != nil && now.Before(s.tgt.refreshAt()) {
		return s.tgt, nil
	}
	if err := s.refreshTGT(ctx); err != nil {
		if s.tgt != nil && now.Before(s.tgt.end) {
			return s.tgt, nil // still valid: use it, retry the refresh later
		}
		return nil, err
	}
	return s.tgt, nil
}

// refreshTGT replaces s.tgt: from a changed ccache file, by renewal while
// the TGT is renewable, else by a new AS exchange (password, keytab).
func (s *credSource) refreshTGT(ctx context.Context) error {
	now := s.kdc.now()
	if s.secret == nil && (s.tgt == nil || s.ccacheChanged()) {
		t, err := s.loadCCache()
		if err != nil {
			return err
		}
		s.setTGT(t)
		clear(s.tickets)
		if now.Before(t.refreshAt()) {
			return nil
		}
	}
	if s.tgt != nil && s.tgt.renewable() && now.Before(s.tgt.renew) && now.Before(s.tgt.end) {
		t, err := s.kdc.tgs(ctx, s.tgt, krbtgt(s.tgt.realm), s.tgt.realm, true)
		if err == nil {
			s.setTGT(t)
			return nil
		}
		if s.secret == nil {
			return s.kdcError(err, "renewal of the ticket-granting ticket", "")
		}
	}
	if s.secret == nil {
		if s.tgt != nil && now.After(s.tgt.end) {
			return &NoCredentialsError{Cache: s.ccache, Expired: s.tgt.end}
		}
		return nil // nothing to do before it expires but wait for a new file
	}
	t, err := s.kdc.login(ctx, s.principal, s.realm, *s.secret)
	if err != nil {
		return err
	}
	s.setTGT(t)
	return nil
}

// serviceTicket returns a ticket for spn (name/host) in realm ("": the
// client's realm), cached until its last sixth.
func (s *credSource) serviceTicket(ctx context.Context, spn types.PrincipalName, realm string) (*ticket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tgt, err := s.currentTGT(ctx)
	if err != nil {
		return nil, err
	}
	if realm == "" {
		realm = tgt.realm
	}
	key := spn.PrincipalNameString() + "@" + realm
	if t, ok := s.tickets[key]; ok && s.kdc.now().Before(t.refreshAt()) {
		return t, nil
	}
	delete(s.tickets, key)
	t, err := s.getTicket(ctx, tgt, spn, realm)
	var ke *kdcReplyError
	if errors.As(err, &ke) && ke.e.ErrorCode == krbErrTktExpired && s.secret != nil {
		// The KDC thinks the TGT expired before we did: log in again.
		s.tgt = nil
		if tgt, err = s.currentTGT(ctx); err != nil {
			return nil, err
		}
		t, err = s.getTicket(ctx, tgt, spn, realm)
	}
	if err != nil {
		return nil, s.kdcError(err, "ticket for "+key, key)
	}
	if len(s.tickets) >= maxTickets {
		clear(s.tickets)
	}
	s.tickets[key] = t
	return t, nil
}

// getTicket asks the client realm's KDC for spn in realm, through a
// cross-realm TGT (one hop) when realm is another realm.
func (s *credSource) getTicket(ctx context.Context, tgt *ticket, spn types.PrincipalName, realm string) (*ticket, error) {
	if strings.EqualFold(realm, tgt.realm) || realm == "" {
		return s.kdc.tgs(ctx, tgt, spn, tgt.realm, false)
	}
	cross, err := s.kdc.tgs(ctx, tgt, krbtgt(realm), tgt.realm, false)
	if err != nil {
		return nil, err
	}
	cross.realm = tgt.realm
	return s.kdc.tgs(ctx, cross, spn, realm, false)
}

// kdcError turns a KDC refusal into the error users get.
func (s *credSource) kdcError(err error, what, spn string) error {
	var ke *kdcReplyError
	if !errors.As(err, &ke) {
		return err
	}
	switch ke.e.ErrorCode {
	case krbErrSPrincipalUnknown:
		if spn != "" {
			return &PrincipalError{SPN: spn, AtKDC: true, Code: ke.e.ErrorCode, Err: ke}
		}
	case krbErrSkew:
		return s.kdc.skewError(ke.e)
	case krbErrTktExpired:
		if s.secret == nil && s.tgt != nil {
			return &NoCredentialsError{Cache: s.ccache, Expired: s.tgt.end, Err: ke}
		}
	}
	return &KDCError{Code: ke.e.ErrorCode, Text: ke.e.EText, What: what}
}

// refreshLoop renews or re-acquires the TGT at the start of its last
// sixth until ctx ends, so that a long-running program does not find its
// TGT expired (a TGT that expired can no longer be renewed).
func (s *credSource) refreshLoop(ctx context.Context) {
	retry := refreshRetryMin
	for {
		s.mu.Lock()
		wait := time.Duration(-1) // nothing acquired yet: the first dial does it
		if s.tgt != nil {
			wait = max(s.tgt.refreshAt().Sub(s.kdc.now()), 0)
		}
		s.mu.Unlock()
		if !s.sleep(ctx, wait) {
			return
		}
		s.mu.Lock()
		var err error
		if s.tgt != nil && !s.kdc.now().Before(s.tgt.refreshAt()) {
			before := s.tgt
			err = s.refreshTGT(ctx)
			if err == nil && s.tgt == before {
				err = errors.New("no newer ticket")
			}
		}
		s.mu.Unlock()
		if err == nil {
			retry = refreshRetryMin
			continue
		}
		// Back off; the TGT may still be valid and a dial will retry too.
		if !s.sleep(ctx, retry) {
			return
		}
		retry = min(2*retry, refreshRetryMax)
	}
}

// sleep waits d (forever if d < 0) or until a new TGT is installed; it
// reports false when ctx ends.
func (s *credSource) sleep(ctx context.Context, d time.Duration) bool {
	var timer <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-ctx.Done():
		return false
	case <-s.newTGT:
	case <-timer:
	}
	return true
}

// info describes the ticket-granting ticket the source holds, if any.
func (s *credSource) info() (TicketInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tgt == nil {
		return TicketInfo{}, false
	}
	return s.tgt.info(), true
}

// login acquires the TGT now.
func (s *credSource) login(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.currentTGT(ctx)
	return err
}

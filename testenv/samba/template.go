package samba

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// recipeVersion is part of the template's hash: bump it when the recipe
// changes in a way the hashed parameters (recipeText) do not show.
const recipeVersion = "1"

const (
	keytabName   = "gw.keytab"
	templateMeta = "template.json"
	adminPass    = "Admin-Passw0rd-1!"
)

// userPasswords are the users Start makes, with their passwords (which
// meet AD's default complexity rules).
func userPasswords() map[string]string {
	return map[string]string{"alice": "Alice-Passw0rd-1!", "bob": "Bob-Passw0rd-1!"}
}

// userOrder is the order users are made in (it fixes their RIDs).
func userOrder() []string { return []string{"alice", "bob"} }

// serviceSPNs are the service account's SPNs; the first one's keys are
// exported.
func serviceSPNs() []string { return []string{Service, "socks/gw." + DNSDomain} }

// group is a group made by Start, with its members (users or groups).
type group struct {
	name    string
	members []string
}

func groupLayout() []group {
	return []group{
		{"vpn-users", []string{"alice"}},
		{"staff", []string{"vpn-users"}}, // alice is in staff by nesting only
	}
}

// accountSIDs are the SIDs read back after making the accounts.
type accountSIDs struct {
	Users  map[string]string `json:"users"`
	Groups map[string]string `json:"groups"`
}

// smbOptions are the smb.conf [global] settings given to provisioning,
// besides those it writes itself. Without "interfaces = lo" the KDC, CLDAP
// and NetBIOS tasks find no interface in the namespace and silently exit;
// without "bind interfaces only" UDP replies come from 127.0.0.1 and
// clients drop them. Every path is inside dcDir. The rest is lean mode:
// one child per service, no NetBIOS, WINS, DNS update, NTP signing,
// KCC or TLS (no LDAPS; samba would generate an RSA key at each start).
func smbOptions(dcDir string) []string {
	return []string{
		"interfaces = lo",
		"bind interfaces only = yes",
		"pid directory = " + filepath.Join(dcDir, "run"),
		"ncalrpc dir = " + filepath.Join(dcDir, "run", "ncalrpc"),
		"winbindd socket directory = " + filepath.Join(dcDir, "run", "winbindd"),
		"ntp signd socket directory = " + filepath.Join(dcDir, "run", "ntp_signd"),
		"log file = " + filepath.Join(dcDir, "log", "log.%m"),
		"prefork children = 1",
		"server services = -nbt -wrepl -dnsupdate -ntp_signd -kcc",
		"tls enabled = no",
	}
}

// provisionArgs are samba-tool's arguments to provision into dcDir.
func provisionArgs(dcDir string) []string {
	args := []string{"domain", "provision",
		// An empty configuration to start from: else provisioning copies
		// settings and shares from the host's /etc/samba/smb.conf.
		"--configfile=/dev/null",
		"--targetdir=" + dcDir,
		"--realm=" + Realm,
		"--domain=" + Domain,
		"--server-role=dc",
		"--dns-backend=SAMBA_INTERNAL",
		"--host-name=dc1",
		"--host-ip=" + DCAddr,
		"--domain-sid=" + DomainSID,
		"--adminpass=" + adminPass,
		"--use-rfc2307",
	}
	for _, o := range smbOptions(dcDir) {
		args = append(args, "--option="+o)
	}
	return args
}

// recipeHash is the hex SHA-256 of everything that makes the template:
// the parameters above and Samba's version.
func recipeHash() (string, error) {
	samba, err := lookTool("samba")
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrToolsMissing, err)
	}
	version, err := exec.Command(samba, "-V").Output()
	if err != nil {
		return "", fmt.Errorf("samba: samba -V: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "recipe %s\nsamba %s\n", recipeVersion, strings.TrimSpace(string(version)))
	fmt.Fprintf(h, "provision %q\n", provisionArgs("DIR"))
	fmt.Fprintf(h, "users %q %v\ngroups %+v\nservice %s %q\n", userOrder(), userPasswords(), groupLayout(), ServiceAccount, serviceSPNs())
	return hex.EncodeToString(h.Sum(nil)), nil
}

// meta describes a finished template.
type meta struct {
	Recipe string      `json:"recipe"`
	Root   string      `json:"root"` // the dc directory the paths in its smb.conf name
	SIDs   accountSIDs `json:"sids"`
}

// fromTemplate copies the cached template (making it first if needed)
// into dcDir, rewrites the paths in its smb.conf and copies the keytab.
func (dc *DC) fromTemplate(dcDir string) (*accountSIDs, error) {
	m, tdir, err := dc.template()
	if err != nil {
		return nil, err
	}
	// cp -a keeps the extended attributes (sysvol's NT ACLs) Go's copy
	// would lose.
	if out, err := exec.Command("cp", "-a", m.Root, dcDir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("samba: copy template %s: %v: %s", m.Root, err, strings.TrimSpace(string(out)))
	}
	conf := filepath.Join(dcDir, "etc", "smb.conf")
	b, err := os.ReadFile(conf)
	if err != nil {
		return nil, fmt.Errorf("samba: %w", err)
	}
	if err := os.WriteFile(conf, []byte(strings.ReplaceAll(string(b), m.Root, dcDir)), 0o644); err != nil {
		return nil, fmt.Errorf("samba: %w", err)
	}
	kt, err := os.ReadFile(filepath.Join(tdir, keytabName))
	if err != nil {
		return nil, fmt.Errorf("samba: %w", err)
	}
	if err := os.WriteFile(dc.Keytab, kt, 0o600); err != nil {
		return nil, fmt.Errorf("samba: %w", err)
	}
	return &m.SIDs, nil
}

// template returns the template's description and directory, making it
// under an exclusive lock if it is not there.
func (dc *DC) template() (*meta, string, error) {
	hash, err := recipeHash()
	if err != nil {
		return nil, "", err
	}
	cache, err := cacheDir()
	if err != nil {
		return nil, "", err
	}
	tdir := filepath.Join(cache, hash[:16])
	if m := readMeta(tdir, hash); m != nil {
		return m, tdir, nil
	}
	unlock, err := lockFile(tdir + ".lock")
	if err != nil {
		return nil, "", err
	}
	defer unlock()
	if m := readMeta(tdir, hash); m != nil { // made while we waited
		return m, tdir, nil
	}
	if err := os.RemoveAll(tdir); err != nil {
		return nil, "", fmt.Errorf("samba: %w", err)
	}
	if err := os.MkdirAll(tdir, 0o700); err != nil {
		return nil, "", fmt.Errorf("samba: %w", err)
	}
	root := filepath.Join(tdir, "dc")
	sids, err := dc.provision(root, filepath.Join(tdir, keytabName))
	if err != nil {
		os.RemoveAll(tdir)
		return nil, "", err
	}
	// The sockets of the offline samba-tool runs.
	os.RemoveAll(filepath.Join(root, "msg.sock"))
	m := &meta{Recipe: hash, Root: root, SIDs: *sids}
	b, err := json.MarshalIndent(m, "", "\t")
	if err != nil {
		return nil, "", fmt.Errorf("samba: %w", err)
	}
	// Written last: its presence marks the template finished.
	if err := os.WriteFile(filepath.Join(tdir, templateMeta), b, 0o644); err != nil {
		return nil, "", fmt.Errorf("samba: %w", err)
	}
	return m, tdir, nil
}

// readMeta returns the template's description if it is finished and made
// by this recipe.
func readMeta(tdir, hash string) *meta {
	b, err := os.ReadFile(filepath.Join(tdir, templateMeta))
	if err != nil {
		return nil
	}
	var m meta
	if json.Unmarshal(b, &m) != nil || m.Recipe != hash || m.Root == "" || len(m.SIDs.Users) == 0 {
		return nil
	}
	return &m
}

// provision makes the domain in dcDir, offline, inside the namespace:
// provisioning, the accounts, the keytab (written to keytab) and the SIDs.
func (dc *DC) provision(dcDir, keytab string) (*accountSIDs, error) {
	if _, err := dc.run("samba-tool", provisionArgs(dcDir)...); err != nil {
		return nil, err
	}
	conf := filepath.Join(dcDir, "etc", "smb.conf")
	if err := dropForwarder(conf); err != nil {
		return nil, err
	}
	for _, d := range []string{"run", "log"} {
		if err := os.MkdirAll(filepath.Join(dcDir, d), 0o755); err != nil {
			return nil, fmt.Errorf("samba: %w", err)
		}
	}
	sam := filepath.Join(dcDir, "private", "sam.ldb")
	tool := func(args ...string) error {
		_, err := dc.run("samba-tool", append(args, "-s", conf, "-H", sam)...)
		return err
	}
	if err := tool("domain", "passwordsettings", "set", "--max-pwd-age=0"); err != nil {
		return nil, err
	}
	pw := userPasswords()
	for _, u := range userOrder() {
		if err := tool("user", "create", u, pw[u]); err != nil {
			return nil, err
		}
	}
	for _, g := range groupLayout() {
		if err := tool("group", "add", g.name); err != nil {
			return nil, err
		}
	}
	for _, g := range groupLayout() {
		if err := tool("group", "addmembers", g.name, strings.Join(g.members, ",")); err != nil {
			return nil, err
		}
	}
	if err := tool("user", "create", ServiceAccount, "--random-password"); err != nil {
		return nil, err
	}
	for _, spn := range serviceSPNs() {
		if err := tool("spn", "add", spn, ServiceAccount); err != nil {
			return nil, err
		}
	}
	// AES only (24 = AES128 | AES256): else AD issues RC4 tickets.
	ldif := filepath.Join(dcDir, "svc-enctypes.ldif")
	if err := os.WriteFile(ldif, []byte("dn: CN="+ServiceAccount+",CN=Users,"+baseDN()+"\n"+
		"changetype: modify\nreplace: msDS-SupportedEncryptionTypes\nmsDS-SupportedEncryptionTypes: 24\n"), 0o600); err != nil {
		return nil, fmt.Errorf("samba: %w", err)
	}
	if _, err := dc.run("ldbmodify", "-H", sam, ldif); err != nil {
		return nil, err
	}
	os.Remove(ldif)
	if _, err := dc.run("samba-tool", "domain", "exportkeytab", keytab, "--principal="+Service, "-s", conf); err != nil {
		return nil, err
	}
	return dc.lookupSIDs(sam)
}

// baseDN is the domain's LDAP base, DC=ad,DC=example,DC=test.
func baseDN() string {
	return "DC=" + strings.ReplaceAll(DNSDomain, ".", ",DC=")
}

// dropForwarder removes the "dns forwarder" provisioning copied from the
// resolv.conf it saw (the DC itself).
func dropForwarder(conf string) error {
	b, err := os.ReadFile(conf)
	if err != nil {
		return fmt.Errorf("samba: %w", err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if k, _, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == "dns forwarder" {
			continue
		}
		out = append(out, line)
	}
	if err := os.WriteFile(conf, []byte(strings.Join(out, "\n")), 0o644); err != nil {
		return fmt.Errorf("samba: %w", err)
	}
	return nil
}

// lookupSIDs reads the objectSid of every account made.
func (dc *DC) lookupSIDs(sam string) (*accountSIDs, error) {
	names := append(userOrder(), ServiceAccount)
	filter := "(|"
	for _, n := range names {
		filter += "(sAMAccountName=" + n + ")"
	}
	for _, g := range groupLayout() {
		filter += "(sAMAccountName=" + g.name + ")"
	}
	filter += ")"
	out, err := dc.run("ldbsearch", "-H", sam, "-b", baseDN(), filter, "sAMAccountName", "objectSid")
	if err != nil {
		return nil, err
	}
	found := map[string]string{}
	var name, sid string
	flush := func() {
		if name != "" && sid != "" {
			found[name] = sid
		}
		name, sid = "", ""
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "dn: "):
			flush()
		case strings.HasPrefix(line, "sAMAccountName: "):
			name = strings.TrimPrefix(line, "sAMAccountName: ")
		case strings.HasPrefix(line, "objectSid: "):
			sid = strings.TrimPrefix(line, "objectSid: ")
		}
	}
	flush()
	sids := &accountSIDs{Users: map[string]string{}, Groups: map[string]string{}}
	for _, n := range names {
		if !strings.HasPrefix(found[n], DomainSID+"-") {
			return nil, fmt.Errorf("samba: no SID in the domain for %s in ldbsearch's output:\n%s", n, tail(out, 20))
		}
		sids.Users[n] = found[n]
	}
	for _, g := range groupLayout() {
		if !strings.HasPrefix(found[g.name], DomainSID+"-") {
			return nil, fmt.Errorf("samba: no SID in the domain for group %s in ldbsearch's output:\n%s", g.name, tail(out, 20))
		}
		sids.Groups[g.name] = found[g.name]
	}
	return sids, nil
}

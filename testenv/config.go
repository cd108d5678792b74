package testenv

import (
	"bytes"
	"embed"
	"fmt"
	"path"
	"strings"
	"text/template"
)

//go:embed templates
var templateFS embed.FS

// rc4Enctype is added to the key enctypes when Options.AllowRC4 is set.
const rc4Enctype = "arcfour-hmac" // 23, alias rc4-hmac

// keyEnctypes lists the enctypes every principal gets keys for (kdc.conf
// supported_enctypes). The first one is also the master key type.
func keyEnctypes(allowRC4 bool) []string {
	e := []string{
		"aes256-cts-hmac-sha1-96",    // 18
		"aes128-cts-hmac-sha1-96",    // 17
		"aes256-cts-hmac-sha384-192", // 20
		"aes128-cts-hmac-sha256-128", // 19
	}
	if allowRC4 {
		e = append(e, rc4Enctype)
	}
	return e
}

// confData is what the templates in templates/ are rendered with.
type confData struct {
	Generated bool   // add a "Code generated" header (docker files)
	Comment   string // where the file is used, for its header comment
	Realm     string
	AllowRC4  bool

	// krb5.conf
	KDCAddr  string   // kdc = host:port
	Enctypes []string // when set: restrict the client to these enctypes

	// kdc.conf
	Listen      string // kdc_ports and kdc_tcp_ports
	DBDir       string // database and stash
	ConfDir     string // kadm5.acl
	LogTarget   string // e.g. FILE:/dir/kdc.log or STDERR
	KeyEnctypes []string

	// both: anonymous PKINIT, when set (Options.AnonymousPKINIT)
	PKINIT *pkinitFiles

	// docker only
	HostPort   int
	KeytabDir  string
	KeytabName string
	Keytab     string
	Users      []dockerUser
	Services   []string
}

type dockerUser struct{ Name, Password string }

func parseTemplates() (*template.Template, error) {
	t, err := template.New("").
		Funcs(template.FuncMap{"join": func(s []string) string { return strings.Join(s, " ") }}).
		Option("missingkey=error").
		ParseFS(templateFS, "templates/*.tmpl", "templates/docker/*.tmpl")
	if err != nil {
		return nil, fmt.Errorf("testenv: parse templates: %w", err)
	}
	return t, nil
}

func render(t *template.Template, name string, data confData) ([]byte, error) {
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, name, data); err != nil {
		return nil, fmt.Errorf("testenv: render %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// Settings of the dockerised realm (see docker/README.md).
const (
	dockerHostPort = 8888
	dockerKeytab   = "gssocks.keytab"
)

// DockerFiles renders the dockerised test realm: the files that
// "go run ./testenv/cmd/gendocker" writes to testenv/docker, keyed by their
// slash-separated path relative to that directory. It uses the same
// templates as Start.
func DockerFiles() (map[string][]byte, error) {
	t, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	base := confData{
		Generated:   true,
		Realm:       defaultRealm,
		Listen:      "88",
		DBDir:       "/var/lib/krb5kdc",
		ConfDir:     "/etc/krb5kdc",
		LogTarget:   "STDERR",
		KeyEnctypes: keyEnctypes(false),
		HostPort:    dockerHostPort,
		KeytabDir:   "/keytabs",
		KeytabName:  dockerKeytab,
		Keytab:      path.Join("/keytabs", dockerKeytab),
		Users:       []dockerUser{{"alice", "alice-password"}, {"bob", "bob-password"}},
		Services:    []string{"rcmd/localhost", "socks/localhost"},
	}
	inContainer := base
	inContainer.Comment = "inside the container"
	inContainer.KDCAddr = "127.0.0.1:88"
	onHost := base
	onHost.Comment = "clients on the docker host: KRB5_CONFIG=testenv/docker/krb5.conf"
	onHost.KDCAddr = fmt.Sprintf("127.0.0.1:%d", dockerHostPort)

	files := []struct {
		path, tmpl string
		data       confData
	}{
		{"Dockerfile", "Dockerfile.tmpl", base},
		{"compose.yaml", "compose.yaml.tmpl", base},
		{"entrypoint.sh", "entrypoint.sh.tmpl", base},
		{"README.md", "README.md.tmpl", base},
		{"krb5.conf", "krb5.conf.tmpl", onHost},
		{"etc/krb5.conf", "krb5.conf.tmpl", inContainer},
		{"etc/krb5kdc/kdc.conf", "kdc.conf.tmpl", inContainer},
		{"etc/krb5kdc/kadm5.acl", "kadm5.acl.tmpl", inContainer},
		{"keytabs/.gitignore", "gitignore.tmpl", base},
	}
	out := make(map[string][]byte, len(files))
	for _, f := range files {
		b, err := render(t, f.tmpl, f.data)
		if err != nil {
			return nil, err
		}
		out[f.path] = b
	}
	return out, nil
}

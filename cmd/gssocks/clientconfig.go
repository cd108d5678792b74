package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/gssocks/gssocks/bridge"
	"github.com/gssocks/gssocks/client"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// The client settings of `gssocks bridge` and `gssocks connect` come, in
// order of precedence, from flags, the environment and a client file, so
// that a company can ship one file (/etc/gssocks/client.hcl) and users
// need type nothing:
//
//	gateway     = "gw.example.com:1080"
//	service     = "rcmd/gw.example.com"       # default: rcmd/<gateway host, canonicalised>
//	level       = "confidentiality"           # or integrity, clear
//	min_level   = "integrity"                 # default: level
//	krb5_conf   = "/etc/gssocks/krb5.conf"    # default: $KRB5_CONFIG, /etc/krb5.conf
//	ccache      = "FILE:/tmp/krb5cc_1000"     # default: $KRB5CCNAME, ...
//	pac_domains = ["corp.example.com", ".intranet"]
//
// The file is $GSSOCKS_CONFIG (or --config), else the first of
// $XDG_CONFIG_HOME/gssocks/client.hcl (the user's configuration
// directory) and /etc/gssocks/client.hcl (%ProgramData%\gssocks\client.hcl
// on Windows) that exists. Relative paths in it are relative to it.

// clientFile is the client file's schema.
type clientFile struct {
	Gateway    string   `hcl:"gateway,optional"`
	Service    string   `hcl:"service,optional"`
	Level      string   `hcl:"level,optional"`
	MinLevel   string   `hcl:"min_level,optional"`
	Krb5Conf   string   `hcl:"krb5_conf,optional"`
	CCache     string   `hcl:"ccache,optional"`
	PACDomains []string `hcl:"pac_domains,optional"`
}

// clientSettings are the resolved settings.
type clientSettings struct {
	clientFile
	File string // the client file read, "" if none
}

// Environment variables of the client commands.
const (
	envGateway = "GSSOCKS_GATEWAY"
	envService = "GSSOCKS_SERVICE"
	envLevel   = "GSSOCKS_LEVEL"
	envConfig  = "GSSOCKS_CONFIG"
)

// clientFlags are the flags bridge and connect share.
type clientFlags struct {
	fs                                      *flag.FlagSet
	config, gateway, service, level, minLvl *string
}

func addClientFlags(fs *flag.FlagSet) *clientFlags {
	return &clientFlags{
		fs:      fs,
		config:  fs.String("config", "", "client `file` (default $"+envConfig+", $XDG_CONFIG_HOME/gssocks/client.hcl, /etc/gssocks/client.hcl)"),
		gateway: fs.String("gateway", "", "the gateway's `host:port` (default $"+envGateway+", gateway in the client file)"),
		service: fs.String("service", "", "the gateway's Kerberos `principal`, e.g. rcmd/gw.example.com, or socks (default $"+envService+", service in the client file, rcmd/<gateway host>)"),
		level:   fs.String("level", "", "protection `level` to ask: confidentiality, integrity or clear (default $"+envLevel+", level in the client file, confidentiality)"),
		minLvl:  fs.String("min-level", "", "lowest protection `level` accepted (default min_level in the client file, else --level)"),
	}
}

// resolve merges flags over the environment over the client file.
func (cf *clientFlags) resolve(getenv func(string) string) (clientSettings, error) {
	set := map[string]bool{}
	cf.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	path := getenv(envConfig)
	if set["config"] {
		path = *cf.config
	}
	s, err := loadClientFile(path, getenv)
	if err != nil {
		return s, err
	}
	pick := func(dst *string, flagName, flagVal, env string) {
		if set[flagName] {
			*dst = flagVal
		} else if v := getenv(env); env != "" && v != "" {
			*dst = v
		}
	}
	pick(&s.Gateway, "gateway", *cf.gateway, envGateway)
	pick(&s.Service, "service", *cf.service, envService)
	pick(&s.Level, "level", *cf.level, envLevel)
	pick(&s.MinLevel, "min-level", *cf.minLvl, "")
	if s.Gateway == "" {
		return s, errors.New("no gateway: give --gateway host:port, set " + envGateway + ", or put gateway = \"host:port\" in the client file")
	}
	return s, nil
}

// options are the client library's options for s.
func (s clientSettings) options() (client.Options, error) {
	o := client.Options{Gateway: s.Gateway, ServicePrincipal: s.Service, Krb5Conf: s.Krb5Conf, CCache: s.CCache}
	if err := bridge.SetLevels(&o, s.Level, s.MinLevel); err != nil {
		return o, err
	}
	return o, nil
}

// clientFilePaths are the default client files, in order.
func clientFilePaths(getenv func(string) string) []string {
	var paths []string
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" {
		dir, _ = os.UserConfigDir()
	}
	if dir != "" {
		paths = append(paths, filepath.Join(dir, "gssocks", "client.hcl"))
	}
	if runtime.GOOS == "windows" {
		if pd := getenv("ProgramData"); pd != "" {
			paths = append(paths, filepath.Join(pd, "gssocks", "client.hcl"))
		}
	} else {
		paths = append(paths, "/etc/gssocks/client.hcl")
	}
	return paths
}

// loadClientFile reads path, or the first default client file that
// exists when path is "". A path given must exist.
func loadClientFile(path string, getenv func(string) string) (clientSettings, error) {
	if path == "" {
		for _, p := range clientFilePaths(getenv) {
			if _, err := os.Stat(p); err == nil {
				path = p
				break
			} else if !errors.Is(err, fs.ErrNotExist) {
				return clientSettings{}, fmt.Errorf("client file %s: %w", p, err)
			}
		}
		if path == "" {
			return clientSettings{}, nil
		}
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return clientSettings{}, fmt.Errorf("client file: %w", err)
	}
	p := hclparse.NewParser()
	f, diags := p.ParseHCL(src, path)
	var cf clientFile
	if !diags.HasErrors() {
		diags = append(diags, gohcl.DecodeBody(f.Body, nil, &cf)...)
	}
	if diags.HasErrors() {
		var b strings.Builder
		wr := hcl.NewDiagnosticTextWriter(&b, p.Files(), 0, false)
		wr.WriteDiagnostics(diags)
		return clientSettings{}, fmt.Errorf("client file %s:\n%s", path, strings.TrimRight(b.String(), "\n"))
	}
	dir := filepath.Dir(path)
	if cf.Krb5Conf != "" && !filepath.IsAbs(cf.Krb5Conf) {
		cf.Krb5Conf = filepath.Join(dir, cf.Krb5Conf)
	}
	cf.CCache = relativeCCache(cf.CCache, dir)
	return clientSettings{clientFile: cf, File: path}, nil
}

// relativeCCache resolves a FILE:, DIR: or plain path ticket cache name
// relative to dir; other types are left as they are.
func relativeCCache(name, dir string) string {
	typ, rest := "", name
	for _, t := range []string{"FILE:", "DIR:"} {
		if r, ok := strings.CutPrefix(name, t); ok {
			typ, rest = t, r
		}
	}
	if typ == "" && strings.Contains(name, ":") || rest == "" || filepath.IsAbs(rest) || strings.HasPrefix(rest, ":") {
		return name
	}
	return typ + filepath.Join(dir, rest)
}

package client

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jcmturner/gokrb5/v8/config"
)

// krb5Conf is a parsed krb5.conf with the few settings gokrb5 does not
// read.
type krb5Conf struct {
	path string
	cfg  *config.Config
	// canon is dns_canonicalize_hostname: "true" (MIT's historical
	// default), "false" or "fallback" (try the name as given, then the
	// canonical one).
	canon string
	// defaultCCache is default_ccache_name, "" if unset.
	defaultCCache string
}

const defaultKrb5Conf = "/etc/krb5.conf"

// loadKrb5Conf reads path, else the first existing file of $KRB5_CONFIG
// (a colon-separated list, as MIT reads it; only the first file is used),
// else /etc/krb5.conf. include and includedir lines are not followed.
func loadKrb5Conf(path string, getenv func(string) string) (*krb5Conf, error) {
	if path == "" {
		candidates := []string{defaultKrb5Conf}
		if env := getenv("KRB5_CONFIG"); env != "" {
			candidates = filepath.SplitList(env)
		}
		for _, c := range candidates {
			if _, err := os.Stat(c); err == nil {
				path = c
				break
			}
		}
		if path == "" {
			return nil, fmt.Errorf("client: no krb5.conf (tried %s): set Options.Krb5Conf or KRB5_CONFIG to your realm's krb5.conf", strings.Join(candidates, ", "))
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("client: krb5.conf: %w", err)
	}
	return parseKrb5Conf(path, string(data))
}

// parseKrb5Conf strips what gokrb5 cannot parse (dns_canonicalize_hostname
// = fallback, include lines) and remembers it.
func parseKrb5Conf(path, text string) (*krb5Conf, error) {
	k := &krb5Conf{path: path, canon: "true"}
	var kept []string
	section := ""
	for _, line := range strings.Split(text, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
			section = strings.Trim(t, "[]")
		}
		if strings.HasPrefix(t, "include ") || strings.HasPrefix(t, "includedir ") || strings.HasPrefix(t, "module ") {
			continue
		}
		if section == "libdefaults" {
			if key, val, ok := strings.Cut(t, "="); ok {
				key, val = strings.TrimSpace(key), strings.TrimSpace(val)
				if i := strings.IndexAny(val, "#;"); i >= 0 {
					val = strings.TrimSpace(val[:i])
				}
				switch key {
				case "dns_canonicalize_hostname":
					switch strings.ToLower(val) {
					case "fallback":
						k.canon = "fallback"
						continue // gokrb5 only parses booleans
					default:
						if b, err := strconv.ParseBool(val); err == nil {
							k.canon = strconv.FormatBool(b)
						}
					}
				case "default_ccache_name":
					k.defaultCCache = val
				}
			}
		}
		kept = append(kept, line)
	}
	var cfg *config.Config
	err := safeDecode(func() error {
		var err error
		cfg, err = config.NewFromString(strings.Join(kept, "\n"))
		return err
	})
	if err != nil {
		var unsupported config.UnsupportedDirective
		if !errors.As(err, &unsupported) || cfg == nil {
			return nil, fmt.Errorf("client: krb5.conf %s: %w", path, err)
		}
	}
	k.cfg = cfg
	return k, nil
}

// expandCCacheName expands the MIT parameters of default_ccache_name that
// make sense for a file: %{uid}, %{euid}, %{TEMP}, %{USERID}.
func expandCCacheName(s string) string {
	uid := strconv.Itoa(os.Getuid())
	euid := strconv.Itoa(os.Geteuid())
	r := strings.NewReplacer("%{uid}", uid, "%{euid}", euid, "%{USERID}", uid, "%{TEMP}", os.TempDir())
	return r.Replace(s)
}

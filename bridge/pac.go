package bridge

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// PACPath is where the PAC server serves the file.
const PACPath = "/proxy.pac"

// pacFile is the proxy auto-config file: FindProxyForURL sends hosts in
// the listed domains to the bridge's HTTP proxy, then its SOCKS5 proxy,
// and every other host direct.
type pacFile struct {
	domains     []string // normalised by ValidatePACDomain
	socks, http string   // listen addresses, set by Start
}

func newPACFile(domains []string) (*pacFile, error) {
	if len(domains) == 0 {
		return nil, fmt.Errorf("bridge: the PAC file needs domains to send through the bridge (--pac-domains corp.example.com,.intranet or pac_domains in the client file)")
	}
	p := &pacFile{}
	for _, d := range domains {
		n, err := ValidatePACDomain(d)
		if err != nil {
			return nil, err
		}
		p.domains = append(p.domains, n)
	}
	return p, nil
}

// ValidatePACDomain checks a PAC domain and returns it in lower case:
// "example.com" (the name and every name below it) or ".example.com"
// (only the names below it), made of DNS labels of letters, digits, "-"
// and "_", at most 253 characters.
func ValidatePACDomain(d string) (string, error) {
	name := strings.TrimPrefix(d, ".")
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("bridge: PAC domain %q: %s (want a name such as corp.example.com or .intranet)", d, why)
	}
	if name == "" || len(name) > 253 {
		return bad("empty or longer than 253 characters")
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return bad("empty label or a label longer than 63 characters")
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return bad(fmt.Sprintf("character %q is not allowed", c))
			}
		}
	}
	return strings.ToLower(d), nil
}

// proxyFor is the "host:port" a client should use to reach the listener
// at listen: the listen address, or, for an unspecified one (0.0.0.0,
// ::), the host the client reached the PAC server by.
func proxyFor(listen, reqHost string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() {
		return listen
	}
	h := reqHost
	if hh, _, err := net.SplitHostPort(reqHost); err == nil {
		h = hh
	}
	if _, err := netip.ParseAddr(h); err != nil {
		if _, err := ValidatePACDomain(h); err != nil || strings.HasPrefix(h, ".") {
			h = "127.0.0.1"
		}
	}
	return net.JoinHostPort(h, port)
}

// render writes the PAC file for a client that asked at reqHost. Every
// string is a JSON string literal, valid JavaScript, so that nothing in
// a domain or an address can end the literal or the script.
func (p *pacFile) render(reqHost string) string {
	var via []string
	if p.http != "" {
		via = append(via, "PROXY "+proxyFor(p.http, reqHost))
	}
	if p.socks != "" {
		via = append(via, "SOCKS5 "+proxyFor(p.socks, reqHost))
	}
	route, _ := json.Marshal(strings.Join(via, "; "))
	domains, _ := json.Marshal(p.domains)
	return fmt.Sprintf(`// gssocks bridge: hosts in these domains go through the Kerberos gateway,
// all others direct. "example.com" matches it and the names below it,
// ".example.com" only the names below it.
function FindProxyForURL(url, host) {
  var bridge = %s;
  var domains = %s;
  host = host.toLowerCase();
  if (host.length > 0 && host.charAt(host.length - 1) == ".") {
    host = host.substring(0, host.length - 1);
  }
  for (var i = 0; i < domains.length; i++) {
    var d = domains[i];
    if (d.charAt(0) != ".") {
      if (host == d) {
        return bridge;
      }
      d = "." + d;
    }
    if (host.length > d.length && host.substring(host.length - d.length) == d) {
      return bridge;
    }
  }
  return "DIRECT";
}
`, route, domains)
}

// ServeHTTP serves the PAC file at PACPath.
func (p *pacFile) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != PACPath {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/x-ns-proxy-autoconfig")
	w.Header().Set("Cache-Control", "no-cache")
	body := p.render(r.Host)
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	if r.Method == http.MethodGet {
		w.Write([]byte(body))
	}
}

package gssapi

// ParsePrincipals parses a list of service principals as configured
// ("service/host" for any realm, or "service/host@REALM"), in order: the
// patterns that AcceptorConfig.Principals, MatchPrincipal and KeytabFacts
// work with. The first name that does not parse is the error (ErrBadName).
// An empty list gives nil: every principal matches.
func ParsePrincipals(names []string) ([]Principal, error) {
	var out []Principal
	for _, s := range names {
		p, err := ParsePrincipal(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

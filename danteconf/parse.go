package danteconf

import (
	"fmt"
	"strings"
)

// File is a parsed sockd.conf.
type File struct {
	Name string // the file name given to Parse, for notes and errors
	// Settings are the server settings ("keyword: value" outside any
	// block), in file order.
	Settings []*Setting
	// Rules are the client, hostid and socks rules and the route and
	// monitor blocks, in file order.
	Rules []*Rule
}

// Setting is one "keyword: value ..." statement.
type Setting struct {
	// Key is the keyword, lower case, without its colon: "timeout.io",
	// "gssapi.enctype". The address of a redirect statement has the key
	// "redirect from" or "redirect to"; a bounce address "bounce to".
	Key    string
	Line   int
	Values []Value // the words after the colon; for address keywords, the address's words
	// Addr is the parsed address of the address keywords (from, to, via,
	// internal, external, redirect from/to, bounce to); nil otherwise.
	Addr *Address
}

// Value is one word of a setting's value, with its line (a value continued
// with a backslash may span lines).
type Value struct {
	Text string
	Line int
}

// Words returns the texts of the values, lower case: keywords in Dante are
// lower case, and its method and command names are compared so.
func (s *Setting) Words() []string {
	out := make([]string, len(s.Values))
	for i, v := range s.Values {
		out[i] = strings.ToLower(v.Text)
	}
	return out
}

// RuleKind is the kind of a rule or block.
type RuleKind int

const (
	// ClientRule ("client pass", "client block") is checked when a client
	// connects, before any SOCKS negotiation.
	ClientRule RuleKind = iota
	// SocksRule ("socks pass", "socks block", or the 1.2 form "pass",
	// "block") is checked for each SOCKS request.
	SocksRule
	// HostIDRule ("hostid pass", "hostid block") matches the host ID TCP
	// option of the client.
	HostIDRule
	// RouteBlock ("route { ... }") chains to another proxy.
	RouteBlock
	// MonitorBlock ("monitor { ... }") raises traffic alarms.
	MonitorBlock
)

func (k RuleKind) String() string {
	switch k {
	case ClientRule:
		return "client"
	case SocksRule:
		return "socks"
	case HostIDRule:
		return "hostid"
	case RouteBlock:
		return "route"
	case MonitorBlock:
		return "monitor"
	}
	return fmt.Sprintf("RuleKind(%d)", int(k))
}

// Verdict is a rule's pass or block.
type Verdict int

const (
	NoVerdict Verdict = iota // route and monitor blocks
	Pass
	Block
)

func (v Verdict) String() string {
	switch v {
	case Pass:
		return "pass"
	case Block:
		return "block"
	}
	return ""
}

// Rule is a rule or a route or monitor block.
type Rule struct {
	Kind    RuleKind
	Verdict Verdict
	// Legacy marks the 1.2 form of a socks rule, "pass { ... }" without
	// the "socks" prefix.
	Legacy  bool
	Line    int // of the rule's first word
	EndLine int // of its closing brace
	// From and To are the rule's from: and to: addresses; nil when the
	// rule has none (Dante requires both in a rule).
	From, To *Address
	// Settings are the rule's other statements, in order: command:, user:,
	// gssapi.enctype:, via:, redirect from:, ...
	Settings []*Setting
}

// Name is how notes name the rule: "socks pass", "client block", "route".
func (r *Rule) Name() string {
	if r.Verdict == NoVerdict {
		return r.Kind.String()
	}
	return r.Kind.String() + " " + r.Verdict.String()
}

// Get returns the rule's settings with the key, in order.
func (r *Rule) Get(key string) []*Setting { return find(r.Settings, key) }

// Get returns the server settings with the key, in order.
func (f *File) Get(key string) []*Setting { return find(f.Settings, key) }

func find(ss []*Setting, key string) []*Setting {
	var out []*Setting
	for _, s := range ss {
		if s.Key == key {
			out = append(out, s)
		}
	}
	return out
}

// addressKeys are the keywords whose value is an address.
var addressKeys = map[string]bool{
	"from": true, "to": true, "via": true, "internal": true, "external": true,
}

// maxRules bounds the rules and blocks of a file: a real one has dozens,
// and the converted policy is checked rule against rule.
const maxRules = 4096

// Parse reads a sockd.conf. filename names the file in errors and notes.
// The error, an *Error, names the line of the first problem: a rule
// without its braces or verdict, a word where a keyword was expected, a
// malformed address, netmask or port condition, an unclosed block.
// Keywords it does not know are kept, not refused.
func Parse(src []byte, filename string) (*File, error) {
	toks, err := lex(src, filename)
	if err != nil {
		return nil, err
	}
	p := &parser{file: filename, toks: toks}
	f := &File{Name: filename}
	for p.pos < len(p.toks) {
		t := p.toks[p.pos]
		switch t.kind {
		case tokEOL:
			p.pos++
		case tokRBrace:
			return nil, &Error{filename, t.line, "'}' without a block to close"}
		case tokLBrace:
			return nil, &Error{filename, t.line, "'{' without a rule before it; a rule starts \"client pass {\", \"socks pass {\" or \"socks block {\""}
		default:
			if k, ok := p.key(); ok {
				s, err := p.statement(k)
				if err != nil {
					return nil, err
				}
				f.Settings = append(f.Settings, s)
				continue
			}
			p.pos++
			r, err := p.rule(t)
			if err != nil {
				return nil, err
			}
			if len(f.Rules) >= maxRules {
				return nil, &Error{filename, t.line, fmt.Sprintf("more than %d rules", maxRules)}
			}
			f.Rules = append(f.Rules, r)
		}
	}
	return f, nil
}

type parser struct {
	file string
	toks []token
	pos  int
}

func (p *parser) next() token {
	if p.pos >= len(p.toks) {
		last := 1
		if n := len(p.toks); n > 0 {
			last = p.toks[n-1].line
		}
		return token{kind: tokEOL, line: last}
	}
	t := p.toks[p.pos]
	p.pos++
	return t
}

func (p *parser) errorf(line int, format string, args ...any) error {
	return &Error{p.file, line, fmt.Sprintf(format, args...)}
}

// skipEOL steps over ends of lines.
func (p *parser) skipEOL() {
	for p.pos < len(p.toks) && p.toks[p.pos].kind == tokEOL {
		p.pos++
	}
}

// rule reads a rule or block that starts with the word first.
func (p *parser) rule(first token) (*Rule, error) {
	r := &Rule{Line: first.line}
	word := strings.ToLower(first.text)
	verdict := func(w string) Verdict {
		switch strings.ToLower(w) {
		case "pass":
			return Pass
		case "block":
			return Block
		}
		return NoVerdict
	}
	switch word {
	case "client", "socks", "hostid":
		r.Kind = map[string]RuleKind{"client": ClientRule, "socks": SocksRule, "hostid": HostIDRule}[word]
		v := p.next()
		if v.kind != tokWord || verdict(v.text) == NoVerdict {
			return nil, p.errorf(first.line, "%s must be followed by pass or block", excerpt(first.text))
		}
		r.Verdict = verdict(v.text)
	case "pass", "block":
		r.Kind, r.Verdict, r.Legacy = SocksRule, verdict(word), true
	case "route":
		r.Kind = RouteBlock
	case "monitor":
		r.Kind = MonitorBlock
	default:
		return nil, p.errorf(first.line, "%s: expected a keyword followed by ':' or a rule (\"client pass {\", \"socks pass {\")", excerpt(first.text))
	}
	p.skipEOL()
	if t := p.next(); t.kind != tokLBrace {
		return nil, p.errorf(t.line, "%s: expected '{'", r.Name())
	}
	for {
		if p.pos >= len(p.toks) {
			return nil, p.errorf(r.Line, "%s: no '}' closes the rule", r.Name())
		}
		t := p.toks[p.pos]
		switch {
		case t.kind == tokEOL:
			p.pos++
		case t.kind == tokRBrace:
			p.pos++
			r.EndLine = t.line
			return r, nil
		case t.kind == tokLBrace:
			return nil, p.errorf(t.line, "%s: '{' inside a rule; is a '}' missing above?", r.Name())
		default:
			if k, ok := p.key(); ok {
				s, err := p.statement(k)
				if err != nil {
					return nil, err
				}
				switch s.Key {
				case "from", "to":
					dst := &r.From
					if s.Key == "to" {
						dst = &r.To
					}
					if *dst != nil {
						return nil, p.errorf(s.Line, "%s: a second %s: address (the first is on line %d)", r.Name(), s.Key, (*dst).Line)
					}
					*dst = s.Addr
				default:
					r.Settings = append(r.Settings, s)
				}
				continue
			}
			p.pos++
			switch w := strings.ToLower(t.text); w {
			case "redirect", "bounce":
				ss, err := p.prefixed(w, t.line)
				if err != nil {
					return nil, err
				}
				r.Settings = append(r.Settings, ss...)
			case "client", "socks", "hostid", "pass", "block", "route", "monitor":
				return nil, p.errorf(t.line, "%s: a new rule starts before the '}' of the rule on line %d", excerpt(t.text), r.Line)
			default:
				return nil, p.errorf(t.line, "%s: expected a keyword followed by ':'", excerpt(t.text))
			}
		}
	}
}

// prefixed reads "redirect from: A to: B" or "bounce to: A": addresses
// whose keys carry the prefix word.
func (p *parser) prefixed(word string, line int) ([]*Setting, error) {
	var out []*Setting
	for len(out) < 2 {
		if k, ok := p.keyAt(p.pos); !ok || k != "from" && k != "to" {
			break
		}
		k, _ := p.key()
		s, err := p.statement(k)
		if err != nil {
			return nil, err
		}
		s.Key = word + " " + s.Key
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, p.errorf(line, "%s must be followed by from: or to: and an address", word)
	}
	return out, nil
}

// keyAt returns the keyword a statement starting at toks[i] would have.
func (p *parser) keyAt(i int) (string, bool) {
	if i >= len(p.toks) || p.toks[i].kind != tokWord {
		return "", false
	}
	t := p.toks[i]
	if k, _, ok := keyOf(t.text); ok {
		return k, true
	}
	if isIdent(t.text) && !isHex(t.text) && i+1 < len(p.toks) {
		n := p.toks[i+1]
		if n.kind == tokWord && n.line == t.line && strings.HasPrefix(n.text, ":") && !strings.HasPrefix(n.text, "::") {
			return strings.ToLower(t.text), true
		}
	}
	return "", false
}

// key consumes the keyword a statement starts with: "key:", "key:value"
// (the value stays, as the next word), "key :" or "key :value".
func (p *parser) key() (token, bool) {
	k, ok := p.keyAt(p.pos)
	if !ok {
		return token{}, false
	}
	t := p.toks[p.pos]
	if _, rest, ok := keyOf(t.text); ok {
		if rest == "" {
			p.pos++
		} else {
			p.toks[p.pos] = token{kind: tokWord, text: rest, line: t.line}
		}
		return token{kind: tokKey, text: k, line: t.line}, true
	}
	p.pos++
	n := p.toks[p.pos]
	if n.text == ":" {
		p.pos++
	} else {
		p.toks[p.pos] = token{kind: tokWord, text: n.text[1:], line: n.line}
	}
	return token{kind: tokKey, text: k, line: t.line}, true
}

// statement reads the value of the key k: an address and its port
// condition for the address keywords (another statement may follow on the
// line, as in "from: A to: B"), else the words up to the end of the line.
func (p *parser) statement(k token) (*Setting, error) {
	s := &Setting{Key: k.text, Line: k.line}
	end := p.pos
	for end < len(p.toks) && p.toks[end].kind == tokWord {
		end++
	}
	if addressKeys[k.text] {
		ap := &addrParser{file: p.file, toks: p.toks[p.pos:end]}
		a, err := ap.address(k.text, k.line)
		if err != nil {
			return nil, err
		}
		for _, w := range ap.toks[:ap.pos] {
			s.Values = append(s.Values, Value{w.text, w.line})
		}
		p.pos += ap.pos
		s.Addr = a
		return s, nil
	}
	for ; p.pos < end; p.pos++ {
		w := p.toks[p.pos]
		s.Values = append(s.Values, Value{w.text, w.line})
	}
	if len(s.Values) == 0 {
		return nil, p.errorf(k.line, "%s: has no value", k.text)
	}
	return s, nil
}

package danteconf

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// tokKind is the kind of a token.
type tokKind int

const (
	tokWord   tokKind = iota // a run of non-blank characters
	tokKey                   // a keyword followed by ':' ("from:", "timeout.io:"), made by the parser
	tokLBrace                // {
	tokRBrace                // }
	tokEOL                   // end of a logical line
)

// token is one lexical unit with the line it starts on. For tokKey, text
// is the keyword without its colon.
type token struct {
	kind tokKind
	text string
	line int
}

// Error is a syntax error in a sockd.conf file: File:Line: Msg. Msg quotes
// at most a short excerpt of the offending text.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// maxExcerpt bounds the text of the file an error quotes.
const maxExcerpt = 40

// excerpt quotes s for an error message, shortened.
func excerpt(s string) string {
	if len(s) > maxExcerpt {
		s = s[:maxExcerpt] + "..."
	}
	return strconv.Quote(s)
}

// lex splits src into tokens. Like Dante's scanner, it ends a statement at
// the end of a line unless the line ends in a backslash, starts a comment
// with '#' where a token could start, and reads '{' and '}' as tokens even
// when written against a word, as Dante's scanner does outside values (a
// value with a brace, which no real file has, is split too). Whether a word is a keyword depends on where
// it stands, which the parser knows.
func lex(src []byte, file string) ([]token, error) {
	if !utf8.Valid(src) {
		return nil, &Error{file, badUTF8Line(src), "not UTF-8 text"}
	}
	var toks []token
	line := 1
	emit := func(t token) {
		if t.kind == tokEOL && (len(toks) == 0 || toks[len(toks)-1].kind == tokEOL) {
			return // blank lines
		}
		toks = append(toks, t)
	}
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\n':
			emit(token{kind: tokEOL, line: line})
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '\\' && continuation(src, i) > 0:
			i += continuation(src, i)
			line++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '{':
			emit(token{kind: tokLBrace, text: "{", line: line})
			i++
		case c == '}':
			emit(token{kind: tokRBrace, text: "}", line: line})
			i++
		case c < 0x20 || c == 0x7f:
			return nil, &Error{file, line, fmt.Sprintf("control character 0x%02x", c)}
		default:
			start := i
			for i < len(src) {
				c := src[i]
				if c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v' || c == '{' || c == '}' ||
					(c == '\\' && continuation(src, i) > 0) {
					break
				}
				if c < 0x20 || c == 0x7f {
					return nil, &Error{file, line, fmt.Sprintf("control character 0x%02x", c)}
				}
				i++
			}
			emit(token{kind: tokWord, text: string(src[start:i]), line: line})
		}
	}
	emit(token{kind: tokEOL, line: line})
	return toks, nil
}

// continuation returns the length of a backslash-newline at src[i] ("\\\n"
// or "\\\r\n"), or 0.
func continuation(src []byte, i int) int {
	switch {
	case i+1 < len(src) && src[i+1] == '\n':
		return 2
	case i+2 < len(src) && src[i+1] == '\r' && src[i+2] == '\n':
		return 3
	}
	return 0
}

// keyOf reads a word at the start of a statement as a keyword: "from:"
// is the key from; "from:10.0.0.0/8" is the key from and the word
// "10.0.0.0/8". A word whose part before the colon is all hexadecimal
// digits is not a key, as the first group of an IPv6 address is not.
func keyOf(w string) (key, rest string, ok bool) {
	k, rest, ok := strings.Cut(w, ":")
	if !ok || !isIdent(k) || isHex(k) || strings.HasPrefix(rest, ":") {
		return "", "", false
	}
	return strings.ToLower(k), rest, true
}

// isIdent reports whether s is shaped like a Dante keyword: a letter, then
// letters, digits, '.', '_' or '-'.
func isIdent(s string) bool {
	if s == "" || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isLetter(c) && !(c >= '0' && c <= '9') && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return s != ""
}

// badUTF8Line returns the line of the first byte that is not UTF-8.
func badUTF8Line(src []byte) int {
	for i := 0; i < len(src); {
		r, n := utf8.DecodeRune(src[i:])
		if r == utf8.RuneError && n <= 1 {
			return 1 + bytes.Count(src[:i], []byte("\n"))
		}
		i += n
	}
	return 1
}

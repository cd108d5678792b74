package danteconf

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// NoteKind classifies a Note.
type NoteKind int

const (
	// Unmapped: the keyword or value has no gssocks equivalent and was
	// left out of the output.
	Unmapped NoteKind = iota
	// Review: converted, but gssocks will behave differently from Dante
	// (stricter where the output fails closed), or the output holds a
	// placeholder only the operator can fill in.
	Review
	// Info: converted with a remark worth reading.
	Info
)

func (k NoteKind) String() string {
	switch k {
	case Unmapped:
		return "not converted"
	case Review:
		return "review"
	case Info:
		return "info"
	}
	return "NoteKind(" + strconv.Itoa(int(k)) + ")"
}

// Note is a remark about the conversion of one keyword: what was left out
// or changed, and why.
type Note struct {
	File    string // the sockd.conf name
	Line    int    // first line it concerns; 0 for the file as a whole
	Also    []int  // further lines with the same remark
	Kind    NoteKind
	Keyword string // the sockd.conf keyword ("external.rotation", "socks pass"), or ""
	Text    string // what happened and why
}

// String renders "sockd.conf:12: not converted: external.rotation: Text
// (also lines 30, 41)".
func (n Note) String() string {
	var b strings.Builder
	b.WriteString(n.File)
	if n.Line > 0 {
		fmt.Fprintf(&b, ":%d", n.Line)
	}
	fmt.Fprintf(&b, ": %s: ", n.Kind)
	if n.Keyword != "" {
		b.WriteString(n.Keyword + ": ")
	}
	b.WriteString(n.Text)
	if len(n.Also) > 0 {
		b.WriteString(" (also line")
		if len(n.Also) > 1 {
			b.WriteString("s")
		}
		for i, l := range n.Also {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, " %d", l)
		}
		b.WriteString(")")
	}
	return b.String()
}

// notes collects notes, folding repeats of the same remark into one.
type notes struct {
	file string
	list []Note
	seen map[string]int // kind, keyword and text -> index in list
}

func (ns *notes) add(kind NoteKind, line int, keyword, format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	key := strconv.Itoa(int(kind)) + "\x00" + keyword + "\x00" + text
	if ns.seen == nil {
		ns.seen = map[string]int{}
	}
	if i, ok := ns.seen[key]; ok {
		n := &ns.list[i]
		if line != n.Line && !slices.Contains(n.Also, line) && len(n.Also) < maxAlso {
			n.Also = append(n.Also, line)
		}
		return
	}
	ns.seen[key] = len(ns.list)
	ns.list = append(ns.list, Note{File: ns.file, Line: line, Kind: kind, Keyword: keyword, Text: text})
}

// maxAlso bounds the lines a folded note lists.
const maxAlso = 20

// sorted returns the notes by line, then kind.
func (ns *notes) sorted() []Note {
	out := slices.Clone(ns.list)
	slices.SortStableFunc(out, func(a, b Note) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return int(a.Kind) - int(b.Kind)
	})
	return out
}

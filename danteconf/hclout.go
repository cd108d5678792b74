package danteconf

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2/hclwrite"
)

// hclAttr is one attribute of the output with the comment naming its
// source.
type hclAttr struct {
	above []string // comment lines above the attribute
	name  string   // "" for a comment without an attribute
	value string   // rendered HCL
	src   string   // trailing comment, "sockd.conf:12"
}

// hclBlock is one block of the output.
type hclBlock struct {
	above []string // comment lines above the block
	typ   string
	label string // "" for none
	attrs []hclAttr
}

// hclString renders s as an HCL quoted string. Control characters do not
// reach here (the lexer refuses them); template sequences are escaped so
// that the value is taken literally.
func hclString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case (c == '$' || c == '%') && i+1 < len(s) && s[i+1] == '{':
			b.WriteByte(c)
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// hclList renders a list of strings, one element a line when long.
func hclList(items []string) string {
	q := make([]string, len(items))
	width := 0
	for i, it := range items {
		q[i] = hclString(it)
		width += len(q[i]) + 2
	}
	if len(items) <= 4 && width < 70 {
		return "[" + strings.Join(q, ", ") + "]"
	}
	return "[\n" + strings.Join(q, ",\n") + ",\n]"
}

// srcComment renders the lines an output element comes from.
func srcComment(file string, lines ...int) string {
	var parts []string
	seen := map[int]bool{}
	for _, l := range lines {
		if l > 0 && !seen[l] {
			seen[l] = true
			parts = append(parts, strconv.Itoa(l))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return file + ":" + strings.Join(parts, ",")
}

// commentLines renders text as "# " comment lines, wrapped near 76
// columns.
func commentLines(b *bytes.Buffer, indent string, lines []string) {
	for _, l := range lines {
		if l == "" {
			b.WriteString(indent + "#\n")
			continue
		}
		for _, w := range wrap(l, 76-len(indent)) {
			b.WriteString(indent + "# " + w + "\n")
		}
	}
}

// wrap breaks s at spaces into lines of at most width characters (longer
// words stay whole); a line's leading spaces are kept on its first piece
// and the rest are indented to match.
func wrap(s string, width int) []string {
	lead := s[:len(s)-len(strings.TrimLeft(s, " "))]
	var out []string
	prefix, cur := lead, ""
	for _, w := range strings.Fields(s) {
		if cur != "" && len(prefix)+len(cur)+1+len(w) > width {
			out = append(out, prefix+cur)
			prefix, cur = lead+"  ", ""
		}
		if cur != "" {
			cur += " "
		}
		cur += w
	}
	return append(out, prefix+cur)
}

// render writes the file: header comments, top-level attributes, blocks;
// then formats it as hclwrite does (aligned equals signs).
func render(header []string, top []hclAttr, blocks []hclBlock) []byte {
	var b bytes.Buffer
	commentLines(&b, "", header)
	for _, a := range top {
		b.WriteString("\n")
		writeAttr(&b, "", a)
	}
	for _, bl := range blocks {
		b.WriteString("\n")
		commentLines(&b, "", bl.above)
		b.WriteString(bl.typ)
		if bl.label != "" {
			b.WriteString(" " + hclString(bl.label))
		}
		b.WriteString(" {\n")
		for i, a := range bl.attrs {
			if i > 0 && len(a.above) > 0 {
				b.WriteString("\n")
			}
			writeAttr(&b, "  ", a)
		}
		b.WriteString("}\n")
	}
	return hclwrite.Format(b.Bytes())
}

func writeAttr(b *bytes.Buffer, indent string, a hclAttr) {
	commentLines(b, indent, a.above)
	if a.name == "" {
		return // a comment only
	}
	if strings.Contains(a.value, "\n") && a.src != "" {
		// A trailing comment after a long list would be aligned far out.
		b.WriteString(indent + "# " + a.src + "\n")
		a.src = ""
	}
	b.WriteString(indent + a.name + " = " + a.value)
	if a.src != "" {
		b.WriteString(" # " + a.src)
	}
	b.WriteString("\n")
}

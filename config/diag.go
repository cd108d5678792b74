package config

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// sortDiagnostics orders diagnostics by position, so they read top to
// bottom (hcl reports unknown attributes in map order); those without a
// position come last.
func sortDiagnostics(diags hcl.Diagnostics) hcl.Diagnostics {
	slices.SortStableFunc(diags, func(a, b *hcl.Diagnostic) int {
		switch {
		case a.Subject == nil && b.Subject == nil:
			return 0
		case a.Subject == nil:
			return 1
		case b.Subject == nil:
			return -1
		}
		return cmp.Or(
			strings.Compare(a.Subject.Filename, b.Subject.Filename),
			cmp.Compare(a.Subject.Start.Byte, b.Subject.Start.Byte),
		)
	})
	return diags
}

// diagWidth is where FormatDiagnostics wraps detail text.
const diagWidth = 78

// FormatDiagnostics writes diags for a person: each one starts with a
// "file:line:col: Severity: Summary" line that editors can jump to,
// followed by hcl's rendering with a source snippet from files (as a
// Loader returns them) and the detail. The error is w's.
func FormatDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics) error {
	tw := hcl.NewDiagnosticTextWriter(w, files, diagWidth, false)
	for _, diag := range diags {
		if diag.Subject != nil {
			s := diag.Subject.Start
			if _, err := fmt.Fprintf(w, "%s:%d:%d: ", diag.Subject.Filename, s.Line, s.Column); err != nil {
				return err
			}
		}
		if err := tw.WriteDiagnostic(diag); err != nil {
			return err
		}
	}
	return nil
}

// add records a diagnostic at rng.
func (d *decoder) add(sev hcl.DiagnosticSeverity, rng hcl.Range, summary, format string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: sev,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  rng.Ptr(),
	})
}

func (d *decoder) errorf(rng hcl.Range, summary, format string, args ...any) {
	d.add(hcl.DiagError, rng, summary, format, args...)
}

func (d *decoder) warnf(rng hcl.Range, summary, format string, args ...any) {
	d.add(hcl.DiagWarning, rng, summary, format, args...)
}

// missing reports a required attribute left out (gohcl treats pointer
// fields as optional).
func (d *decoder) missing(rng hcl.Range, name, what string) {
	d.errorf(rng, "Missing required argument", "The argument %q is required: %s.", name, what)
}

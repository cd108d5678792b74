package main

import (
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// buildVersion is what `gssocks version` reports: the release, the commit
// the binary was built from and the toolchain that built it.
type buildVersion struct {
	Version   string // main.version (-ldflags -X), else the module version, else "dev"
	Commit    string // vcs.revision; "" when built without VCS stamping
	Modified  bool   // vcs.modified: the work tree had uncommitted changes
	Time      string // vcs.time, RFC 3339; "" when unknown
	GoVersion string // e.g. "go1.26.0"
	Platform  string // GOOS/GOARCH
}

// readBuildVersion combines the -X override with the build information the
// Go toolchain embeds (go version -m shows the same). override "dev" (the
// default of main.version) means no override: a binary installed with
// `go install ...@v1.2.3` then reports v1.2.3.
func readBuildVersion(bi *debug.BuildInfo, ok bool, override string) buildVersion {
	v := buildVersion{Version: override, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if !ok || bi == nil {
		if v.Version == "" {
			v.Version = "dev"
		}
		return v
	}
	if bi.GoVersion != "" {
		v.GoVersion = bi.GoVersion
	}
	if v.Version == "" || v.Version == "dev" {
		v.Version = "dev"
		if mv := bi.Main.Version; mv != "" && mv != "(devel)" {
			v.Version = mv
		}
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		case "vcs.time":
			v.Time = s.Value
		}
	}
	return v
}

func (v buildVersion) write(w io.Writer) error {
	commit := v.Commit
	switch {
	case commit == "":
		commit = "unknown (built without VCS stamping, -buildvcs=false)"
	case v.Modified:
		commit += " (modified)"
	}
	if v.Time != "" {
		commit += " " + v.Time
	}
	_, err := fmt.Fprintf(w, "gssocks %s\ncommit   %s\ngo       %s %s\n", v.Version, commit, v.GoVersion, v.Platform)
	return err
}

func versionCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gssocks version: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	bi, ok := debug.ReadBuildInfo()
	if err := readBuildVersion(bi, ok, version).write(stdout); err != nil {
		fmt.Fprintf(stderr, "gssocks version: %v\n", err)
		return 1
	}
	return 0
}

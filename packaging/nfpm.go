package packaging

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
	"github.com/goreleaser/nfpm/v2/rpm"
)

// Where the packages install things. The unit goes to /usr/lib/systemd,
// which systemd reads on Debian 12 (merged /usr or not) and on RHEL.
const (
	BinaryPath = "/usr/bin/gssocks"
	ConfigDir  = "/etc/gssocks"
	ConfigPath = "/etc/gssocks/config.hcl"
	UnitPath   = "/usr/lib/systemd/system/gssocks.service"
	LogDir     = "/var/log/gssocks"
	StateDir   = "/var/lib/gssocks"
	DocDir     = "/usr/share/doc/gssocks"
)

// PackageSpec is one build of the packages.
type PackageSpec struct {
	Root    string    // repository root: config.hcl.example, README.md, packaging/
	Binary  string    // the static gssocks binary (BuildBinary)
	Version string    // package version (CheckVersion)
	Arch    string    // GOARCH: amd64, arm64; nfpm names it per format
	MTime   time.Time // file times in the packages; zero: the Unix epoch
}

// Formats are the package formats PackageInfo and WritePackage know.
func Formats() []string { return []string{"deb", "rpm"} }

func packager(format string) (nfpm.Packager, error) {
	switch format {
	case "deb":
		return deb.Default, nil
	case "rpm":
		return rpm.DefaultRPM, nil
	}
	return nil, fmt.Errorf("packaging: unknown package format %q (want deb or rpm)", format)
}

// PackageInfo describes the gssocks package for nfpm: the binary, the
// configuration (a conffile an upgrade does not replace once edited), the
// unit, the log and state directories, the docs and the maintainer
// scripts that create the gssocks system user and set owners. Files are
// root-owned in the archive; the postinstall script gives the group
// gssocks what the service must read, since the group does not exist
// when the archive is unpacked.
func PackageInfo(spec PackageSpec, format string) (*nfpm.Info, error) {
	if err := CheckVersion(spec.Version); err != nil {
		return nil, err
	}
	if _, err := packager(format); err != nil {
		return nil, err
	}
	mtime := spec.MTime
	if mtime.IsZero() {
		mtime = time.Unix(0, 0).UTC()
	}
	src := func(rel string) string { return filepath.Join(spec.Root, filepath.FromSlash(rel)) }
	fi := func(mode uint32) *files.ContentFileInfo {
		return &files.ContentFileInfo{Owner: "root", Group: "root", Mode: os.FileMode(mode), MTime: mtime}
	}
	contents := files.Contents{
		{Source: spec.Binary, Destination: BinaryPath, FileInfo: fi(0o755)},
		{Destination: ConfigDir, Type: files.TypeDir, FileInfo: fi(0o750)},
		{Source: src("config.hcl.example"), Destination: ConfigPath, Type: files.TypeConfigNoReplace, FileInfo: fi(0o640)},
		{Source: src("packaging/gssocks.service"), Destination: UnitPath, FileInfo: fi(0o644)},
		{Destination: LogDir, Type: files.TypeDir, FileInfo: fi(0o750)},
		{Destination: StateDir, Type: files.TypeDir, FileInfo: fi(0o750)},
		{Source: src("README.md"), Destination: DocDir + "/README.md", FileInfo: fi(0o644)},
		{Source: src("config.hcl.example"), Destination: DocDir + "/config.hcl.example", FileInfo: fi(0o644)},
		{Source: src("packaging/notify-reload.conf"), Destination: DocDir + "/examples/notify-reload.conf", FileInfo: fi(0o644)},
	}
	if format == "rpm" {
		for _, c := range contents {
			if filepath.Dir(c.Destination) == DocDir || filepath.Dir(filepath.Dir(c.Destination)) == DocDir {
				c.Type = files.TypeRPMDoc
			}
		}
	}
	info := &nfpm.Info{
		Name:          "gssocks",
		Arch:          spec.Arch,
		Platform:      "linux",
		Version:       spec.Version,
		VersionSchema: "none", // the version is given whole; no semver parsing
		Release:       "1",
		Section:       "net",
		Priority:      "optional",
		Maintainer:    "gssocks developers <gssocks@localhost>",
		Description: "SOCKS5 gateway with Kerberos GSS-API authentication\n" +
			"gssocks is a SOCKS5 proxy (RFC 1928) whose clients authenticate with\n" +
			"Kerberos V5 through GSS-API (RFC 1961), with per-message integrity or\n" +
			"confidentiality, and rules on principal, AD group, source, destination,\n" +
			"port, command and protection level.",
		MTime: mtime,
		Overridables: nfpm.Overridables{
			Contents: contents,
			Umask:    0o022,
			Scripts: nfpm.Scripts{
				PostInstall: src("packaging/scripts/postinstall.sh"),
				PreRemove:   src("packaging/scripts/preremove.sh"),
				PostRemove:  src("packaging/scripts/postremove.sh"),
			},
		},
	}
	if format == "rpm" {
		info.Depends = []string{"shadow-utils"} // useradd in postinstall
		info.RPM.Group = "System Environment/Daemons"
		info.RPM.BuildHost = "localhost" // not the build machine's name: reproducible
	}
	return info, nil
}

// WritePackage writes the package of the given format for info to w and
// returns its conventional file name (gssocks_1.2.0_amd64.deb,
// gssocks-1.2.0-1.x86_64.rpm).
func WritePackage(format string, info *nfpm.Info, w io.Writer) (string, error) {
	p, err := packager(format)
	if err != nil {
		return "", err
	}
	if err := nfpm.PrepareForPackager(info, format); err != nil {
		return "", fmt.Errorf("packaging: %s: %w", format, err)
	}
	name := p.ConventionalFileName(info)
	if err := p.Package(info, w); err != nil {
		return "", fmt.Errorf("packaging: %s: %w", format, err)
	}
	return name, nil
}

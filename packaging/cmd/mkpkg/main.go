// Command mkpkg builds the gssocks release artefacts into a directory:
// the static binary, the .deb and .rpm packages and the OCI image archive.
//
//	go run ./cmd/mkpkg -root .. -out ../dist                  # deb and rpm
//	go run ./cmd/mkpkg -root .. -out ../dist -formats image   # gssocks-image.tar
//
// The version is the git tag at HEAD (v1.2.0 → 1.2.0) or a snapshot
// version (0.0.0~git<commit time>.<hash>), unless -version is given.
// SOURCE_DATE_EPOCH, if set, is the time stamped on files; else the
// commit time.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/gssocks/gssocks/packaging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mkpkg", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", "..", "root of the gssocks repository")
	out := fs.String("out", "../dist", "output directory")
	version := fs.String("version", "", "package version (default: from git)")
	arch := fs.String("arch", runtime.GOARCH, "GOARCH to build for")
	formats := fs.String("formats", "deb,rpm", "comma-separated: deb, rpm, image")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := build(ctx, *root, *out, *version, *arch, strings.Split(*formats, ","), stdout); err != nil {
		fmt.Fprintf(stderr, "mkpkg: %v\n", err)
		return 1
	}
	return 0
}

func build(ctx context.Context, root, out, version, arch string, formats []string, stdout io.Writer) error {
	rev, err := packaging.GitRevision(ctx, root)
	if err != nil {
		return err
	}
	if version == "" {
		version = rev.Version()
	}
	mtime, err := sourceDate(rev)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	bin := filepath.Join(out, "gssocks-linux-"+arch)
	if err := packaging.BuildBinary(ctx, root, bin, version, arch); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s (version %s)\n", bin, version)
	for _, f := range formats {
		switch f = strings.TrimSpace(f); f {
		case "image":
			img, err := packaging.BuildImage(packaging.ImageSpec{
				Binary:   bin,
				Config:   filepath.Join(root, "packaging", "image-config.hcl"),
				Version:  version,
				Revision: rev.Commit,
				Arch:     arch,
				Created:  mtime,
			})
			if err != nil {
				return err
			}
			dst := filepath.Join(out, "gssocks-image.tar")
			ref := "gssocks:" + packaging.ImageTag(version)
			if err := packaging.WriteOCIArchive(img, ref, dst); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s (%s)\n", dst, ref)
		default:
			info, err := packaging.PackageInfo(packaging.PackageSpec{
				Root: root, Binary: bin, Version: version, Arch: arch, MTime: mtime,
			}, f)
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			name, err := packaging.WritePackage(f, info, &buf)
			if err != nil {
				return err
			}
			dst := filepath.Join(out, name)
			if err := os.WriteFile(dst, buf.Bytes(), 0o644); err != nil {
				return err
			}
			fmt.Fprintln(stdout, dst)
		}
	}
	return nil
}

// sourceDate is the time stamped on packaged files: SOURCE_DATE_EPOCH
// (reproducible-builds.org), else the commit time, else the epoch.
func sourceDate(rev packaging.Revision) (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	return rev.Time, nil
}

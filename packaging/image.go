package packaging

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's non-root identity: 65532 is the uid/gid distroless calls
// "nonroot", free of clashes with system and login users on most hosts
// (it matters for files mounted from the host).
const (
	ImageUID  = 65532
	ImageUser = "65532:65532"
	// ImageKeytab is where the image expects the keytab to be mounted
	// ($KRB5_KTNAME in the image's environment).
	ImageKeytab = "/etc/gssocks/gssocks.keytab"
)

// ImageEntrypoint is the image's entrypoint.
func ImageEntrypoint() []string {
	return []string{BinaryPath, "serve", "--config", ConfigPath}
}

// ImageSpec is one build of the container image.
type ImageSpec struct {
	Binary   string    // the static gssocks binary (BuildBinary), for Arch
	Config   string    // the configuration installed as /etc/gssocks/config.hcl
	Version  string    // org.opencontainers.image.version
	Revision string    // org.opencontainers.image.revision (a commit); may be ""
	Arch     string    // GOARCH
	Created  time.Time // image and file times; zero: the Unix epoch (reproducible)
}

// tarEntry is one file or directory of the image's layer.
type tarEntry struct {
	name     string
	mode     int64 // permission bits, plus setuid/setgid/sticky
	uid, gid int
	body     []byte // nil for a directory
}

// BuildImage builds the gateway image FROM scratch: one layer with the
// binary, the configuration (readable by the image user through its
// group), /etc/passwd and /etc/group naming uid and gid 65532 "gssocks",
// /var/lib/gssocks and /var/log/gssocks owned by it, and /tmp. It runs as
// 65532:65532, exposes 1080/tcp and carries org.opencontainers.image.*
// labels. The keytab is not in the image: mount it at ImageKeytab.
func BuildImage(spec ImageSpec) (v1.Image, error) {
	if err := CheckVersion(spec.Version); err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(spec.Binary)
	if err != nil {
		return nil, fmt.Errorf("packaging: image binary: %w", err)
	}
	conf, err := os.ReadFile(spec.Config)
	if err != nil {
		return nil, fmt.Errorf("packaging: image configuration: %w", err)
	}
	created := spec.Created
	if created.IsZero() {
		created = time.Unix(0, 0).UTC()
	}
	layerTar, err := imageLayer(created, []tarEntry{
		{name: "etc/", mode: 0o755},
		{name: "etc/passwd", mode: 0o644, body: []byte("root:x:0:0:root:/root:/sbin/nologin\n" +
			"gssocks:x:65532:65532:gssocks:/var/lib/gssocks:/sbin/nologin\n")},
		{name: "etc/group", mode: 0o644, body: []byte("root:x:0:\ngssocks:x:65532:\n")},
		{name: "etc/gssocks/", mode: 0o750, gid: ImageUID},
		{name: "etc/gssocks/config.hcl", mode: 0o640, gid: ImageUID, body: conf},
		{name: "tmp/", mode: 0o1777},
		{name: "usr/", mode: 0o755},
		{name: "usr/bin/", mode: 0o755},
		{name: "usr/bin/gssocks", mode: 0o755, body: bin},
		{name: "var/", mode: 0o755},
		{name: "var/lib/", mode: 0o755},
		{name: "var/lib/gssocks/", mode: 0o750, uid: ImageUID, gid: ImageUID},
		{name: "var/log/", mode: 0o755},
		{name: "var/log/gssocks/", mode: 0o750, uid: ImageUID, gid: ImageUID},
	})
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("packaging: image layer: %w", err)
	}

	labels := map[string]string{
		"org.opencontainers.image.title":       "gssocks",
		"org.opencontainers.image.description": "SOCKS5 gateway with Kerberos GSS-API authentication (RFC 1928, RFC 1961)",
		"org.opencontainers.image.version":     spec.Version,
		"org.opencontainers.image.created":     created.Format(time.RFC3339),
	}
	if spec.Revision != "" {
		labels["org.opencontainers.image.revision"] = spec.Revision
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: spec.Arch,
		OS:           "linux",
		Created:      v1.Time{Time: created},
		Config: v1.Config{
			User:         ImageUser,
			Entrypoint:   ImageEntrypoint(),
			Env:          []string{"PATH=/usr/bin", "KRB5_KTNAME=" + ImageKeytab},
			WorkingDir:   StateDir,
			ExposedPorts: map[string]struct{}{"1080/tcp": {}},
			Labels:       labels,
			StopSignal:   "SIGTERM",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("packaging: image config: %w", err)
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "gssocks packaging/cmd/mkpkg (FROM scratch)",
			Comment:   "gssocks " + spec.Version,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("packaging: image: %w", err)
	}
	return mutate.Annotations(img, labels).(v1.Image), nil
}

func imageLayer(mtime time.Time, entries []tarEntry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.gid, ModTime: mtime,
			Typeflag: tar.TypeReg, Size: int64(len(e.body)), Format: tar.FormatPAX,
		}
		if strings.HasSuffix(e.name, "/") {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("packaging: image layer %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, fmt.Errorf("packaging: image layer %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("packaging: image layer: %w", err)
	}
	return buf.Bytes(), nil
}

// ImageTag is the tag of a version: the characters a tag may not hold
// (~ and + of snapshot versions) become '-'.
func ImageTag(version string) string {
	return strings.NewReplacer("~", "-", "+", "-").Replace(version)
}

// WriteOCIArchive writes img as an OCI image layout in a tar file (what
// `podman load`, `skopeo copy oci-archive:...` and containerd's
// `ctr image import` read), naming it ref (org.opencontainers.image.ref.name,
// e.g. "gssocks:1.2.0"). The archive is written whole to a temporary file
// first and renamed, so a failed build leaves no half archive.
func WriteOCIArchive(img v1.Image, ref, dst string) error {
	dir, err := os.MkdirTemp("", "gssocks-oci-")
	if err != nil {
		return fmt.Errorf("packaging: %w", err)
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("packaging: OCI layout: %w", err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": ref,
	})); err != nil {
		return fmt.Errorf("packaging: OCI layout: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".gssocks-image-*.tar")
	if err != nil {
		return fmt.Errorf("packaging: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename: no such file
	if err := tarDir(tmp, dir); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("packaging: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("packaging: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("packaging: %w", err)
	}
	return nil
}

// tarDir writes the regular files and directories under dir, in name
// order, with fixed owners and times.
func tarDir(w io.Writer, dir string) error {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("packaging: %w", err)
	}
	sort.Strings(names)
	tw := tar.NewWriter(w)
	for _, p := range names {
		fi, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("packaging: %w", err)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return fmt.Errorf("packaging: %w", err)
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		switch {
		case fi.IsDir():
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, h.Name+"/", 0o755
		case fi.Mode().IsRegular():
			h.Typeflag, h.Size = tar.TypeReg, fi.Size()
		default:
			return fmt.Errorf("packaging: %s in the OCI layout is neither file nor directory", rel)
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("packaging: %w", err)
		}
		if h.Typeflag == tar.TypeReg {
			f, err := os.Open(p)
			if err != nil {
				return fmt.Errorf("packaging: %w", err)
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("packaging: %w", err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("packaging: %w", err)
	}
	return nil
}

// ErrBadArchive is returned by ReadOCIArchive for an archive that is not
// a single-image OCI layout.
var ErrBadArchive = errors.New("packaging: not an OCI image archive")

// maxArchiveBytes bounds what ReadOCIArchive unpacks.
const maxArchiveBytes = 1 << 30

// ReadOCIArchive unpacks an archive written by WriteOCIArchive into dir
// (which must be empty; the image's blobs are read from there, so keep it
// while the image is used) and returns its single image and the image's
// ref name. Entries escaping dir, links and more than 1 GiB are refused.
func ReadOCIArchive(src, dir string) (v1.Image, string, error) {
	f, err := os.Open(src)
	if err != nil {
		return nil, "", fmt.Errorf("packaging: %w", err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, "", fmt.Errorf("%w: %v", ErrBadArchive, err)
		}
		name := path.Clean(h.Name)
		if !fs.ValidPath(name) {
			return nil, "", fmt.Errorf("%w: entry name %q", ErrBadArchive, h.Name)
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return nil, "", fmt.Errorf("packaging: %w", err)
			}
		case tar.TypeReg:
			total += h.Size
			if total > maxArchiveBytes {
				return nil, "", fmt.Errorf("%w: more than %d bytes", ErrBadArchive, maxArchiveBytes)
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return nil, "", fmt.Errorf("packaging: %w", err)
			}
			out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return nil, "", fmt.Errorf("packaging: %w", err)
			}
			_, err = io.Copy(out, io.LimitReader(tr, h.Size))
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, "", fmt.Errorf("packaging: %w", err)
			}
		default:
			return nil, "", fmt.Errorf("%w: entry %q of type %q", ErrBadArchive, h.Name, h.Typeflag)
		}
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrBadArchive, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrBadArchive, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrBadArchive, err)
	}
	if len(im.Manifests) != 1 {
		return nil, "", fmt.Errorf("%w: %d manifests, want 1", ErrBadArchive, len(im.Manifests))
	}
	d := im.Manifests[0]
	img, err := p.Image(d.Digest)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrBadArchive, err)
	}
	return img, d.Annotations["org.opencontainers.image.ref.name"], nil
}

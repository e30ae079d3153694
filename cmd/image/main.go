// Command image builds the userapi container image without a container
// daemon: a static binary on an empty base, with CA certificates and an
// unprivileged user, written as an OCI image layout in a tar file. The same
// sources give the same image, byte for byte: no timestamps, no build ids.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"sigs.k8s.io/yaml"

	"userapi"
)

// The unprivileged user the service runs as, as in distroless images.
const (
	uid      = 65532
	userName = "userapi"
)

// Ports the image exposes: the API and, when USERAPI_METRICS_ADDR opens it
// to the pod, the metrics listener.
var ports = []string{"8080/tcp", "9090/tcp"}

// epoch is every timestamp in the image, so that builds are reproducible.
var epoch = time.Unix(0, 0).UTC()

// caFile is where Go (and most software) looks for CA certificates.
const caFile = "etc/ssl/certs/ca-certificates.crt"

func main() {
	out := flag.String("out", "bin/userapi-image.tar", "where to write the OCI image layout, as a tar file")
	arch := flag.String("arch", runtime.GOARCH, "the CPU architecture to build for")
	ca := flag.String("ca", "/"+caFile, "the CA certificate bundle to put in the image")
	source := flag.String("source", gitOrigin(), "the repository, for the org.opencontainers.image.source label")
	flag.Parse()
	digest, err := build(options{out: *out, arch: *arch, ca: *ca, source: *source})
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	fmt.Printf("%s %s\n", *out, digest)
}

type options struct {
	out    string // the tar file to write
	arch   string // GOARCH
	ca     string // CA bundle on this machine
	source string // the repository's URL; "" for no source label
}

// gitOrigin is the URL of the checkout's origin, or "" when it has none.
func gitOrigin() string {
	out, err := exec.Command("git", "remote", "get-url", "origin").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// build compiles userapi, makes the image and writes it to o.out. It
// returns the image's digest.
func build(o options) (v1.Hash, error) {
	tmp, err := os.MkdirTemp("", "userapi-image-")
	if err != nil {
		return v1.Hash{}, err
	}
	defer os.RemoveAll(tmp)

	bin := filepath.Join(tmp, "userapi")
	if err := compile(bin, o.arch); err != nil {
		return v1.Hash{}, err
	}
	files, err := rootfs(bin, o.ca)
	if err != nil {
		return v1.Hash{}, err
	}
	img, err := image(files, o.arch, o.source)
	if err != nil {
		return v1.Hash{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	dir := filepath.Join(tmp, "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": version(),
	})); err != nil {
		return v1.Hash{}, err
	}
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return v1.Hash{}, err
	}
	return digest, tarDir(dir, o.out)
}

// compile builds a static binary whose bytes depend only on the sources and
// the Go version: no cgo, no paths of this machine, no build id.
func compile(out, arch string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", out, "userapi/cmd/userapi")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, b)
	}
	return nil
}

// file is one entry of the image's only layer.
type file struct {
	name string
	mode int64
	body []byte // nil for a directory
}

// rootfs is the whole filesystem: the binary, CA certificates, and the
// user database an unprivileged user needs.
func rootfs(bin, ca string) ([]file, error) {
	binary, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	certs, err := os.ReadFile(ca)
	if err != nil {
		return nil, fmt.Errorf("CA certificates (Debian: apt-get install ca-certificates): %w", err)
	}
	return []file{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, body: fmt.Appendf(nil, "root:x:0:\n%s:x:%d:\n", userName, uid)},
		{name: "etc/passwd", mode: 0o644, body: fmt.Appendf(nil, "root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:/nonexistent:/sbin/nologin\n", userName, uid, uid, userName)},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: caFile, mode: 0o644, body: certs},
		{name: "tmp/", mode: 0o1777},
		{name: "userapi", mode: 0o755, body: binary},
	}, nil
}

// image puts files in one layer on an empty base and describes how to run it.
func image(files []file, arch, source string) (v1.Image, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, ModTime: epoch, Format: tar.FormatPAX, Typeflag: tar.TypeReg, Size: int64(len(f.body))}
		if f.body == nil {
			h.Typeflag = tar.TypeDir
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b.Bytes())), nil
	})
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer, History: v1.History{
		CreatedBy: "cmd/image", Created: v1.Time{Time: epoch},
	}})
	if err != nil {
		return nil, err
	}
	exposed := map[string]struct{}{}
	for _, p := range ports {
		exposed[p] = struct{}{}
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", arch
	cfg.Created = v1.Time{Time: epoch}
	cfg.Config = v1.Config{
		User:         fmt.Sprintf("%d:%d", uid, uid),
		Entrypoint:   []string{"/userapi", "serve"},
		ExposedPorts: exposed,
		WorkingDir:   "/",
		Labels: map[string]string{
			"org.opencontainers.image.title":   "userapi",
			"org.opencontainers.image.version": version(),
		},
	}
	if source != "" {
		cfg.Config.Labels["org.opencontainers.image.source"] = source
	}
	return mutate.ConfigFile(img, cfg)
}

// version is the API's version, from openapi.yaml.
func version() string {
	var spec struct {
		Info struct{ Version string }
	}
	if err := yaml.Unmarshal(userapi.OpenAPI, &spec); err != nil || spec.Info.Version == "" {
		panic(fmt.Sprintf("openapi.yaml has no info.version: %v", err))
	}
	return spec.Info.Version
}

// tarDir writes the files under dir to a tar file at out, in name order and
// with fixed times and owners, so that equal directories give equal files.
func tarDir(dir, out string) error {
	var names []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		names = append(names, path)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(names)
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	for _, path := range names {
		info, err := os.Lstat(path)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(strings.TrimPrefix(path, dir+string(filepath.Separator)))
		h := &tar.Header{Name: name, Mode: 0o644, ModTime: epoch, Format: tar.FormatPAX, Typeflag: tar.TypeReg, Size: info.Size()}
		if info.IsDir() {
			h.Name, h.Mode, h.Typeflag, h.Size = name+"/", 0o755, tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !info.IsDir() {
			body, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if _, err := tw.Write(body); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"userapi/internal/freeport"
	"userapi/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// Two builds give the same image; unpacked, it runs as a non-root user, as
// its config says, and the binary in it serves /readyz.
func TestImage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first, second := filepath.Join(dir, "first.tar"), filepath.Join(dir, "second.tar")
	d1, err := build(options{out: first, arch: "amd64", ca: "/" + caFile, source: "https://example.com/userapi.git"})
	if err != nil {
		t.Fatal(err)
	}
	// The second build in a process of its own, as `make image` runs it: a
	// clock read once per process must not look reproducible.
	out, err := exec.Command("go", "run", "userapi/cmd/image", "-out", second, "-arch", "amd64", "-source", "https://example.com/userapi.git").Output()
	if err != nil {
		t.Fatalf("go run userapi/cmd/image: %v", err)
	}
	_, d2, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	t.Logf("digests: %s, %s", d1, d2)
	if d1.String() != d2 {
		t.Errorf("two builds gave %s and %s, want the same digest", d1, d2)
	}
	b1, _ := os.ReadFile(first)
	b2, _ := os.ReadFile(second)
	if !bytes.Equal(b1, b2) {
		t.Errorf("two builds gave different tar files")
	}

	// The OCI layout, as a registry client would read it.
	oci := filepath.Join(dir, "oci")
	untar(t, bytes.NewReader(b1), oci)
	index, err := layout.ImageIndexFromPath(oci)
	if err != nil {
		t.Fatal(err)
	}
	img, err := index.Image(d1)
	if err != nil {
		t.Fatalf("layout has no image %s: %v", d1, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if want := []string{"/userapi", "serve"}; !slices.Equal(c.Entrypoint, want) {
		t.Errorf("Entrypoint = %q, want %q", c.Entrypoint, want)
	}
	uidText, _, _ := strings.Cut(c.User, ":")
	if uid, err := strconv.Atoi(uidText); err != nil || uid == 0 {
		t.Errorf("User = %q, want a numeric non-root user (runAsNonRoot needs a number)", c.User)
	}
	for _, p := range []string{"8080/tcp", "9090/tcp"} {
		if _, ok := c.ExposedPorts[p]; !ok {
			t.Errorf("ExposedPorts = %v, want %s", c.ExposedPorts, p)
		}
	}
	if got := c.Labels["org.opencontainers.image.version"]; got != version() || got == "" {
		t.Errorf("version label = %q, want %q (openapi.yaml)", got, version())
	}
	if got := c.Labels["org.opencontainers.image.source"]; got != "https://example.com/userapi.git" {
		t.Errorf("source label = %q", got)
	}

	// The filesystem a container would get.
	root := filepath.Join(dir, "root")
	rc := mutate.Extract(img)
	untar(t, rc, root)
	rc.Close()
	passwd, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(passwd), ":"+uidText+":") {
		t.Errorf("/etc/passwd has no user %s:\n%s", uidText, passwd)
	}
	if fi, err := os.Stat(filepath.Join(root, caFile)); err != nil || fi.Size() == 0 {
		t.Errorf("no CA certificates at /%s: %v", caFile, err)
	}

	addr := freeport.Addr(t)
	cmd := exec.Command(filepath.Join(root, "userapi"), "serve")
	cmd.Env = []string{ // nothing of the host's environment
		"USERAPI_ADDR=" + addr, "DATABASE_URL=" + storetest.NewDB(t), "REDIS_URL=off", "USERAPI_METRICS_ADDR=off",
		"USERAPI_DB_MIN_CONNS=1", "USERAPI_DB_MAX_CONNS=2", "USERAPI_DRAIN_DELAY=0s", "SSL_CERT_FILE=" + filepath.Join(root, caFile),
	}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the binary from the image never answered 200 on /readyz (last: %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// untar writes the regular files and directories of a tar stream under dir.
func untar(t *testing.T, r io.Reader, dir string) {
	t.Helper()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(path, dir) {
			t.Fatalf("tar entry %q leaves the directory", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(path, 0o755)
		case tar.TypeReg:
			if err = os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
				var body []byte
				if body, err = io.ReadAll(tr); err == nil {
					err = os.WriteFile(path, body, os.FileMode(h.Mode)&0o777)
				}
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

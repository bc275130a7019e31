package install

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// No container engine runs here, so the Dockerfile is checked for what
// makes its build work and its image safe: it copies every directory the
// binary is built from, .dockerignore lets them through, the binary is
// static (no libc on distroless/static), and the image runs as non-root.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	dockerfile := string(b)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^FROM .*golang:1\.26\S* AS builder$`),
		regexp.MustCompile(`CGO_ENABLED=0`),
		regexp.MustCompile(`(?m)^FROM gcr\.io/distroless/static\S*:nonroot$`),
		regexp.MustCompile(`(?m)^USER 65532:65532$`),
		regexp.MustCompile(`(?m)^ENTRYPOINT \["/apikey-operator"\]$`),
	} {
		if !want.MatchString(dockerfile) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}

	// What the build stage copies into /src.
	var copied []string
	for _, m := range regexp.MustCompile(`(?m)^COPY (?:--\S+ )*(.+) \S+$`).FindAllStringSubmatch(dockerfile, -1) {
		if strings.Contains(m[0], "--from=") {
			continue
		}
		for _, src := range strings.Fields(m[1]) {
			copied = append(copied, strings.TrimSuffix(src, "/"))
		}
	}
	// Every file the build reads: the main package's non-standard
	// dependencies within this module, with their Go and embedded files.
	cmd := exec.Command("go", "list", "-deps", "-f", `{{if .Module}}{{if .Module.Main}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}{{end}}{{end}}`, ".")
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	ignore := dockerignore(t)
	needed := []string{"go.mod", "go.sum"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		rel, err := filepath.Rel(root, f[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range f[1:] {
			needed = append(needed, filepath.ToSlash(filepath.Join(rel, file)))
		}
	}
	for _, file := range needed {
		if !slices.ContainsFunc(copied, func(c string) bool { return file == c || strings.HasPrefix(file, c+"/") }) {
			t.Errorf("the build needs %s, which no COPY of the Dockerfile copies (%v)", file, copied)
		}
		if !ignore(file) {
			t.Errorf("the build needs %s, which .dockerignore leaves out of the context", file)
		}
	}

	// Static: built as the Dockerfile builds it, it asks for no dynamic
	// loader.
	f, err := elf.Open(operatorBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary is dynamically linked (program header %v)", p.Type)
		}
	}
}

// dockerignore reports whether .dockerignore lets a path into the build
// context. It understands what this repository's file uses: "*", "!dir/",
// "!file" and "**/" patterns, last match wins.
func dockerignore(t *testing.T) func(string) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	type rule struct {
		pattern string
		include bool
	}
	var rules []rule
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		r := rule{pattern: l}
		if strings.HasPrefix(l, "!") {
			r = rule{pattern: strings.TrimPrefix(l, "!"), include: true}
		}
		rules = append(rules, r)
	}
	return func(path string) bool {
		in := true
		for _, r := range rules {
			p := strings.TrimSuffix(r.pattern, "/")
			var match bool
			switch {
			case p == "*":
				match = true
			case strings.HasPrefix(p, "**/"):
				rest := strings.TrimPrefix(p, "**/")
				for _, part := range strings.Split(path, "/") {
					if ok, _ := filepath.Match(rest, part); ok {
						match = true
					}
				}
			default:
				match = path == p || strings.HasPrefix(path, p+"/")
			}
			if match {
				in = r.include
			}
		}
		return in
	}
}

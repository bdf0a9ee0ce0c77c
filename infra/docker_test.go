package infra

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// dockerfile is ../Dockerfile with continuation lines joined.
func dockerfile(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	cur := ""
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "#") && cur == "" {
			continue
		}
		if s, ok := strings.CutSuffix(l, "\\"); ok {
			cur += s + " "
			continue
		}
		cur += l
		if strings.TrimSpace(cur) != "" {
			lines = append(lines, strings.TrimSpace(cur))
		}
		cur = ""
	}
	return lines
}

// shellWords splits a command line like sh would (quotes, no expansion).
func shellWords(s string) []string {
	var words []string
	var w strings.Builder
	in, quote := false, rune(0)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		default:
			w.WriteRune(r)
			in = true
		}
	}
	if in {
		words = append(words, w.String())
	}
	return words
}

type goBuild struct {
	env  []string // NAME=value, as written
	args []string // after "go build"
}

// buildLine finds the Dockerfile's `go build` and its environment.
func buildLine(t *testing.T, lines []string) goBuild {
	t.Helper()
	for _, l := range lines {
		if !strings.HasPrefix(l, "RUN ") || !strings.Contains(l, "go build") {
			continue
		}
		words := shellWords(strings.TrimPrefix(l, "RUN "))
		var b goBuild
		i := 0
		for ; i < len(words) && strings.HasPrefix(words[i], "--mount="); i++ {
		}
		for ; i < len(words) && strings.Contains(words[i], "=") && !strings.HasPrefix(words[i], "-"); i++ {
			b.env = append(b.env, words[i])
		}
		if i+1 >= len(words) || words[i] != "go" || words[i+1] != "build" {
			t.Fatalf("Dockerfile: cannot read the go build line: %q", l)
		}
		b.args = words[i+2:]
		return b
	}
	t.Fatal("Dockerfile: no RUN ... go build line")
	return goBuild{}
}

const testVersion = "v0.0.0-infratest"

// expand resolves the Dockerfile build args the build line uses.
func expand(s string) string {
	return os.Expand(s, func(k string) string {
		switch k {
		case "VERSION":
			return testVersion
		case "TARGETOS":
			return runtime.GOOS
		case "TARGETARCH":
			return runtime.GOARCH
		}
		return "${" + k + "}"
	})
}

func TestDockerfileShape(t *testing.T) {
	lines := dockerfile(t)
	var froms []string
	for _, l := range lines {
		if strings.HasPrefix(l, "FROM ") {
			froms = append(froms, l)
		}
	}
	if len(froms) != 2 || !strings.Contains(froms[0], "golang:1.26") || !strings.HasSuffix(froms[0], " AS build") {
		t.Errorf("want a golang:1.26 builder stage, got %q", froms)
	}
	if len(froms) == 0 || froms[len(froms)-1] != "FROM gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("final stage %q, want gcr.io/distroless/static-debian12:nonroot", froms)
	}
	final := lines[slices.Index(lines, froms[len(froms)-1]):]
	for _, want := range []string{"USER nonroot:nonroot", `ENTRYPOINT ["/iamjit"]`, `CMD ["run"]`, "COPY --from=build /out/iamjit /iamjit"} {
		if !slices.Contains(final, want) {
			t.Errorf("final stage lacks %q", want)
		}
	}
	b := buildLine(t, lines)
	if !slices.Contains(b.env, "CGO_ENABLED=0") {
		t.Errorf("go build env %q lacks CGO_ENABLED=0", b.env)
	}
	if !slices.Contains(b.args, "-trimpath") {
		t.Errorf("go build %q lacks -trimpath", b.args)
	}
	ld := ""
	for _, a := range b.args {
		if v, ok := strings.CutPrefix(a, "-ldflags="); ok {
			ld = v
		}
	}
	for _, f := range []string{"-s", "-w", "-X", "main.version=${VERSION}"} {
		if !slices.Contains(strings.Fields(ld), f) {
			t.Errorf("-ldflags %q lacks %s", ld, f)
		}
	}
	if i := slices.Index(b.args, "-o"); i < 0 || i+1 >= len(b.args) || b.args[i+1] != "/out/iamjit" || b.args[len(b.args)-1] != "." {
		t.Errorf("go build %q: want -o /out/iamjit .", b.args)
	}

	ignore, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", "**/.terraform", "**/*.tfstate", "**/*.tfvars", "*.test"} {
		if !slices.Contains(strings.Split(string(ignore), "\n"), want) {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
}

// TestDockerBuildIsStatic runs the Dockerfile's go build (same environment,
// same flags) on the module root and checks the binary: static, and
// `--version` prints the version -ldflags set.
func TestDockerBuildIsStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the whole binary")
	}
	b := buildLine(t, dockerfile(t))
	out := filepath.Join(t.TempDir(), "iamjit")
	args := []string{"build"}
	for i := 0; i < len(b.args); i++ {
		switch {
		case b.args[i] == "-o":
			args = append(args, "-o", out)
			i++
		case i == len(b.args)-1:
			args = append(args, b.args[i]) // the package: the module root
		default:
			args = append(args, expand(b.args[i]))
		}
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = ".."
	cmd.Env = os.Environ()
	for _, e := range b.env {
		cmd.Env = append(cmd.Env, expand(e))
	}
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s (env %q): %v\n%s", cmd, b.env, err, o)
	}

	if runtime.GOOS == "linux" {
		f, err := elf.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("binary has a %v program header: not statically linked", p.Type)
			}
		}
		if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
			t.Errorf("binary needs shared libraries %q (%v)", libs, err)
		}
		if f.Section(".dynamic") != nil || f.Section(".interp") != nil {
			t.Error("binary has a .dynamic or .interp section")
		}
	} else {
		t.Logf("static-link check skipped on %s (ELF only)", runtime.GOOS)
	}

	var stdout, stderr bytes.Buffer
	run := exec.Command(out, "--version")
	run.Stdout, run.Stderr = &stdout, &stderr
	if err := run.Run(); err != nil {
		t.Fatalf("iamjit --version: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	v := strings.TrimSpace(stdout.String())
	if v == "" || !strings.Contains(v, testVersion) {
		t.Errorf("iamjit --version printed %q, want the -ldflags version %q", v, testVersion)
	}
}

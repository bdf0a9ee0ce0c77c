package infra

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// pluginMirror is where `terraform init` finds providers offline: a
// filesystem mirror holding hashicorp/aws (IAMJIT_TF_PLUGIN_DIR overrides).
func pluginMirror() string {
	if d := os.Getenv("IAMJIT_TF_PLUGIN_DIR"); d != "" {
		return d
	}
	return "/opt/tf-plugins"
}

// symModules use the symopsio/sym provider, which the mirror does not hold.
var symModules = []string{"modules/sym_runtime", "modules/sym_flow"}

// TestTerraformValidate: `terraform validate`, with providers from the local
// mirror and no network, passes without a warning on environments/prod and
// on every module no environment calls. Validating an environment validates
// every module it calls, and the modules those call, as the calls configure
// them: one validation (one load of the AWS provider's schema, the bulk of
// its time) proves what one a module did. The Sym modules cannot be
// validated here (their provider cannot be installed; checkSymSchema holds
// them to its documented schema): in a copy of the tree they are stand-ins
// with their variables and outputs, and environments/prod configures no sym
// provider, so the rest of it, the member account's provider and modules
// included, is validated as written.
func TestTerraformValidate(t *testing.T) {
	dirs, through := validateDirs(t)
	for _, dir := range slices.Sorted(maps.Keys(through)) {
		if slices.Contains(symModules, dir) {
			t.Logf("%s: a stand-in in %s", dir, through[dir])
		} else {
			t.Logf("%s: validated through %s", dir, through[dir])
		}
	}
	tf, root := validateTree(t, nil)
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			t.Parallel()
			if diags := validate(t, tf, root, dir); len(diags) > 0 {
				t.Errorf("terraform validate %s:\n%s", dir, strings.Join(diags, "\n"))
			}
		})
	}
}

// validateDirs returns the directories TestTerraformValidate validates:
// every environment, and every module (but the Sym modules) that no
// environment calls, directly or through its modules; and, for each module
// an environment calls, the environment that validates it. The Sym modules'
// own calls do not count: they are stand-ins there.
func validateDirs(t *testing.T) (dirs []string, through map[string]string) {
	t.Helper()
	through = map[string]string{}
	var visit func(env, dir string)
	visit = func(env, dir string) {
		if slices.Contains(symModules, dir) {
			return
		}
		m, err := loadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range m.top("module") {
			src, _ := m.str(attr(b, "source"))
			if !strings.HasPrefix(src, "./") && !strings.HasPrefix(src, "../") {
				continue
			}
			child := filepath.ToSlash(filepath.Join(dir, src))
			if _, seen := through[child]; !seen {
				through[child] = env
				visit(env, child)
			}
		}
	}
	for _, dir := range slices.Sorted(maps.Keys(moduleChecks)) {
		if strings.HasPrefix(dir, "environments/") {
			dirs = append(dirs, dir)
			visit(dir, dir)
		}
	}
	for _, dir := range slices.Sorted(maps.Keys(moduleChecks)) {
		if _, called := through[dir]; !called && strings.HasPrefix(dir, "modules/") && !slices.Contains(symModules, dir) {
			dirs = append(dirs, dir)
		}
	}
	return dirs, through
}

// TestTerraformValidateCatches: the same validation of a broken copy
// reports it, in the environment and in the modules it validates through
// it: an argument no variable of the called module declares, an attribute
// the provider's schema does not have.
func TestTerraformValidateCatches(t *testing.T) {
	// An unbroken copy that environments/prod's cases take their init from.
	_, template := validateTree(t, nil)
	var (
		initOnce sync.Once
		initErr  error
	)
	for _, c := range []struct {
		name, file, old, new, want string
	}{
		{"unknown module argument", "modules/member_account/main.tf",
			"  task_role_arn = var.task_role_arn", "  task_role     = var.task_role_arn", `An argument named "task_role" is not expected here`},
		{"unknown resource attribute", "modules/iamjit/accounts.tf",
			"  secret_string = jsonencode({", "  secret_value  = jsonencode({", `An argument named "secret_value" is not expected here`},
		{"provider alias nobody declares", "environments/prod/main.tf",
			"providers = { aws = aws.member }", "providers = { aws = aws.members }", `missing provider provider["registry.terraform.io/hashicorp/aws"].members`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dirs, _ := validateDirs(t)
			tf, root := validateTree(t, map[string][2]string{c.file: {c.old, c.new}})
			// What TestTerraformValidate validates that holds the file.
			dir := "environments/prod"
			if slices.Contains(dirs, filepath.Dir(c.file)) {
				dir = filepath.Dir(c.file)
			}
			if dir == "environments/prod" {
				// One init serves every copy: the edits change neither a
				// module source nor a required provider, and a stale init
				// would fail the validation, never pass it.
				initOnce.Do(func() { initErr = initDir(tf, template, dir) })
				if initErr != nil {
					t.Fatalf("terraform init: %v", initErr)
				}
				if err := copyInit(filepath.Join(template, dir), filepath.Join(root, dir)); err != nil {
					t.Fatal(err)
				}
			}
			diags := validate(t, tf, root, dir)
			if !strings.Contains(strings.Join(diags, "\n"), c.want) {
				t.Errorf("broken %s, validating %s: want a diagnostic containing %q, got %q", c.file, dir, c.want, diags)
			}
		})
	}
}

// validateTree copies modules/ and environments/ into a temporary directory,
// applies edit (path -> old, new), replaces the Sym modules by stand-ins,
// removes the sym provider from environments/prod, and writes a CLI
// configuration that installs providers from the mirror only. It skips the
// test when terraform or the mirror is missing.
func validateTree(t *testing.T, edit map[string][2]string) (tf, root string) {
	t.Helper()
	tf, err := exec.LookPath("terraform")
	if err != nil {
		t.Skip("terraform is not on PATH")
	}
	if _, err := os.Stat(filepath.Join(pluginMirror(), "registry.terraform.io", "hashicorp", "aws")); err != nil {
		t.Skipf("no hashicorp/aws provider in the mirror %s (IAMJIT_TF_PLUGIN_DIR): %v", pluginMirror(), err)
	}
	root = t.TempDir()
	for _, top := range []string{"modules", "environments"} {
		err := filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return os.MkdirAll(filepath.Join(root, path), 0o755)
			}
			if strings.HasPrefix(d.Name(), ".") || strings.HasSuffix(path, ".tfstate") {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if e, ok := edit[path]; ok {
				if !strings.Contains(string(b), e[0]) {
					return fmt.Errorf("edit: %q not found in %s", e[0], path)
				}
				b = []byte(strings.Replace(string(b), e[0], e[1], 1))
				delete(edit, path)
			}
			return os.WriteFile(filepath.Join(root, path), b, 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for path := range edit {
		t.Fatalf("edit: %s does not exist", path)
	}
	for _, dir := range symModules {
		if err := standIn(filepath.Join(root, dir)); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
	}
	if err := withoutSymProvider(filepath.Join(root, "environments/prod/providers.tf")); err != nil {
		t.Fatal(err)
	}
	rc := fmt.Sprintf(`provider_installation {
  filesystem_mirror {
    path    = %q
    include = ["registry.terraform.io/hashicorp/*"]
  }
}
`, pluginMirror())
	if err := os.WriteFile(filepath.Join(root, "terraform.rc"), []byte(rc), 0o644); err != nil {
		t.Fatal(err)
	}
	return tf, root
}

// standIn replaces the module in dir by one with the same variables and
// outputs (each null) and no resource or provider.
func standIn(dir string) error {
	m, err := loadDir(dir)
	if err != nil {
		return err
	}
	var outputs strings.Builder
	for _, o := range m.top("output") {
		fmt.Fprintf(&outputs, "output %q {\n  value = null\n}\n\n", o.Labels[0])
	}
	vars, err := os.ReadFile(filepath.Join(dir, "variables.tf"))
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	for name, b := range map[string][]byte{
		"variables.tf": vars,
		"outputs.tf":   []byte(outputs.String()),
		"versions.tf":  []byte("terraform {\n  required_version = \">= 1.5\"\n}\n"),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// withoutSymProvider removes provider "sym" and required_providers.sym from
// the file at path.
func withoutSymProvider(path string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		return diags
	}
	var cut []hcl.Range
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		switch {
		case b.Type == "provider" && len(b.Labels) == 1 && b.Labels[0] == "sym":
			cut = append(cut, b.Range())
		case b.Type == "terraform":
			for _, rp := range nested(b, "required_providers") {
				if a, ok := rp.Body.Attributes["sym"]; ok {
					cut = append(cut, a.SrcRange)
				}
			}
		}
	}
	if len(cut) != 2 {
		return fmt.Errorf("%s: want one provider \"sym\" and one required_providers.sym, found %d", path, len(cut))
	}
	slices.SortFunc(cut, func(a, b hcl.Range) int { return b.Start.Byte - a.Start.Byte })
	for _, r := range cut { // from the end, so the earlier ranges stay right
		src = append(src[:r.Start.Byte:r.Start.Byte], src[r.End.Byte:]...)
	}
	return os.WriteFile(path, src, 0o644)
}

// tfCommand is terraform with args in root/dir, configured by validateTree.
func tfCommand(tf, root, dir string, args ...string) *exec.Cmd {
	cmd := exec.Command(tf, args...)
	cmd.Dir = filepath.Join(root, dir)
	cmd.Env = append(os.Environ(),
		"TF_CLI_CONFIG_FILE="+filepath.Join(root, "terraform.rc"),
		"TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1", "TF_INPUT=0", "TF_DATA_DIR=.terraform")
	return cmd
}

// initDir runs terraform init in root/dir.
func initDir(tf, root, dir string) error {
	if out, err := tfCommand(tf, root, dir, "init", "-backend=false", "-input=false", "-no-color").CombinedOutput(); err != nil {
		return fmt.Errorf("terraform init: %v\n%s", err, out)
	}
	return nil
}

// copyInit copies what terraform init wrote in dir from (the lock file, the
// module manifest with its relative paths, the provider's link into the
// mirror) into dir to, a copy of the same tree.
func copyInit(from, to string) error {
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if rel != ".terraform" && rel != ".terraform.lock.hcl" && !strings.HasPrefix(rel, ".terraform"+string(filepath.Separator)) {
			if d.IsDir() && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		dst := filepath.Join(to, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, dst)
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
}

// validate runs terraform init (unless copyInit brought one) and validate in root/dir and returns every
// diagnostic (error or warning) as "severity: summary: detail (file:line)".
func validate(t *testing.T, tf, root, dir string) []string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(root, dir, ".terraform", "modules", "modules.json")); err != nil {
		if err := initDir(tf, root, dir); err != nil {
			return []string{err.Error()}
		}
	}
	out, _ := tfCommand(tf, root, dir, "validate", "-json", "-no-color").CombinedOutput()
	var res struct {
		Valid       bool `json:"valid"`
		Diagnostics []struct {
			Severity, Summary, Detail string
			Range                     *struct {
				Filename string
				Start    struct{ Line int }
			}
		}
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return []string{fmt.Sprintf("terraform validate -json: %v\n%s", err, out)}
	}
	var diags []string
	for _, d := range res.Diagnostics {
		at := ""
		if d.Range != nil {
			at = fmt.Sprintf(" (%s:%d)", d.Range.Filename, d.Range.Start.Line)
		}
		diags = append(diags, fmt.Sprintf("%s: %s: %s%s", d.Severity, d.Summary, d.Detail, at))
	}
	if !res.Valid && len(diags) == 0 {
		diags = append(diags, "not valid, without a diagnostic")
	}
	return diags
}

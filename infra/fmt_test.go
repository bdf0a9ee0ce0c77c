package infra

import (
	"os/exec"
	"testing"
)

// TestTerraformFmt: `terraform fmt -check -recursive` passes on infra/.
func TestTerraformFmt(t *testing.T) {
	tf, err := exec.LookPath("terraform")
	if err != nil {
		t.Skip("terraform is not on PATH")
	}
	cmd := exec.Command(tf, "fmt", "-check", "-recursive", "-diff", ".")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("terraform fmt -check -recursive: %v\n%s\nrun: terraform fmt -recursive infra", err, out)
	}
}

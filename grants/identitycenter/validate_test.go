package identitycenter_test

import (
	"testing"

	"github.com/iamjit/iamjit/grants/identitycenter"
)

// TestValidators: AWS's documented forms and moto 5.2.1's (copied from what
// moto answered) pass; near misses fail. The integration test also checks
// the ids a live moto hands out.
func TestValidators(t *testing.T) {
	for _, c := range []struct {
		name  string
		check func(string) bool
		good  []string
		bad   []string
	}{
		{"instance ARN", identitycenter.IsInstanceARN,
			[]string{"arn:aws:sso:::instance/ssoins-722328f0b7b1e6d7", "arn:aws:sso:::instance/ssoins-sc4k1hctivrcegio",
				"arn:aws-us-gov:sso:::instance/ssoins-722328f0b7b1e6d7", "arn:aws:sso:::instance/ins-722328f0b7b1e6d7"},
			[]string{"", "ssoins-722328f0b7b1e6d7", "arn:aws:sso:::instance/ssoins-722328f0b7b1e6d", "arn:aws:iam:::instance/ssoins-722328f0b7b1e6d7",
				"arn:aws:sso:::permissionSet/ssoins-722328f0b7b1e6d7", "arn:aws:sso:::instance/ssoins-722328f0b7b1e6d7/ps-2f1a9e4c6b8d0a35",
				" arn:aws:sso:::instance/ssoins-722328f0b7b1e6d7"}},
		{"permission set ARN", identitycenter.IsPermissionSetARN,
			[]string{"arn:aws:sso:::permissionSet/ssoins-722328f0b7b1e6d7/ps-2f1a9e4c6b8d0a35", // AWS
				"arn:aws:sso:::instance/ssoins-sc4k1hctivrcegio/ps-kue0kzykxsoukhxh"}, // moto 5.2.1
			[]string{"", "arn:aws:sso:::permissionSet/ssoins-722328f0b7b1e6d7", "arn:aws:sso:::permissionSet/ssoins-722328f0b7b1e6d7/ps-2f1a",
				"arn:aws:sso:::group/ssoins-722328f0b7b1e6d7/ps-2f1a9e4c6b8d0a35", "ps-2f1a9e4c6b8d0a35",
				"arn:aws:sso:::permissionSet/ssoins-722328f0b7b1e6d7/ps-2f1a9e4c6b8d0a35x"}},
		{"identity store id", identitycenter.IsIdentityStoreID,
			[]string{"d-9067a1b2c3", "d-8c9vksigwq", "8c2f0a1b-3d4e-5f60-7182-93a4b5c6d7e8"},
			[]string{"", "d-9067a1b2c", "d-9067A1B2C3", "9067a1b2c3", "d-9067a1b2c3 ", "d-9067a1b2c3d"}},
		{"group id", identitycenter.IsGroupID,
			[]string{"906782a1b2-1c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f", "9a25a0e7-aee5-4448-815f-9834a59bc1dd"},
			[]string{"", "admins", "9a25a0e7-aee5-4448-815f-9834a59bc1d", "906782a1b2_1c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f", "d-9067a1b2c3"}},
		{"user id", identitycenter.IsUserID,
			[]string{"906782a1b2-0c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f", "24768530-2df1-430e-b7d5-c2d0093ebf9d"},
			[]string{"", "alice", "alice@example.com", "24768530-2df1-430e-b7d5-c2d0093ebf9dx"}},
	} {
		for _, s := range c.good {
			if !c.check(s) {
				t.Errorf("%s: %q refused", c.name, s)
			}
		}
		for _, s := range c.bad {
			if c.check(s) {
				t.Errorf("%s: %q accepted", c.name, s)
			}
		}
	}
}

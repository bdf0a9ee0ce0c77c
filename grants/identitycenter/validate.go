package identitycenter

import "regexp"

// The validators accept what AWS documents and what moto 5.2.1 writes, so
// that configuration checked at start-up passes against both. Account ids
// are events.IsAccountID (12 digits in AWS and moto alike); it is
// not repeated here so that config stays free to import this package.

// IsInstanceARN reports whether s is an Identity Center instance ARN:
// arn:aws:sso:::instance/ssoins-<16>, the pattern AWS documents for
// InstanceArn. moto's default instance has this form too.
func IsInstanceARN(s string) bool { return instanceARNRE.MatchString(s) }

// IsPermissionSetARN reports whether s is a permission set ARN. AWS writes
// arn:aws:sso:::permissionSet/ssoins-<16>/ps-<16>; moto 5.2.1 writes
// arn:aws:sso:::instance/ssoins-<16>/ps-<16> (quirk: "instance" where AWS
// has "permissionSet"), and both are accepted.
func IsPermissionSetARN(s string) bool { return permissionSetARNRE.MatchString(s) }

// IsIdentityStoreID reports whether s is an Identity Store id. AWS writes
// d- and 10 hexadecimal digits (or a UUID); moto 5.2.1 writes d- and 10
// lower-case letters and digits, such as d-8c9vksigwq (quirk), accepted too.
func IsIdentityStoreID(s string) bool { return identityStoreIDRE.MatchString(s) }

// IsGroupID reports whether s is an Identity Store group id: a UUID,
// optionally after 10 hexadecimal digits and a dash (AWS's pattern; moto
// writes a plain UUID).
func IsGroupID(s string) bool { return resourceIDRE.MatchString(s) }

// IsUserID reports whether s is an Identity Store user id; the same form
// as a group id.
func IsUserID(s string) bool { return resourceIDRE.MatchString(s) }

const (
	partition  = `arn:aws(-[a-z]+)*:sso:::`
	instanceID = `(sso)?ins-[a-zA-Z0-9.-]{16}`
	uuid       = `[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`
)

var (
	instanceARNRE      = regexp.MustCompile(`^` + partition + `instance/` + instanceID + `$`)
	permissionSetARNRE = regexp.MustCompile(`^` + partition + `(permissionSet|instance)/` + instanceID + `/ps-[a-zA-Z0-9./-]{16}$`)
	identityStoreIDRE  = regexp.MustCompile(`^(d-[0-9a-z]{10}|` + uuid + `)$`)
	resourceIDRE       = regexp.MustCompile(`^([0-9a-f]{10}-)?` + uuid + `$`)
)

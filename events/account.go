package events

import "strings"

// IsAccountID reports whether s is an AWS account id: exactly twelve digits
// (in AWS and moto alike). The one check: results, targets, configuration
// and session policies all name accounts this way.
func IsAccountID(s string) bool { return len(s) == 12 && strings.Trim(s, "0123456789") == "" }

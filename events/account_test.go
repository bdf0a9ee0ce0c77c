package events_test

import (
	"testing"

	"github.com/iamjit/iamjit/events"
)

func TestIsAccountID(t *testing.T) {
	for s, want := range map[string]bool{
		"123456789012": true, "000000000000": true,
		"": false, "12345678901": false, "1234567890123": false, "12345678901a": false,
		" 23456789012": false, "١٢٣٤٥٦٧٨٩٠١٢": false, // Arabic-Indic digits are not ASCII digits
	} {
		if got := events.IsAccountID(s); got != want {
			t.Errorf("IsAccountID(%q) = %v, want %v", s, got, want)
		}
	}
}

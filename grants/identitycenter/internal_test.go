package identitycenter

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"PT1H": time.Hour, "PT12H": 12 * time.Hour, "PT1H30M": 90 * time.Minute,
		"PT90M": 90 * time.Minute, "PT3600S": time.Hour, "PT2H0M5S": 2*time.Hour + 5*time.Second} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "PT", "1H", "P1D", "PT1.5H", "PT-1H", "pt1h", "PT99999H", "PT0H", "PT25H", "PT9999999999M"} {
		if got, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) = %s, want an error", in, got)
		}
	}
}

package reap_test

import (
	"fmt"
	"strings"
)

func fmtSscan(s string, f *float64) (int, error) {
	s = strings.TrimSpace(s)
	i := strings.Index(s, "s ")
	if i < 0 {
		return 0, fmt.Errorf("no time")
	}
	return fmt.Sscan(s[:i], f)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

package core

import (
	"errors"
	"testing"
	"time"
)

func TestParseIdleTimeout(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		text string
	}{
		{"never", NoIdleTimeout, "never"},
		{"-1", NoIdleTimeout, "never"},
		{"0", DestroyWhenIdle, "0s"},
		{"0s", DestroyWhenIdle, "0s"},
		{"90s", 90 * time.Second, "1m30s"},
		{" 1h ", time.Hour, "1h0m0s"},
	} {
		got, err := ParseIdleTimeout(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseIdleTimeout(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if s := FormatIdleTimeout(got); s != tt.text {
			t.Errorf("FormatIdleTimeout(%v) = %q, want %q", got, s, tt.text)
		}
	}
	for _, bad := range []string{"", "soon", "-5m", "-2", "5"} {
		if _, err := ParseIdleTimeout(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ParseIdleTimeout(%q) = %v, want ErrInvalidArgument", bad, err)
		}
	}
}

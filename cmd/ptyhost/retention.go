package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ptyhost/ptyhost/core"
)

// retention is a flag value: how long ended sessions' records are kept. A
// duration > 0 such as 72h, or a number of days such as 7d; 0, -1, never
// or forever keep them forever (stored as core.KeepForever).
type retention time.Duration

func (r *retention) String() string {
	d := time.Duration(*r)
	switch {
	case d == core.KeepForever:
		return "forever"
	case d%(24*time.Hour) == 0 && d > 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

func (r *retention) Set(v string) error {
	switch v {
	case "0", "-1", "never", "forever":
		*r = retention(core.KeepForever)
		return nil
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err == nil && n > 0 && n <= 100*365 {
			*r = retention(time.Duration(n) * 24 * time.Hour)
			return nil
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return fmt.Errorf("want a duration > 0 such as 72h or 7d, or 0 (or forever) to keep ended sessions forever")
	}
	*r = retention(d)
	return nil
}

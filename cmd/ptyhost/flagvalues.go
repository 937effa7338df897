package main

import (
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// The flag package answers a bad duration or boolean with "parse error";
// serve's duration and boolean flags say what they want instead, as the
// same settings do from a variable or the configuration file
// (checkSetting).

// durationValue is a flag.Value holding a time.Duration.
type durationValue time.Duration

func (d *durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return errNotDuration
	}
	*d = durationValue(v)
	return nil
}

func (d *durationValue) String() string { return time.Duration(*d).String() }
func (d *durationValue) Get() any       { return time.Duration(*d) }

// boolValue is a flag.Value holding a bool, given as -name or -name=VALUE.
type boolValue bool

func (b *boolValue) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return errNotBool
	}
	*b = boolValue(v)
	return nil
}

func (b *boolValue) String() string   { return strconv.FormatBool(bool(*b)) }
func (b *boolValue) Get() any         { return bool(*b) }
func (b *boolValue) IsBoolFlag() bool { return true }

type flagError string

func (e flagError) Error() string { return string(e) }

const (
	errNotDuration = flagError("not a duration; want one such as 90s, 5m or 1h30m")
	errNotBool     = flagError("want true or false")
	errNotWait     = flagError("want a duration of 0 or more, such as 0, 30s or 2m")
)

// waitValue is a flag.Value holding a duration of at least 0: how long a
// client command waits for something.
type waitValue time.Duration

func (d *waitValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return errNotWait
	}
	*d = waitValue(v)
	return nil
}

func (d *waitValue) String() string { return humanDuration(time.Duration(*d)) }
func (d *waitValue) Get() any       { return time.Duration(*d) }

// waitFlag defines a flag of a waitValue on fs and returns where it goes.
func waitFlag(fs *flag.FlagSet, name string, value time.Duration, usage string) *time.Duration {
	p := new(time.Duration)
	*p = value
	fs.Var((*waitValue)(p), name, usage)
	return p
}

// durationFlag defines a duration flag on fs, as fs.DurationVar does.
func durationFlag(fs *flag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var((*durationValue)(p), name, usage)
}

// boolFlag defines a boolean flag on fs, as fs.BoolVar does.
func boolFlag(fs *flag.FlagSet, p *bool, name string, value bool, usage string) {
	*p = value
	fs.Var((*boolValue)(p), name, usage)
}

// falseFlag defines a boolean flag on fs, false by default, as fs.Bool
// does, but whose bad value is refused in words ("want true or false")
// rather than the flag package's "parse error".
func falseFlag(fs *flag.FlagSet, name, usage string) *bool {
	p := new(bool)
	boolFlag(fs, p, name, false, usage)
	return p
}

// logLevel is --log-level's value (PTYHOST_LOG_LEVEL, log_level): slog's
// level names in any case (and its offsets, such as debug-2), with a
// refusal in words that name the levels rather than slog's own.
type logLevel slog.Level

func (l *logLevel) String() string { return strings.ToLower(slog.Level(*l).String()) }

func (l *logLevel) Set(v string) error {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(v)); err != nil {
		return fmt.Errorf("%q: want debug, info, warn or error", v)
	}
	*l = logLevel(lv)
	return nil
}

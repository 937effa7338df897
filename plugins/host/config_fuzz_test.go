package main

import (
	"testing"

	"github.com/ptyhost/ptyhost/shared/sharedtest"
)

// FuzzParseConfig feeds arbitrary environment configs to the HOST
// plugin's decoder. It must never panic; every error wraps
// shared.ErrInvalidConfig (a 400) and says what is wrong; an accepted
// config, encoded again, is accepted as the same config.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		`{"shell":"/bin/sh","env":{"EDITOR":"vi","EMPTY":""}}`,
		`{"shell":"sh"}`,
		`{"env":{}}`,
		`{}`,
		`null`,
		``,
		"  \n\t",
		`{"shell":"/no/such/shell"}`,
		`{"shell":""}`,
		`{"env":{"A=B":"c"}}`,
		`{"env":{"":"c"}}`,
		`{"env":{"A":"b\u0000c"}}`,
		`{"env":{"A\u0000":"b"}}`,
		`{"env":{"A":1}}`,
		`{"env":[]}`,
		`{"shell":1}`,
		`{"bogus":true}`,
		`{"SHELL":"/bin/sh"}`,
		`{"shell":"/bin/sh","shell":"/no/such"}`,
		`{} {}`,
		`{}x`,
		`[]`,
		`"x"`,
		`{"env":`,
		"{\"shell\":\"/bin/\xff\"}",
	} {
		f.Add([]byte(s))
	}
	sharedtest.FuzzConfig(f, parseConfig, nil)
}

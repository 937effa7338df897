package main

import (
	"testing"

	"github.com/ptyhost/ptyhost/shared/sharedtest"
)

// FuzzParseConfig feeds arbitrary environment configs to the DOCKER
// plugin's decoder. It must never panic; every error wraps
// shared.ErrInvalidConfig (a 400) and says what is wrong; an accepted
// config, with its defaults filled in, encodes to a config that is
// accepted as the same.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		`{"image":"debian:12"}`,
		`{"image":"debian:12","user":"1000:1000","env":{"EDITOR":"vi"},"mounts":[{"source":"/srv/cache","target":"/cache","read_only":true}],"workdir_target":"/w","network":"none","memory":"1g","cpus":1.5,"pull":"always","remove":false,"privileged":false,"cap_add":["NET_BIND_SERVICE"],"init":false}`,
		`{"image":"registry.example.com:5000/team/app@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}`,
		`{"container":"dev-box"}`,
		`{"container":"dev-box","shell":"/bin/bash","user":"root","workdir_target":"/src"}`,
		`{"host":"unix:///var/run/docker.sock","image":"alpine"}`,
		`{"host":"tcp://127.0.0.1:2376","image":"alpine"}`,
		`{"host":"http://evil","image":"alpine"}`,
		`{"host":"ftp://x","image":"alpine"}`,
		`{"image":"alpine","memory":1048576}`,
		`{"image":"alpine","memory":"1.5GiB"}`,
		`{"image":"alpine","memory":"99999999t"}`,
		`{"image":"alpine","memory":-1}`,
		`{"image":"alpine","cpus":"0.25"}`,
		`{"image":"alpine","cpus":0.001}`,
		`{"image":"alpine","cpus":1e308}`,
		`{"image":"alpine","cap_add":["NOT A CAP"]}`,
		`{"image":"alpine","mounts":[{"source":"rel","target":"/x"}]}`,
		`{"image":"alpine","mounts":[{"source":"/a","target":"/"}]}`,
		`{"image":"alpine","mounts":[{"source":"/a","target":"/workspace/"}]}`,
		`{"image":"alpine","pull":"sometimes"}`,
		`{"image":"UPPER"}`,
		`{"image":"a","container":"b"}`,
		`{"container":"b","network":"none"}`,
		`{"container":"-b"}`,
		`{}`,
		`null`,
		``,
		`{"image":"alpine"} {}`,
		`{"image":"alpine","bogus":1}`,
		`{"image":"alpine","env":{"A=B":"c"}}`,
		`{"image":"alpine","user":"a:b:c"}`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	sharedtest.FuzzConfig(f, parseConfig, nil)
}

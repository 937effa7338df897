package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/shared/sharedtest"
)

// FuzzParseConfig feeds arbitrary environment configs to the SSH plugin's
// decoder. It must never panic; every error wraps shared.ErrInvalidConfig
// (a 400) and says what is wrong; an accepted config, written back in the
// input form with every default made explicit, is accepted as the same
// config.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		`{"host":"example.com"}`,
		`{"host":"example.com","port":2222,"user":"dev","identity_file":"~/.ssh/id_ed25519","passphrase_env":"KEY_PASS","agent":false,"known_hosts":"/etc/ssh/known","host_key_check":"accept-new","connect_timeout":"5s","keepalive_interval":"0s","keepalive_count":5,"linger":"1m","env":{"LANG":"C.UTF-8"},"shell":"/bin/zsh"}`,
		`{"host":"10.0.0.1","password_env":"SSH_PW","host_key_check":"off"}`,
		`{"host":"::1","jump":"me@bastion:2200"}`,
		`{"host":"db","jump":"[fe80::1]:22"}`,
		`{"host":"db","jump":{"host":"bastion","user":"j","port":22,"identity_file":"/k"}}`,
		`{"host":"db","jump":null}`,
		`{"host":"db","jump":""}`,
		`{"host":"db","jump":"@bastion"}`,
		`{"host":"db","jump":"bastion:0"}`,
		`{"host":"db","jump":"bastion:x"}`,
		`{"host":"db","jump":{"host":"b","password":"hunter2"}}`,
		`{"host":"db","jump":[]}`,
		`{"host":"db","password":"hunter2"}`,
		`{"host":"db","private_key":"-----BEGIN"}`,
		`{"host":"-oProxyCommand=x"}`,
		`{"host":"a b"}`,
		`{"host":"*"}`,
		`{"host":"a,b"}`,
		`{"host":"[::1]"}`,
		`{"host":"fe80::1%eth0"}`,
		`{"host":"db","jump":"[*]:22"}`,
		`{"host":"db","port":70000}`,
		`{"host":"db","user":"a\nb"}`,
		`{"host":"db","identity_file":"relative"}`,
		`{"host":"db","passphrase_env":"P"}`,
		`{"host":"db","password_env":"1BAD"}`,
		`{"host":"db","host_key_check":"maybe"}`,
		`{"host":"db","connect_timeout":"0s"}`,
		`{"host":"db","connect_timeout":"11m"}`,
		`{"host":"db","keepalive_interval":"1ms"}`,
		`{"host":"db","keepalive_count":0}`,
		`{"host":"db","linger":"forever"}`,
		`{"host":"db","max_connections":3}`,
		`{"host":"db","global_known_hosts":""}`,
		`{"host":"db","global_known_hosts":["/a","~/b","/a"]}`,
		`{"host":"db","global_known_hosts":["/a",""]}`,
		`{"host":"db","global_known_hosts":1}`,
		`{"host":"db","global_known_hosts":"/g","jump":{"host":"b","global_known_hosts":[]}}`,
		`{"host":"db","env":{"1X":"y"}}`,
		`{"host":"db","env":{"X":"a\u0000"}}`,
		`{"host":"db","shell":"-sh"}`,
		`{"host":"db","shell":" sh"}`,
		`{"host":"db","bogus":1}`,
		`{"host":"db"} {}`,
		`{}`,
		`null`,
		``,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	sharedtest.FuzzConfig(f, parseConfig, inputForm)
}

// inputForm writes a parsed config back in the form parseConfig reads:
// the target's fields at the top level, durations as strings. It goes by
// the JSON names, so a field added to config and rawConfig alike needs no
// change here.
func inputForm(t testing.TB, cfg *config) []byte {
	t.Helper()
	var parsed map[string]json.RawMessage
	if err := unmarshalJSON(cfg, &parsed); err != nil {
		t.Fatal(err)
	}
	out := map[string]json.RawMessage{}
	if err := json.Unmarshal(parsed["target"], &out); err != nil {
		t.Fatal(err)
	}
	delete(parsed, "target")
	strFields := map[string]bool{}
	rt := reflect.TypeFor[rawConfig]()
	for i := range rt.NumField() {
		if f := rt.Field(i); f.Type.Kind() == reflect.String {
			strFields[strings.Split(f.Tag.Get("json"), ",")[0]] = true
		}
	}
	for k, v := range parsed {
		if strFields[k] && len(v) > 0 && v[0] != '"' { // a time.Duration
			var d time.Duration
			if err := json.Unmarshal(v, &d); err != nil {
				t.Fatalf("%s: %s: %v", k, v, err)
			}
			v, _ = json.Marshal(d.String())
		}
		out[k] = v
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func unmarshalJSON(v any, into any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}

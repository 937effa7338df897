package shared

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// testDuration decodes itself, as a plugin's own field types do.
type testDuration struct{ s string }

func (d *testDuration) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &d.s); err != nil || d.s == "" {
		return errors.New("want a duration such as \"10s\"")
	}
	return nil
}

type testMount struct {
	Source   string `json:"source"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

type testEndpoint struct {
	Host string `json:"host"`
	Port int    `json:"port,omitempty"`
}

type testConfig struct {
	testEndpoint
	Shell   string            `json:"shell,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	Mounts  []testMount       `json:"mounts,omitempty"`
	Jump    *testEndpoint     `json:"jump,omitempty"`
	Timeout *testDuration     `json:"timeout,omitempty"`
	Limits  map[string][]int  `json:"limits,omitempty"`
	Ignored string            `json:"-"`
}

func TestDecodeConfig(t *testing.T) {
	tests := []struct {
		name  string
		raw   string
		path  string // the ConfigError's Path
		err   string // in the message; empty means accepted
		check func(t *testing.T, c testConfig)
	}{
		{name: "empty", raw: "", check: func(t *testing.T, c testConfig) {
			if c.Shell != "default" {
				t.Errorf("shell %q, want the default kept", c.Shell)
			}
		}},
		{name: "null", raw: " null\n", check: func(t *testing.T, c testConfig) {
			if c.Shell != "default" {
				t.Errorf("shell %q, want the default kept", c.Shell)
			}
		}},
		{name: "all fields", raw: `{"host": "h", "port": 2, "shell": "/bin/sh", "env": {"A": "b"},
			"mounts": [{"source": "/s", "read_only": true}], "jump": {"host": "j"}, "timeout": "1s", "limits": {"x": [1]}}`,
			check: func(t *testing.T, c testConfig) {
				if c.Host != "h" || c.Port != 2 || c.Shell != "/bin/sh" || c.Env["A"] != "b" ||
					len(c.Mounts) != 1 || !c.Mounts[0].ReadOnly || c.Jump.Host != "j" || c.Timeout.s != "1s" {
					t.Errorf("decoded %+v", c)
				}
			}},
		{name: "field names fold case", raw: `{"HOST": "h"}`, check: func(t *testing.T, c testConfig) {
			if c.Host != "h" {
				t.Errorf("host %q", c.Host)
			}
		}},
		{name: "unknown field", raw: `{"shel": "/bin/sh"}`, path: "", err: `unknown field "shel"`},
		{name: "unknown field in a list", raw: `{"mounts": [{"source": "/a"}, {"source": "/b", "readonly": true}]}`,
			path: "mounts[1]", err: `mounts[1]: unknown field "readonly"`},
		{name: "unknown field in a pointer", raw: `{"jump": {"hots": "j"}}`, path: "jump", err: `jump: unknown field "hots"`},
		{name: "a field json ignores", raw: `{"Ignored": "x"}`, path: "", err: `unknown field "Ignored"`},
		{name: "wrong type in a map", raw: `{"env": {"A": "a", "FOO": 1}}`, path: "env.FOO",
			err: "env.FOO: cannot unmarshal number into string"},
		{name: "wrong type in a list", raw: `{"mounts": [{}, {}, {"source": 3}]}`, path: "mounts[2].source",
			err: "mounts[2].source: cannot unmarshal number into string"},
		{name: "wrong type in an embedded struct", raw: `{"port": "22"}`, path: "port",
			err: "port: cannot unmarshal string into integer"},
		{name: "wrong type deep", raw: `{"limits": {"x": [1, "2"]}}`, path: "limits.x[1]",
			err: "limits.x[1]: cannot unmarshal string into integer"},
		{name: "a field's own decoder", raw: `{"timeout": 10}`, path: "timeout", err: `timeout: want a duration`},
		{name: "not an object", raw: `["x"]`, path: "", err: "cannot unmarshal array into object"},
		{name: "trailing data", raw: `{"host": "h"} {}`, path: "", err: "trailing data after the JSON object"},
		{name: "not JSON", raw: `{"host": `, path: "", err: "not valid JSON"},
		{name: "bad syntax", raw: `{"host" "h"}`, path: "", err: "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig{Shell: "default"}
			err := DecodeConfig(json.RawMessage(tt.raw), &c)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("DecodeConfig(%s): %v", tt.raw, err)
				}
				tt.check(t, c)
				return
			}
			if err == nil {
				t.Fatalf("DecodeConfig(%s) accepted it: %+v", tt.raw, c)
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %q does not wrap ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.err) {
				t.Errorf("error %q, want it to say %q", err, tt.err)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %q is not a *ConfigError", err)
			}
			if ce.Path != tt.path {
				t.Errorf("path %q, want %q", ce.Path, tt.path)
			}
		})
	}
}

// A v DecodeConfig cannot decode into is the plugin's mistake: refused
// whatever the config, empty included, and not as ErrInvalidConfig, so the
// plugin's own tests (the conformance case bad_config) find it rather than
// the user whose config it blames; a nil v does not panic.
func TestDecodeConfigRefusesWhatIsNoPointer(t *testing.T) {
	for _, tt := range []struct {
		name string
		v    any
	}{
		{"a struct", testConfig{}},
		{"nil", nil},
		{"a nil pointer", (*testConfig)(nil)},
	} {
		for _, raw := range []string{"", "null", "{}", `{"shell": "/bin/sh"}`, `{"shel": "/bin/sh"}`} {
			t.Run(tt.name+"/"+raw, func(t *testing.T) {
				err := DecodeConfig(json.RawMessage(raw), tt.v)
				if err == nil {
					t.Fatalf("DecodeConfig(%s, %T) accepted it", raw, tt.v)
				}
				if errors.Is(err, ErrInvalidConfig) {
					t.Errorf("DecodeConfig(%s, %T): %q wraps ErrInvalidConfig, blaming the config", raw, tt.v, err)
				}
				if !strings.Contains(err.Error(), "non-nil pointer") {
					t.Errorf("DecodeConfig(%s, %T): %q does not say it needs a pointer", raw, tt.v, err)
				}
			})
		}
	}
}

func TestConfigErrorMessage(t *testing.T) {
	for _, tt := range []struct {
		err  *ConfigError
		want string
	}{
		{&ConfigError{Err: errors.New("bad")}, "invalid environment config: bad"},
		{&ConfigError{Path: "env.A", Err: errors.New("bad")}, "invalid environment config: env.A: bad"},
	} {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

package shared

import (
	"slices"
	"strings"
	"testing"
)

func TestCheckEnv(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		err      string // empty: accepted
		portable string // CheckPortableEnv's error; empty: accepted
	}{
		{name: "none", env: nil},
		{name: "plain", env: map[string]string{"EDITOR": "vi", "_X1": ""}},
		{name: "not portable", env: map[string]string{"my-var": "x"},
			portable: `variable name "my-var": use letters, digits and '_'`},
		{name: "leading digit", env: map[string]string{"1X": "x"}, portable: `variable name "1X"`},
		{name: "empty name", env: map[string]string{"": "x"}, err: `bad variable name ""`, portable: `variable name ""`},
		{name: "equals in name", env: map[string]string{"A=B": "c"}, err: `bad variable name "A=B"`, portable: `variable name "A=B"`},
		{name: "NUL in name", env: map[string]string{"A\x00": "c"}, err: `bad variable name "A\x00"`, portable: `variable name "A\x00"`},
		{name: "NUL in value", env: map[string]string{"A": "b\x00c"}, err: "variable A: value contains NUL", portable: "variable A: value contains NUL"},
		{name: "first bad name in order", env: map[string]string{"Z=": "", "B=": "", "M=": ""}, err: `bad variable name "B="`, portable: `variable name "B="`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(fn string, err error, want string) {
				t.Helper()
				switch {
				case want == "" && err != nil:
					t.Errorf("%s: %v, want nil", fn, err)
				case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
					t.Errorf("%s: %v, want an error saying %q", fn, err, want)
				}
			}
			check("CheckEnv", CheckEnv(tt.env), tt.err)
			check("CheckPortableEnv", CheckPortableEnv(tt.env), tt.portable)
		})
	}
}

func TestChildEnv(t *testing.T) {
	tests := []struct {
		name   string
		base   []string
		layers []map[string]string
		want   []string
	}{
		{name: "empty", want: []string{}},
		{name: "base kept in order", base: []string{"B=1", "A=2"}, want: []string{"B=1", "A=2"}},
		{name: "the plugin's own variables removed",
			base: []string{"PATH=/bin", MagicCookieKey + "=x", LogLevelEnv + "=debug", "PLUGIN_MIN_PORT=1",
				"PLUGIN_UNIX_SOCKET_DIR=/s", "PLUGIN_PROTOCOL_VERSIONS=1", "HOME=/h"},
			want: []string{"PATH=/bin", "HOME=/h"}},
		{name: "a name twice in base keeps the last value in the first place",
			base: []string{"A=1", "B=2", "A=3"}, want: []string{"A=3", "B=2"}},
		{name: "layers override in turn, new names appended sorted",
			base:   []string{"TERM=dumb", "PATH=/bin"},
			layers: []map[string]string{{"TERM": "xterm-256color", "Z": "1", "Y": "1"}, {"Z": "2"}},
			want:   []string{"TERM=xterm-256color", "PATH=/bin", "Y=1", "Z=2"}},
		{name: "a layer may set a plugin variable on purpose",
			base: []string{MagicCookieKey + "=x"}, layers: []map[string]string{{MagicCookieKey: "y"}},
			want: []string{MagicCookieKey + "=y"}},
		{name: "entry without =", base: []string{"ODD", "A=1"}, want: []string{"ODD", "A=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ChildEnv(tt.base, tt.layers...)
			if !slices.Equal(got, tt.want) {
				t.Errorf("ChildEnv = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestIsPluginEnv(t *testing.T) {
	for name, want := range map[string]bool{
		MagicCookieKey: true, LogLevelEnv: true, "PLUGIN_CLIENT_CERT": true, "PLUGIN_MULTIPLEX_GRPC": true,
		"PATH": false, "PLUGIN": false, "TMUX": false,
	} {
		if got := IsPluginEnv(name); got != want {
			t.Errorf("IsPluginEnv(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestChildEnvWithout: the names unset are removed from the inherited
// variables and from every layer alike; the rest keep ChildEnv's order.
func TestChildEnvWithout(t *testing.T) {
	base := []string{"PATH=/bin", "CLAUDECODE=1", "HOME=/h"}
	got := ChildEnvWithout(base, []string{"CLAUDECODE", "SET"}, map[string]string{"TERM": "xterm-256color", "SET": "x"})
	want := []string{"PATH=/bin", "HOME=/h", "TERM=xterm-256color"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := ChildEnvWithout(base, nil); !slices.Equal(got, base) {
		t.Errorf("no names: got %q", got)
	}
	for _, names := range [][]string{{""}, {"A=B"}, {"A\x00"}} {
		if CheckEnvNames(names) == nil {
			t.Errorf("CheckEnvNames(%q) accepted", names)
		}
	}
	if err := CheckEnvNames([]string{"CLAUDECODE", "lower.case"}); err != nil {
		t.Error(err)
	}
}

// TestEnvInDir: PWD is the directory, after the rest, and OLDPWD is left
// out; a layer or an unset name still decides; base is not modified.
func TestEnvInDir(t *testing.T) {
	base := []string{"PWD=/plugin", "PATH=/bin", "OLDPWD=/before", "HOME=/h"}
	orig := slices.Clone(base)
	got := EnvInDir(base, "/work")
	if want := []string{"PATH=/bin", "HOME=/h", "PWD=/work"}; !slices.Equal(got, want) {
		t.Errorf("EnvInDir = %q, want %q", got, want)
	}
	if !slices.Equal(base, orig) {
		t.Errorf("base modified: %q", base)
	}
	if got, want := EnvInDir(base, ""), []string{"PWD=/plugin", "PATH=/bin", "HOME=/h"}; !slices.Equal(got, want) {
		t.Errorf("EnvInDir with no directory = %q, want %q", got, want)
	}
	if got, want := ChildEnv(EnvInDir(base, "/work"), map[string]string{"PWD": "/set"}), []string{"PATH=/bin", "HOME=/h", "PWD=/set"}; !slices.Equal(got, want) {
		t.Errorf("a layer's PWD: %q, want %q", got, want)
	}
	if got, want := ChildEnvWithout(EnvInDir(base, "/work"), []string{"PWD"}), []string{"PATH=/bin", "HOME=/h"}; !slices.Equal(got, want) {
		t.Errorf("PWD unset: %q, want %q", got, want)
	}
}

package pluginhost

import (
	"fmt"
	"slices"
)

// Which plugin serves which environment type.

// builtinTypes is the environment type each built-in plugin serves
// (plugins/host, plugins/docker, plugins/ssh: their EnvironmentType).
var builtinTypes = map[string]string{"host": "HOST", "docker": "DOCKER", "ssh": "SSH"}

// reservedBy returns the built-in plugin among p's that owns typ, the
// type it serves, or nil. Such a type is the built-in's alone, whichever
// plugin starts first: another plugin that declares it is refused.
func (p *Plugins) reservedBy(typ string) *supervised {
	for _, b := range p.plugins { // fixed after load
		if b.builtin && builtinTypes[b.name] == typ {
			return b
		}
	}
	return nil
}

// claim maps types to s, dropping the types s served before. A type
// another plugin serves, or the type of a built-in plugin this server
// loads (host's HOST, docker's DOCKER, ssh's SSH) when s is not that
// plugin, is an error naming both.
func (p *Plugins) claim(s *supervised, types []string) error {
	for _, typ := range types {
		if b := p.reservedBy(typ); b != nil && b != s {
			return fmt.Errorf("environment type %q belongs to the built-in plugin %s and may not be served by %s",
				typ, b.describe(), s.describe())
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, typ := range types {
		if other, ok := p.byType[typ]; ok && other != s {
			return fmt.Errorf("environment type %q is claimed by two plugins: %s and %s", typ, other.describe(), s.describe())
		}
	}
	for typ, owner := range p.byType {
		if owner == s && !slices.Contains(types, typ) {
			delete(p.byType, typ)
		}
	}
	for _, typ := range types {
		p.byType[typ] = s
	}
	return nil
}

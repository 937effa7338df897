// Package exampletest runs the tests of the examples that are modules of
// their own, which the repository's `go test ./...` does not enter:
// examples/plugin-tmux, the third-party TMUX plugin, and
// examples/plugin-minimal, the plugin docs/plugins.md walks through. It has
// no code; see its tests.
package exampletest

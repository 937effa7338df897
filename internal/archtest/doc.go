// Package archtest pins the import arrows between ptyhost's parts, as
// docs/design.md draws them: the plugin SDK stays small enough for third
// parties to import, the core never depends on a particular plugin, on the
// plugin host or on the HTTP API, and the wire protocol imports nothing of
// ours. It has tests only.
package archtest

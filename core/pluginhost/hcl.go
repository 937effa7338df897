package pluginhost

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Block is a plugin block of the server's HCL configuration file:
//
//	plugin "tmux" {
//	  sha256 = "9f86d0…"                     # optional pin
//	  env    = { TMUX_TMPDIR = "/run/ptyhost" } # the plugin's whole environment
//	  args   = ["--flag"]                      # optional
//	}
//
// A file's decoder (gohcl) fills a []Block from `hcl:"plugin,block"`;
// ConfigsFromBlocks turns them into Configs.
type Block struct {
	Name      string            `hcl:"name,label"`
	SHA256    *string           `hcl:"sha256,optional"`
	Env       map[string]string `hcl:"env,optional"`
	Args      []string          `hcl:"args,optional"`
	NameRange hcl.Range         `hcl:"name,label_range"`
	Body      hcl.Body          `hcl:",body"`
}

// ConfigsFromBlocks checks decoded plugin blocks and returns their Configs.
// Every problem is a diagnostic pointing at the block or attribute at
// fault: a plugin named twice, a bad name, a sha256 that is not 64 hex
// digits, a bad environment variable (or a PTYHOST_PLUGIN_LOG_LEVEL that
// names no level), a variable set twice in env (the
// decoder keeps the last silently), an argument with NUL. A block with a
// problem yields no Config; the others do.
func ConfigsFromBlocks(blocks []Block) ([]Config, hcl.Diagnostics) {
	var (
		configs []Config
		diags   hcl.Diagnostics
	)
	defined := map[string]hcl.Range{}
	for _, b := range blocks {
		if first, dup := defined[b.Name]; dup {
			diags = diags.Append(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate plugin block",
				Detail:   fmt.Sprintf("plugin %q is already defined at %s:%d,%d", b.Name, first.Filename, first.Start.Line, first.Start.Column),
				Subject:  b.NameRange.Ptr(),
			})
			continue
		}
		defined[b.Name] = b.NameRange
		pc := Config{Name: b.Name, Env: b.Env, Args: b.Args}
		if err := (Config{Name: b.Name}).Validate(); err != nil {
			diags = diags.Append(&hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid plugin name", Detail: err.Error(), Subject: b.NameRange.Ptr(),
			})
			continue
		}
		if b.SHA256 != nil {
			pc.SHA256 = strings.ToLower(strings.TrimSpace(*b.SHA256))
			if err := (Config{Name: b.Name, SHA256: pc.SHA256}).Validate(); err != nil {
				diags = diags.Append(InvalidAttribute(b.Body, "sha256", "Invalid sha256", err.Error()))
				continue
			}
		}
		if d := DuplicateKeys(b.Body, "env"); d != nil {
			diags = diags.Extend(d)
			continue
		}
		if err := (Config{Name: b.Name, Env: b.Env}).Validate(); err != nil {
			diags = diags.Append(InvalidAttribute(b.Body, "env", "Invalid env", err.Error()))
			continue
		}
		if err := (Config{Name: b.Name, Args: b.Args}).Validate(); err != nil {
			diags = diags.Append(InvalidAttribute(b.Body, "args", "Invalid args", err.Error()))
			continue
		}
		configs = append(configs, pc)
	}
	return configs, diags
}

// InvalidAttribute is an error diagnostic about the value of attribute
// name in body, pointing at the value (or at the block when it is absent).
// The server's configuration file reports its own settings with it too.
func InvalidAttribute(body hcl.Body, name, summary, detail string) *hcl.Diagnostic {
	d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail}
	if b, ok := body.(*hclsyntax.Body); ok {
		if a, ok := b.Attributes[name]; ok {
			d.Subject = a.Expr.Range().Ptr()
		} else {
			d.Subject = b.SrcRange.Ptr()
		}
	}
	return d
}

// DuplicateKeys reports each key that the object written as attribute name
// of body repeats, pointing at the repetition: HCL keeps the last value of
// a repeated key, silently. An attribute that is absent, or not an object
// written out, has none.
func DuplicateKeys(body hcl.Body, name string) hcl.Diagnostics {
	b, ok := body.(*hclsyntax.Body)
	if !ok || b.Attributes[name] == nil {
		return nil
	}
	obj, ok := b.Attributes[name].Expr.(*hclsyntax.ObjectConsExpr)
	if !ok {
		return nil
	}
	var diags hcl.Diagnostics
	seen := map[string]hcl.Range{}
	for _, item := range obj.Items {
		v, d := item.KeyExpr.Value(nil)
		if d.HasErrors() || !v.IsWhollyKnown() || v.IsNull() {
			continue // the decoder reports it
		}
		if v, err := convert.Convert(v, cty.String); err == nil {
			key, at := v.AsString(), item.KeyExpr.Range()
			if first, dup := seen[key]; dup {
				diags = diags.Append(&hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Duplicate key",
					Detail:   fmt.Sprintf("%s: %q is already set at %s:%d,%d", name, key, first.Filename, first.Start.Line, first.Start.Column),
					Subject:  at.Ptr(),
				})
				continue
			}
			seen[key] = at
		}
	}
	return diags
}

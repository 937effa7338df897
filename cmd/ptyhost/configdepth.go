package main

import (
	"fmt"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// maxConfigNesting bounds how deep brackets, braces and parentheses nest
// in a configuration file. The HCL parser recurses once per level: a
// file of a few hundred KiB of "[" overflowed its stack and crashed
// serve. A real configuration nests a few levels.
const maxConfigNesting = 200

// maxConfigElements bounds how many elements the lists and objects of a
// configuration file hold in all. Decoding a list costs time quadratic in
// its length (go-cty unifies the elements' types pairwise): a list of
// 80,000 names (700 KB) took 100 s before its error, 10,000 numbers 1.5 s,
// and 200 lists of 1,000 7 s, so the bound is on the sum, not on each list:
// the sum of squares is at most the square of the sum, and 4,096 elements
// decode in a fraction of a second whatever their shape. A real
// configuration holds a few dozen.
const maxConfigElements = 4096

// checkNesting refuses src, the configuration file at path, when its
// brackets nest deeper than maxConfigNesting, as FILE:LINE,COLUMN like
// every configuration error (configError), before it is parsed. Brackets
// in quoted strings and comments do not count; the parser reports what
// else is wrong.
func checkNesting(path string, src []byte) error {
	depth, line, col := 0, 1, 0
	for i := 0; i < len(src); i++ {
		c := src[i]
		col++
		switch {
		case c == '\n':
			line, col = line+1, 0
		case c == '"':
			// A quoted string, to its closing quote or its line's end.
			for i+1 < len(src) && src[i+1] != '"' && src[i+1] != '\n' {
				if src[i+1] == '\\' && i+2 < len(src) && src[i+2] != '\n' {
					i, col = i+1, col+1
				}
				i, col = i+1, col+1
			}
		case c == '#' || c == '/' && i+1 < len(src) && src[i+1] == '/':
			for i+1 < len(src) && src[i+1] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			for i++; i+1 < len(src) && (src[i] != '*' || src[i+1] != '/'); i++ {
				if src[i] == '\n' {
					line, col = line+1, 0
				}
				col++
			}
			i++
		case c == '(' || c == '[' || c == '{':
			if depth++; depth > maxConfigNesting {
				return fmt.Errorf("%s:%d,%d: Nesting too deep; brackets nest more than %d levels here", path, line, col, maxConfigNesting)
			}
		case c == ')' || c == ']' || c == '}':
			depth = max(depth-1, 0)
		}
	}
	return nil
}

// checkElements refuses the parsed configuration file at path when its
// lists and objects hold more than maxConfigElements elements in all, at
// the list or object, in the file's order, that passes the bound, before
// the file is decoded.
func checkElements(path string, body hcl.Body) error {
	b, ok := body.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	type collection struct {
		at hcl.Range
		n  int
	}
	var all []collection
	_ = hclsyntax.VisitAll(b, func(n hclsyntax.Node) hcl.Diagnostics {
		switch e := n.(type) {
		case *hclsyntax.TupleConsExpr:
			all = append(all, collection{e.SrcRange, len(e.Exprs)})
		case *hclsyntax.ObjectConsExpr:
			all = append(all, collection{e.SrcRange, len(e.Items)})
		}
		return nil
	})
	// A body's attributes are walked in no set order.
	slices.SortFunc(all, func(a, b collection) int { return a.at.Start.Byte - b.at.Start.Byte })
	total := 0
	for _, c := range all {
		if total += c.n; total > maxConfigElements {
			return fmt.Errorf("%s:%d,%d: Too many elements; the file's lists and objects hold more than %d elements in all (this one %d)",
				path, c.at.Start.Line, c.at.Start.Column, maxConfigElements, c.n)
		}
	}
	return nil
}

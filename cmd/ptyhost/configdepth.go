package main

import "fmt"

// maxConfigNesting bounds how deep brackets, braces and parentheses nest
// in a configuration file. The HCL parser recurses once per level: a
// file of a few hundred KiB of "[" overflowed its stack and crashed
// serve. A real configuration nests a few levels.
const maxConfigNesting = 200

// checkNesting refuses src, the configuration file at path, when its
// brackets nest deeper than maxConfigNesting, as FILE:LINE,COLUMN like
// every configuration error (configError). Brackets in quoted strings and comments do
// not count; the parser reports what else is wrong.
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

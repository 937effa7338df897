package api

import (
	"bytes"
	"encoding/json"
	"unicode"
)

// duplicateKey returns a key that appears twice in one object of the JSON
// text obj, which Decode has read without error, and whether there is
// one. encoding/json keeps the last of two, where another reader (a proxy
// that checks a request, a log) may take the first: a body that means two
// things is refused instead. At the top level, whose keys name a
// request's fields, keys that differ only in case count as one, since
// encoding/json matches them to one field; deeper, as in "env", they are
// the different keys they look like.
func duplicateKey(obj []byte) (string, bool) {
	type level struct {
		object bool            // an object, else an array
		key    bool            // an object's next token is a key
		keys   map[string]bool // an object's keys so far
	}
	var stack []*level
	// valueDone notes that a value of the enclosing object has ended.
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].key = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(obj))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false // the end: Decode reported any error
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, &level{object: true, key: true, keys: map[string]bool{}})
			case '[':
				stack = append(stack, &level{})
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
		case string:
			top := stack[len(stack)-1]
			if !top.object || !top.key {
				valueDone()
				continue
			}
			k := t
			if len(stack) == 1 {
				k = foldKey(k)
			}
			if top.keys[k] {
				return t, true
			}
			top.keys[k] = true
			top.key = false
		default:
			valueDone()
		}
	}
}

// foldKey maps s to one spelling of all those that match it without
// regard to case, as encoding/json matches a key to a field: each rune
// becomes the smallest of its Unicode case folding orbit.
func foldKey(s string) string {
	b := make([]rune, 0, len(s))
	for _, r := range s {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		b = append(b, least)
	}
	return string(b)
}

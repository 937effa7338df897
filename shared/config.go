package shared

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// ConfigError is an environment config that cannot be decoded: what is
// wrong, and where. It wraps ErrInvalidConfig and the cause.
type ConfigError struct {
	// Path names the field, such as "env.FOO" or "mounts[2].source";
	// empty means the config as a whole.
	Path string
	// Err says what is wrong with it.
	Err error
}

// Error reads "invalid environment config: mounts[2].source: ...".
func (e *ConfigError) Error() string {
	if e.Path == "" {
		return ErrInvalidConfig.Error() + ": " + e.Err.Error()
	}
	return ErrInvalidConfig.Error() + ": " + e.Path + ": " + e.Err.Error()
}

// Unwrap returns ErrInvalidConfig and the cause.
func (e *ConfigError) Unwrap() []error { return []error{ErrInvalidConfig, e.Err} }

// DecodeConfig decodes an environment's JSON config into v, a pointer to
// the plugin's config struct. Empty input and null leave v as it is: the
// plugin's defaults. Decoding is strict: a field v does not have, a value
// of the wrong type, or anything after the JSON object is refused with a
// *ConfigError naming the field's path. What DecodeConfig cannot know (a
// shell that must exist, a range) the plugin checks after it.
//
// A v that is not a non-nil pointer is the plugin's mistake, not the
// config's: it is an error that does not wrap ErrInvalidConfig, whatever
// raw holds, empty included.
func DecodeConfig(raw json.RawMessage, v any) error {
	// Checked before anything else: a plugin that decodes into a value
	// (cfg for &cfg) would otherwise pass its tests with an empty config,
	// and the conformance case bad_config too (json's refusal came back
	// as ErrInvalidConfig), then refuse every real config with a 400 that
	// blames whoever wrote it; and a nil v panicked, ending the plugin
	// and every session it served.
	if rv := reflect.ValueOf(v); rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("shared.DecodeConfig needs a non-nil pointer to decode into, not %T", v)
	}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) || errors.Is(err, io.ErrUnexpectedEOF) {
			return &ConfigError{Err: fmt.Errorf("not valid JSON: %w", err)}
		}
		return locate(trimmed, reflect.TypeOf(v), "", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &ConfigError{Err: errors.New("trailing data after the JSON object")}
	}
	return nil
}

var (
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// locate finds where raw, which is valid JSON, fails to decode into a value
// of type t at path, walking objects, arrays and maps down to the first
// field that fails on its own. err is the decoder's error for raw as a
// whole, reported if no part of raw fails alone.
func locate(raw []byte, t reflect.Type, path string, err error) *ConfigError {
	for t.Kind() == reflect.Pointer && !decodesItself(t) {
		t = t.Elem()
	}
	if !decodesItself(t) {
		switch t.Kind() {
		case reflect.Struct:
			var obj map[string]json.RawMessage
			if json.Unmarshal(raw, &obj) == nil {
				keys := objectKeys(raw)
				for _, k := range keys {
					f, ok := fieldByName(t, k)
					if !ok {
						return &ConfigError{Path: path, Err: fmt.Errorf("unknown field %q", k)}
					}
					if ce := locateValue(obj[k], f.Type, joinPath(path, k)); ce != nil {
						return ce
					}
				}
			}
		case reflect.Slice, reflect.Array:
			var elems []json.RawMessage
			if json.Unmarshal(raw, &elems) == nil {
				for i, e := range elems {
					if ce := locateValue(e, t.Elem(), path+"["+strconv.Itoa(i)+"]"); ce != nil {
						return ce
					}
				}
			}
		case reflect.Map:
			var m map[string]json.RawMessage
			if json.Unmarshal(raw, &m) == nil {
				for _, k := range slices.Sorted(maps.Keys(m)) {
					if ce := locateValue(m[k], t.Elem(), joinPath(path, k)); ce != nil {
						return ce
					}
				}
			}
		}
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		err = fmt.Errorf("cannot unmarshal %s into %s", te.Value, typeName(te.Type))
	}
	return &ConfigError{Path: path, Err: err}
}

// locateValue decodes raw strictly into a new value of type t and, if that
// fails, finds where.
func locateValue(raw json.RawMessage, t reflect.Type, path string) *ConfigError {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(reflect.New(t).Interface()); err != nil {
		return locate(raw, t, path, err)
	}
	return nil
}

// decodesItself reports whether values of t decode with their own
// UnmarshalJSON or UnmarshalText, whose errors name no inner field.
func decodesItself(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return t.Implements(unmarshalerType) || p.Implements(unmarshalerType) ||
		t.Implements(textUnmarshalerType) || p.Implements(textUnmarshalerType)
}

// objectKeys returns the keys of the JSON object raw in their order.
func objectKeys(raw []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // {
		return nil
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return keys
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return keys
		}
	}
	return keys
}

// fieldByName finds the struct field encoding/json decodes the key into:
// by its JSON name or Go name, an exact match before a case-insensitive
// one, looking into embedded structs.
func fieldByName(t reflect.Type, key string) (reflect.StructField, bool) {
	var fold *reflect.StructField
	var visit func(t reflect.Type) (reflect.StructField, bool)
	visit = func(t reflect.Type) (reflect.StructField, bool) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					if sf, ok := visit(ft); ok {
						return sf, true
					}
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if name == key {
				return f, true
			}
			if fold == nil && strings.EqualFold(name, key) {
				fold = &f
			}
		}
		return reflect.StructField{}, false
	}
	if f, ok := visit(t); ok {
		return f, true
	}
	if fold != nil {
		return *fold, true
	}
	return reflect.StructField{}, false
}

// joinPath appends a field or map key to a path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// typeName names a Go type as a config author knows it: "string",
// "number", "object"...
func typeName(t reflect.Type) string {
	if t == nil {
		return "the expected type"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Slice, reflect.Array:
		return "array"
	}
	return t.String()
}

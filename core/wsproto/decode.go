package wsproto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// errNotObject is a control message that is JSON but not an object.
const errNotObject = "control message must be a JSON object"

// decodeControl decodes the control message p, which must be a JSON
// object, into v. Its errors say what is wrong in the protocol's words,
// never Go's: a message that is another JSON value (an array, a string,
// a number, true, false, null) is "must be a JSON object", and a field of
// the wrong type is named with the JSON type it needs.
func decodeControl(p []byte, v any) error {
	if t := bytes.TrimLeft(p, " \t\r\n"); len(t) > 0 && t[0] != '{' && json.Valid(t) {
		return fmt.Errorf("%s, not %s", errNotObject, jsonValueName(t))
	}
	if err := json.Unmarshal(p, v); err != nil {
		return fmt.Errorf("invalid control message: %v", JSONError(err, v))
	}
	return nil
}

// JSONError returns err, an error of encoding/json's decoding into v,
// with a value of the wrong type said in JSON's words, naming its field:
// `"cols" must be an integer, not a string`, or `each element of
// "command" must be a string, not a number` when the field is an array
// (an object's values: `each value of`). encoding/json names Go types and
// structs there ("Go struct field Resize.cols of type uint16"), which a
// client has no use for. Other errors are returned as they are. The
// server's REST API words its bodies' errors with it too.
func JSONError(err error, v any) error {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return err
	}
	where := "the value"
	if te.Field != "" {
		where = strconv.Quote(te.Field)
		if ft := fieldType(reflect.TypeOf(v), te.Field); ft != nil && deref(ft) != deref(te.Type) {
			switch deref(ft).Kind() {
			case reflect.Slice, reflect.Array:
				where = "each element of " + where
			case reflect.Map:
				where = "each value of " + where
			}
		}
	}
	return fmt.Errorf("%s must be %s, not %s", where, jsonTypeName(te.Type), article(te.Value))
}

// fieldType returns the type of the field at path (JSON names joined by
// dots, as UnmarshalTypeError.Field has them) in the struct t, or nil.
func fieldType(t reflect.Type, path string) reflect.Type {
	for name := range strings.SplitSeq(path, ".") {
		t = deref(t)
		if t == nil || t.Kind() != reflect.Struct {
			return nil
		}
		var found reflect.Type
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if tag == name || tag == "" && strings.EqualFold(f.Name, name) {
				found = f.Type
				break
			}
		}
		if found == nil {
			return nil
		}
		t = found
	}
	return t
}

// deref returns t without its pointers.
func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// jsonValueName names the kind of the JSON value v, which is valid and
// not an object.
func jsonValueName(v []byte) string {
	switch v[0] {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// jsonTypeName names, as JSON knows it, the values a Go type decodes.
func jsonTypeName(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "of another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

// article puts the article before an UnmarshalTypeError's Value: "string",
// "number", "number 1.5", "array", "object" or "bool".
func article(value string) string {
	switch {
	case value == "bool":
		return "a boolean"
	case value == "array", value == "object":
		return "an " + value
	case strings.HasPrefix(value, "number "):
		return "the " + value
	}
	return "a " + value
}

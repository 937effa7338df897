package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// jsonWords returns err, an error of encoding/json's decoding, with a
// value of the wrong type said in JSON's words, naming the field:
// `"cols" has a string where an integer belongs`. encoding/json names Go
// types and structs there ("Go struct field sessionRequest.cols of type
// int"), which a client of the API has no use for. Other errors are
// returned as they are.
func jsonWords(err error) error {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return err
	}
	where := "the value"
	if te.Field != "" {
		where = strconv.Quote(te.Field)
	}
	return fmt.Errorf("%s has %s where %s belongs", where, jsonValueWords(te.Value), jsonTypeWords(te.Type))
}

// jsonValueWords puts an UnmarshalTypeError's Value ("string", "number",
// "number 1.5", "array", "object", "bool") in words.
func jsonValueWords(value string) string {
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

// jsonTypeWords names, as JSON knows them, the values a Go type decodes.
func jsonTypeWords(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "another type"
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

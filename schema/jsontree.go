package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// jsonValue is a JSON value parsed without loss: object members keep their
// order and exact names (encoding/json matches struct fields case
// insensitively, which would read "y" as "Y"), numbers keep their text.
type jsonValue struct {
	kind byte // 'o' object, 'a' array, 's' string, 'n' number, 'b' bool, 'z' null
	obj  []jsonMember
	arr  []*jsonValue
	str  string
	num  json.Number
}

type jsonMember struct {
	name string
	val  *jsonValue
}

const maxJSONDepth = 32

func (v *jsonValue) typeName() string {
	switch v.kind {
	case 'o':
		return "an object"
	case 'a':
		return "an array"
	case 's':
		return "a string"
	case 'n':
		return "a number"
	case 'b':
		return "a boolean"
	}
	return "null"
}

// member returns the object member named name, or nil.
func (v *jsonValue) member(name string) *jsonValue {
	for _, m := range v.obj {
		if m.name == name {
			return m.val
		}
	}
	return nil
}

// parseJSONTree parses exactly one JSON value (RFC 8259; input must be
// UTF-8). An object with two members of the same name is refused: parsers
// disagree on which one wins.
func parseJSONTree(b []byte) (*jsonValue, error) {
	if !utf8.Valid(b) {
		return nil, errors.New("not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := readJSONValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after JSON value")
	}
	return v, nil
}

func readJSONValue(dec *json.Decoder, depth int) (*jsonValue, error) {
	if depth > maxJSONDepth {
		return nil, fmt.Errorf("JSON nested deeper than %d", maxJSONDepth)
	}
	t, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, errors.New("unexpected end of JSON input")
		}
		return nil, err
	}
	switch t := t.(type) {
	case json.Delim:
		switch t {
		case '{':
			v := &jsonValue{kind: 'o'}
			seen := map[string]bool{}
			for dec.More() {
				nt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				name, ok := nt.(string)
				if !ok {
					return nil, errors.New("object member name is not a string")
				}
				if seen[name] {
					return nil, fmt.Errorf("object has member %q twice", name)
				}
				seen[name] = true
				mv, err := readJSONValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				v.obj = append(v.obj, jsonMember{name, mv})
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return v, nil
		case '[':
			v := &jsonValue{kind: 'a'}
			for dec.More() {
				ev, err := readJSONValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				v.arr = append(v.arr, ev)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return v, nil
		}
		return nil, fmt.Errorf("unexpected %q", t)
	case string:
		return &jsonValue{kind: 's', str: t}, nil
	case json.Number:
		return &jsonValue{kind: 'n', num: t}, nil
	case bool:
		return &jsonValue{kind: 'b'}, nil
	case nil:
		return &jsonValue{kind: 'z'}, nil
	}
	return nil, fmt.Errorf("unexpected JSON token %v", t)
}

package httpjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"unicode"
)

// checkStructure walks the tokens of data once to find what
// encoding/json lets through: duplicate keys, trailing data, excessive
// nesting, and top-level keys that match a field only case-insensitively.
// fields are the exact top-level names allowed, and the body must be an
// object; nil allows any value, and an empty map any object. With fold,
// member names that differ only in case count as duplicates (a decoder
// that matches names ignoring case would bind both to one field).
func checkStructure(data []byte, fields map[string]bool, fold bool) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers out of float64 range are not a syntax error
	w := walker{fields: fields, fold: fold}
	for {
		tok, err := dec.Token()
		if err != nil {
			return syntaxError(err)
		}
		if err := w.step(tok); err != nil {
			return err
		}
		if w.done {
			break
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return fail(TrailingData, "", "the body has data after the JSON value")
	}
	return nil
}

func syntaxError(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fail(Syntax, "", "the body is not valid JSON (at byte %d)", se.Offset)
	}
	return fail(Syntax, "", "the body is not valid JSON: it ends early")
}

// frame is one open array (keys nil) or object.
type frame struct {
	keys      map[string]bool
	expectKey bool
}

type walker struct {
	fields map[string]bool
	fold   bool
	stack  []*frame
	done   bool
}

func (w *walker) step(tok json.Token) error {
	if len(w.stack) == 0 && w.fields != nil && tok != json.Delim('{') {
		return fail(WrongType, "", "the body must be a JSON object")
	}
	if top := w.top(); top != nil && top.keys != nil && top.expectKey {
		if key, ok := tok.(string); ok {
			return w.key(top, key)
		}
	}
	switch tok {
	case json.Delim('{'), json.Delim('['):
		if len(w.stack) >= MaxDepth {
			return fail(TooDeep, "", "the body is nested more than %d levels deep", MaxDepth)
		}
		f := &frame{}
		if tok == json.Delim('{') {
			f.keys, f.expectKey = map[string]bool{}, true
		}
		w.stack = append(w.stack, f)
		return nil
	case json.Delim('}'), json.Delim(']'):
		w.stack = w.stack[:len(w.stack)-1]
	}
	w.valueDone()
	return nil
}

func (w *walker) key(f *frame, key string) error {
	seen := key
	if w.fold {
		seen = foldName(key)
	}
	if f.keys[seen] {
		return fail(DuplicateField, key, "field %q appears more than once", truncate(key))
	}
	if len(w.stack) == 1 && len(w.fields) > 0 && !w.fields[key] {
		return fail(UnknownField, key, "unknown field %q", truncate(key))
	}
	f.keys[seen], f.expectKey = true, false
	return nil
}

// valueDone records that a whole value was read: its object now expects
// a key, or the top-level value is complete.
func (w *walker) valueDone() {
	if top := w.top(); top != nil {
		if top.keys != nil {
			top.expectKey = true
		}
		return
	}
	w.done = true
}

func (w *walker) top() *frame {
	if len(w.stack) == 0 {
		return nil
	}
	return w.stack[len(w.stack)-1]
}

// topLevelFields are the JSON names of v's fields when v points to a
// struct (embedded structs are not flattened: request types have none);
// nil otherwise.
func topLevelFields(v any) map[string]bool {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	t = t.Elem()
	fields := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case !f.IsExported() || name == "-":
			continue
		case name == "":
			name = f.Name
		}
		fields[name] = true
	}
	return fields
}

// foldName is the form in which encoding/json compares a member name with
// a field's when it ignores case (each rune replaced by the smallest of
// its Unicode simple-fold set: "ſecret" and "SECRET" both bind to
// "secret"), so that two members binding to one field are caught as
// duplicates.
func foldName(name string) string {
	return strings.Map(func(r rune) rune {
		for {
			next := unicode.SimpleFold(r)
			if next <= r {
				return next
			}
			r = next
		}
	}, name)
}

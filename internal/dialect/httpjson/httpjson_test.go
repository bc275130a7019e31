package httpjson

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type body struct {
	Name  *string  `json:"name"`
	On    *bool    `json:"on"`
	Items []string `json:"items"`
	Count int      `json:"count"`
	Inner *struct {
		A string `json:"a"`
	} `json:"inner"`
	Hidden string `json:"-"`
}

func TestUnmarshal(t *testing.T) {
	tests := []struct {
		name, in string
		kind     Kind
		field    string
	}{
		{"ok", `{"name":"a","on":true,"items":["x"],"count":3,"inner":{"a":"b"}}`, 0, ""},
		{"empty object", `{}`, 0, ""},
		{"nulls", `{"name":null,"on":null,"items":null,"inner":null}`, 0, ""},
		{"white space around", " \n{}\t ", 0, ""},
		{"empty", ``, Empty, ""},
		{"blank", "  \n", Empty, ""},
		{"not JSON", `{name:1}`, Syntax, ""},
		{"ends early", `{"name":"a"`, Syntax, ""},
		{"single quotes", `{'name':'a'}`, Syntax, ""},
		{"trailing object", `{}{}`, TrailingData, ""},
		{"trailing garbage", `{} x`, TrailingData, ""},
		{"trailing comma", `{"name":"a",}`, Syntax, ""},
		{"duplicate", `{"name":"a","name":"b"}`, DuplicateField, "name"},
		{"duplicate nested", `{"inner":{"a":"x","a":"y"}}`, DuplicateField, "a"},
		{"same key in two objects is fine", `{"inner":{"a":"x"},"items":[]}`, 0, ""},
		{"unknown", `{"nme":"a"}`, UnknownField, "nme"},
		{"unknown nested", `{"inner":{"b":"x"}}`, UnknownField, "b"},
		{"wrong case", `{"Name":"a"}`, UnknownField, "Name"},
		{"json:- field", `{"Hidden":"a"}`, UnknownField, "Hidden"},
		{"string for bool", `{"on":"true"}`, WrongType, "on"},
		{"number for string", `{"name":5}`, WrongType, "name"},
		{"object for array", `{"items":{}}`, WrongType, "items"},
		{"number in array", `{"items":["a",1]}`, WrongType, "items"},
		{"float for int", `{"count":1.5}`, WrongType, "count"},
		{"huge number", `{"count":1e999}`, WrongType, "count"},
		{"array body", `[]`, WrongType, ""},
		{"string body", `"x"`, WrongType, ""},
		{"null body", `null`, WrongType, ""},
		{"number body", `1`, WrongType, ""},
		{"too deep", `{"items":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, TooDeep, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b body
			err := Unmarshal([]byte(tt.in), &b)
			if tt.kind == 0 {
				if err != nil {
					t.Fatalf("Unmarshal: %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Unmarshal = %v, want *Error", err)
			}
			if e.Kind != tt.kind || e.Field != tt.field || e.Status() != http.StatusBadRequest || e.Message == "" {
				t.Errorf("Unmarshal = %+v, want kind %d field %q", e, tt.kind, tt.field)
			}
		})
	}
}

func TestMessagesNeverQuoteValues(t *testing.T) {
	for _, in := range []string{`{"name":12345678}`, `{"on":"s3cr3t-value"}`, `{"name":"s3cr3t-value"}x`, `{"name":s3cr3t}`} {
		var b body
		err := Unmarshal([]byte(in), &b)
		if err == nil || strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "12345678") {
			t.Errorf("Unmarshal(%s) = %v", in, err)
		}
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		status                  int
	}{
		{"json", "application/json", `{}`, 0},
		{"json utf-8", "application/json; charset=UTF-8", `{}`, 0},
		{"upper case type", "Application/JSON", `{}`, 0},
		{"no content type", "", `{}`, 415},
		{"form", "application/x-www-form-urlencoded", `{}`, 415},
		{"text", "text/plain", `{}`, 415},
		{"other charset", "application/json; charset=latin1", `{}`, 415},
		{"malformed header", "application/json; =", `{}`, 415},
		{"json suffix", "application/problem+json", `{}`, 415},
		{"too large", "application/json", `{"name":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, 413},
		{"bad json", "application/json", `{`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			err := Decode(r, &body{})
			if got := statusOf(err); got != tt.status {
				t.Errorf("Decode = %v (status %d), want status %d", err, got, tt.status)
			}
		})
	}
}

func TestDecodeMaxBytesReader(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"name":"abcdef"}`))
	r.Header.Set("Content-Type", "application/json")
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 5)
	if got := statusOf(Decode(r, &body{})); got != 413 {
		t.Errorf("status %d, want 413", got)
	}
	if !IsTooLarge(&http.MaxBytesError{Limit: 5}) || IsTooLarge(errors.New("x")) {
		t.Error("IsTooLarge")
	}
}

func statusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status()
	}
	return 0
}

func TestSegments(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{"/a/b", []string{"a", "b"}, false},
		{"/a/b%2Fc", []string{"a", "b/c"}, false},
		{"/a/", []string{"a", ""}, false},
		{"/a/%zz", nil, true},
	}
	for _, tt := range tests {
		got, err := Segments(tt.in)
		if (err != nil) != tt.err || !cmp.Equal(got, tt.want) {
			t.Errorf("Segments(%q) = %q, %v", tt.in, got, err)
		}
	}
}

func TestWrite(t *testing.T) {
	w := httptest.NewRecorder()
	Write(w, 201, "application/problem+json", map[string]string{"a": "b"})
	if w.Code != 201 || w.Header().Get("Content-Type") != "application/problem+json" ||
		w.Header().Get("Cache-Control") != "no-store" || w.Body.String() != "{\"a\":\"b\"}\n" {
		t.Errorf("Write: %d %v %q", w.Code, w.Header(), w.Body)
	}
	for d, want := range map[time.Duration]string{0: "1", 1500 * time.Millisecond: "2", time.Minute: "60"} {
		w := httptest.NewRecorder()
		SetRetryAfter(w, d)
		if got := w.Header().Get("Retry-After"); got != want {
			t.Errorf("SetRetryAfter(%v) = %q, want %q", d, got, want)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{`{}`, `{"name":"a","name":"b"}`, `{"items":[1]}`, `[`, `{"inner":{"a":"b"}}x`, `null`, `{"count":-0e-0}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var b body
		err := Unmarshal(data, &b)
		var e *Error
		if err != nil && (!errors.As(err, &e) || e.Status() != http.StatusBadRequest || e.Message == "") {
			t.Fatalf("Unmarshal(%q) = %v", data, err)
		}
	})
}

// DecodeAsASPNET binds as System.Text.Json with ASP.NET's web defaults:
// names ignoring case, unknown members ignored; everything else refused
// as strictly as Decode.
func TestDecodeAsASPNET(t *testing.T) {
	tests := []struct {
		name, in string
		kind     Kind
		field    string
		want     string // Name after a success
	}{
		{"exact", `{"name":"a"}`, 0, "", "a"},
		{"other case", `{"NAME":"a","On":true}`, 0, "", "a"},
		{"unknown member ignored", `{"name":"a","created":"2030-01-01","userId":null,"more":{"x":[1]}}`, 0, "", "a"},
		{"duplicate", `{"name":"a","name":"b"}`, DuplicateField, "name", ""},
		{"duplicate in another case", `{"name":"a","Name":"b"}`, DuplicateField, "Name", ""},
		{"duplicate by Unicode folding", `{"items":[],"ıtems":[]}`, 0, "", ""},
		{"duplicate unknown members", `{"x":1,"X":2}`, DuplicateField, "X", ""},
		{"wrong type", `{"Name":5}`, WrongType, "name", ""},
		{"wrong type in an unknown member is ignored", `{"name":"a","bogus":{}}`, 0, "", "a"},
		{"array body", `[]`, WrongType, "", ""},
		{"trailing data", `{}{}`, TrailingData, "", ""},
		{"syntax", `{"name":}`, Syntax, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tt.in))
			r.Header.Set("Content-Type", "application/json")
			var b body
			err := DecodeAsASPNET(r, &b)
			var e *Error
			switch {
			case tt.kind == 0 && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.kind == 0:
				if tt.want != "" && (b.Name == nil || *b.Name != tt.want) {
					t.Errorf("name %v, want %q", b.Name, tt.want)
				}
			case !errors.As(err, &e) || e.Kind != tt.kind || e.Field != tt.field:
				t.Errorf("got %#v, want kind %d field %q", err, tt.kind, tt.field)
			}
		})
	}
}

package hub

import (
	"cmp"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

// Paging bounds.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
	// MaxPageNumber keeps the offset far from overflow; pages past the
	// last key but under this bound answer an empty list.
	MaxPageNumber = 1_000_000
	// maxQueryValues bounds the work one query string can cause.
	maxQueryValues = 64
)

// listQuery is a parsed list request.
type listQuery struct {
	opts         keystore.ListOptions
	includeRoles bool
}

// keyOrder compares two keys by one sort field.
type keyOrder func(a, b *keystore.Key) int

var sortFields = map[string]keyOrder{
	"id":      func(a, b *keystore.Key) int { return cmp.Compare(a.ID, b.ID) },
	"name":    func(a, b *keystore.Key) int { return cmp.Compare(a.Name, b.Name) },
	"created": func(a, b *keystore.Key) int { return a.CreatedAt.Compare(b.CreatedAt) },
	"updated": func(a, b *keystore.Key) int { return a.UpdatedAt.Compare(b.UpdatedAt) },
	"state":   func(a, b *keystore.Key) int { return cmp.Compare(currentState(a.State), currentState(b.State)) },
	"role_id": func(a, b *keystore.Key) int { return cmp.Compare(roleIDOf(a), roleIDOf(b)) },
}

var sortNames = sortedNames(sortFields)

var keyStates = []string{"configuring", "deleted", "deleting", "inactive", "live", "new"}

func sortedNames[V any](m map[string]V) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// parseQuery parses a raw query string strictly: a malformed one is a
// 400, where net/http would silently drop the bad pairs.
func parseQuery(raw string) (url.Values, *apiError) {
	if strings.Count(raw, "&")+1 > maxQueryValues {
		return nil, syntaxError("the query string has too many parameters")
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return nil, syntaxError("the query string is malformed: use name=value pairs joined by '&', percent-encoded")
	}
	return vals, nil
}

// family is the part of a parameter name before '[': sort, filter, ...
func family(name string) string {
	if i := strings.IndexByte(name, '['); i >= 0 {
		return name[:i]
	}
	return name
}

// bracketed returns x of "<fam>[x]".
func bracketed(name, fam string) (string, bool) {
	inner, ok := strings.CutPrefix(name, fam+"[")
	if !ok {
		return "", false
	}
	inner, ok = strings.CutSuffix(inner, "]")
	if !ok || inner == "" || strings.ContainsAny(inner, "[]") {
		return "", false
	}
	return inner, true
}

// parseListQuery turns sort, filter[...], page[...] and include into
// ListOptions. Parameters of other families are ignored, as clients add
// their own; a malformed name inside a known family is an error, since
// the client clearly meant something this server would otherwise drop.
func parseListQuery(raw string) (listQuery, *apiError) {
	vals, e := parseQuery(raw)
	if e != nil {
		return listQuery{}, e
	}
	q := listQuery{opts: keystore.ListOptions{Limit: DefaultPageSize}}
	var filters []func(*keystore.Key) bool
	number := 1
	for _, name := range sortedKeys(vals) {
		v := vals[name]
		switch family(name) {
		case "sort":
			e = q.parseSort(name, v)
		case "include":
			var roles bool
			roles, e = parseInclude(name, v)
			q.includeRoles = q.includeRoles || roles
		case "filter":
			var f func(*keystore.Key) bool
			if f, e = parseFilter(name, v); f != nil {
				filters = append(filters, f)
			}
		case "page":
			e = parsePage(name, v, &q.opts.Limit, &number)
		}
		if e != nil {
			return listQuery{}, e
		}
	}
	q.opts.Offset = (number - 1) * q.opts.Limit
	q.opts.Match = matchAll(filters)
	// The name filters, when given, narrow the keys the store tests with
	// Match: it skips the others without building their views.
	q.opts.NameContains, q.opts.Name = vals.Get("filter[search]"), vals.Get("filter[name]")
	return q, nil
}

func matchAll(filters []func(*keystore.Key) bool) func(*keystore.Key) bool {
	switch len(filters) {
	case 0:
		return nil // lets the store skip the scan
	case 1:
		return filters[0]
	}
	return func(k *keystore.Key) bool {
		for _, f := range filters {
			if !f(k) {
				return false
			}
		}
		return true
	}
}

// parseSort reads "sort=-created,name" or "sort=-created&sort=name".
func (q *listQuery) parseSort(name string, values []string) *apiError {
	orders, fields, e := parseSortOrders(name, values, sortFields, sortNames)
	if e != nil {
		return e
	}
	if len(orders) > 0 {
		q.opts.Less = lessBy(orders)
	}
	if len(fields) == 1 {
		// One field, then the ID (lessBy): an order the store can keep
		// an index for when it knows the field.
		q.opts.Sort = &fields[0]
	}
	return nil
}

// parseSortOrders reads the sort parameter against a resource's sort
// fields: the orders to apply in turn, and the fields they sort by.
func parseSortOrders[O ~func(a, b T) int, T any](name string, values []string, known map[string]O, names string) ([]O, []keystore.SortField, *apiError) {
	if name != "sort" {
		return nil, nil, invalidArg("unknown query parameter " + strconv.Quote(name) + ": use sort=<field>,-<field>")
	}
	var orders []O
	var fields []keystore.SortField
	seen := map[string]bool{}
	for _, v := range values {
		if v == "" {
			continue
		}
		for _, item := range strings.Split(v, ",") {
			field, desc := strings.CutPrefix(item, "-")
			order, ok := known[field]
			switch {
			case !ok:
				return nil, nil, invalidArg("sort: unknown sort field " + quoteShort(item) + "; use one of " + names + ", with '-' in front to sort descending")
			case seen[field]:
				return nil, nil, invalidArg("sort: the field " + strconv.Quote(field) + " is given more than once")
			}
			seen[field] = true
			if desc {
				asc := order
				order = func(a, b T) int { return asc(b, a) }
			}
			orders = append(orders, order)
			fields = append(fields, keystore.SortField{Field: field, Desc: desc})
		}
	}
	return orders, fields, nil
}

// lessBy orders by the fields in turn, then by ID so pages are stable.
func lessBy(orders []keyOrder) func(a, b *keystore.Key) bool {
	return func(a, b *keystore.Key) bool {
		for _, o := range orders {
			if c := o(a, b); c != 0 {
				return c < 0
			}
		}
		return a.ID < b.ID
	}
}

// parseInclude reads "include=roles" (comma-separated or repeated).
func parseInclude(name string, values []string) (bool, *apiError) {
	if name != "include" {
		return false, invalidArg("unknown query parameter " + quoteShort(name) + ": use include=roles")
	}
	roles := false
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			switch item {
			case "":
			case "roles":
				roles = true
			default:
				return false, invalidArg("include: unknown value " + quoteShort(item) + "; the only include is roles")
			}
		}
	}
	return roles, nil
}

// parseGetQuery reads the query of a single-key GET: only include counts.
func parseGetQuery(raw string) (includeRoles bool, e *apiError) {
	vals, e := parseQuery(raw)
	if e != nil {
		return false, e
	}
	for _, name := range sortedKeys(vals) {
		if family(name) == "include" {
			var roles bool
			if roles, e = parseInclude(name, vals[name]); e != nil {
				return false, e
			}
			includeRoles = includeRoles || roles
		}
	}
	return includeRoles, nil
}

func sortedKeys(vals url.Values) []string {
	names := make([]string, 0, len(vals))
	for name := range vals {
		names = append(names, name)
	}
	slices.Sort(names) // the same query always reports the same error
	return names
}

// parseFilter reads one filter[<name>]=<value>. An empty filter[search]
// matches everything (a cleared search box).
func parseFilter(name string, values []string) (func(*keystore.Key) bool, *apiError) {
	field, ok := bracketed(name, "filter")
	if !ok {
		return nil, invalidArg("unknown query parameter " + quoteShort(name) + ": use filter[<name>]=<value>")
	}
	if len(values) > 1 {
		return nil, invalidArg(name + " is given more than once")
	}
	v := values[0]
	if utf8.RuneCountInString(v) > keystore.MaxNameLen {
		return nil, invalidArg(name + ": at most " + strconv.Itoa(keystore.MaxNameLen) + " characters")
	}
	switch field {
	case "search":
		if v == "" {
			return nil, nil
		}
		return func(k *keystore.Key) bool { return keystore.ContainsFold(k.Name, v) }, nil
	case "name":
		if v == "" {
			return nil, invalidArg("filter[name] must not be empty")
		}
		return func(k *keystore.Key) bool { return k.Name == v }, nil
	case "role_id":
		id, ok := parseObjectID(v)
		if !ok {
			return nil, invalidArg("filter[role_id] must be a role ID: 24 hexadecimal characters")
		}
		return func(k *keystore.Key) bool { return roleIDOf(k) == id }, nil
	case "state":
		return parseStateFilter(v)
	}
	return nil, invalidArg("unknown filter " + quoteShort(name) + "; use filter[search], filter[name], filter[role_id] or filter[state]")
}

// parseStateFilter reads filter[state]=live,new: keys in any of them.
func parseStateFilter(v string) (func(*keystore.Key) bool, *apiError) {
	want := map[string]bool{}
	for _, s := range strings.Split(v, ",") {
		if !slices.Contains(keyStates, s) {
			return nil, invalidArg("filter[state]: unknown state " + quoteShort(s) + "; use one or more of " + strings.Join(keyStates, ", ") + ", comma-separated")
		}
		want[s] = true
	}
	return func(k *keystore.Key) bool { return want[currentState(k.State)] }, nil
}

// parsePage reads page[size] and page[number].
func parsePage(name string, values []string, size, number *int) *apiError {
	if len(values) > 1 {
		return invalidArg(quoteShort(name) + " is given more than once")
	}
	var err *apiError
	switch name {
	case "page[size]":
		*size, err = boundedInt(name, values[0], MaxPageSize)
	case "page[number]":
		*number, err = boundedInt(name, values[0], MaxPageNumber)
	default:
		err = invalidArg("unknown query parameter " + quoteShort(name) + ": use page[size] and page[number]")
	}
	return err
}

// boundedInt accepts only plain decimal digits: 1..limit.
func boundedInt(name, v string, limit int) (int, *apiError) {
	bad := invalidArg(name + " must be a whole number from 1 to " + strconv.Itoa(limit))
	if v == "" || len(v) > 10 || strings.Trim(v, "0123456789") != "" {
		return 0, bad
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > limit {
		return 0, bad
	}
	return n, nil
}

// parseObjectID accepts 24 hex digits in either case and returns them in
// lower case, the form the store's IDs have.
func parseObjectID(s string) (string, bool) {
	if len(s) != 24 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return "", false
		}
	}
	return strings.ToLower(s), true
}

// quoteShort quotes client input for an error message, cut short.
func quoteShort(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strconv.Quote(s)
}

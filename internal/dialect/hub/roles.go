package hub

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/apikey-operator/apikey-operator/internal/dialect/httpjson"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

// RolesPath is the collection of a hub's roles: the ApiKeyRoles of the
// namespace, as the product's Role. A key's role_id names one of them, so
// a client that knows only the API can find the ID its first key needs.
const RolesPath = "/v1/hubs/current/roles"

// roleOrder compares two roles by one sort field.
type roleOrder func(a, b *keystore.Role) int

var roleSortFields = map[string]roleOrder{
	"id":         func(a, b *keystore.Role) int { return cmp.Compare(a.ID, b.ID) },
	"name":       func(a, b *keystore.Role) int { return cmp.Compare(a.Name, b.Name) },
	"identifier": func(a, b *keystore.Role) int { return cmp.Compare(a.Name, b.Name) },
	"created":    func(a, b *keystore.Role) int { return a.CreatedAt.Compare(b.CreatedAt) },
}

var roleSortNames = sortedNames(roleSortFields)

// roleQuery is a parsed roles list request.
type roleQuery struct {
	orders       []roleOrder
	match        []func(*keystore.Role) bool
	size, number int
}

// listRoles answers GET /v1/hubs/current/roles with the keys' list
// conventions: sort, filter[search|name|identifier], page[size|number].
func (h *handler) listRoles(w http.ResponseWriter, r *http.Request, req request) error {
	q, e := parseRoleQuery(r.URL.RawQuery)
	if e != nil {
		return e
	}
	roles, err := h.store.ListRoles(r.Context(), scopes, req.hub)
	if err != nil {
		return err
	}
	roles = slices.DeleteFunc(roles, func(ro *keystore.Role) bool {
		for _, m := range q.match {
			if !m(ro) {
				return true
			}
		}
		return false
	})
	slices.SortStableFunc(roles, func(a, b *keystore.Role) int {
		for _, o := range q.orders {
			if c := o(a, b); c != 0 {
				return c
			}
		}
		if len(q.orders) == 0 {
			if c := cmp.Compare(a.Name, b.Name); c != 0 {
				return c
			}
		}
		return cmp.Compare(a.ID, b.ID)
	})
	data := make([]role, 0, q.size)
	for _, ro := range keystore.Page(roles, (q.number-1)*q.size, q.size) {
		data = append(data, toRole(ro))
	}
	httpjson.Write(w, http.StatusOK, "application/json", dataEnvelope{Data: data})
	return nil
}

// getRole answers GET /v1/hubs/current/roles/{roleId}.
func (h *handler) getRole(w http.ResponseWriter, r *http.Request, req request) error {
	id, ok := parseObjectID(req.id)
	if !ok {
		return newError(http.StatusNotFound, codeRole, "no role with this ID in the hub: IDs are 24 hexadecimal characters")
	}
	ro, err := h.store.GetRole(r.Context(), scopes, req.hub, keystore.ByID(id))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, "application/json", dataEnvelope{Data: toRole(ro)})
	return nil
}

// parseRoleQuery reads the roles list's query as parseListQuery reads the
// keys': other families are ignored, a wrong name inside a known one is
// an error.
func parseRoleQuery(raw string) (roleQuery, *apiError) {
	vals, e := parseQuery(raw)
	if e != nil {
		return roleQuery{}, e
	}
	q := roleQuery{size: DefaultPageSize, number: 1}
	for _, name := range sortedKeys(vals) {
		v := vals[name]
		switch family(name) {
		case "sort":
			q.orders, _, e = parseSortOrders(name, v, roleSortFields, roleSortNames)
		case "filter":
			var m func(*keystore.Role) bool
			if m, e = parseRoleFilter(name, v); m != nil {
				q.match = append(q.match, m)
			}
		case "page":
			e = parsePage(name, v, &q.size, &q.number)
		}
		if e != nil {
			return roleQuery{}, e
		}
	}
	return q, nil
}

// parseRoleFilter reads filter[search] (the name contains the text,
// ignoring case), filter[name] and filter[identifier] (exactly this name).
func parseRoleFilter(name string, values []string) (func(*keystore.Role) bool, *apiError) {
	field, ok := bracketed(name, "filter")
	if !ok {
		return nil, invalidArg("unknown query parameter " + quoteShort(name) + ": use filter[<name>]=<value>")
	}
	if len(values) > 1 {
		return nil, invalidArg(name + " is given more than once")
	}
	v := values[0]
	if utf8.RuneCountInString(v) > keystore.MaxNameLen {
		return nil, invalidArg(name + ": at most 128 characters")
	}
	switch field {
	case "search":
		if v == "" {
			return nil, nil
		}
		return func(r *keystore.Role) bool { return keystore.ContainsFold(r.Name, v) }, nil
	case "name", "identifier":
		if v == "" {
			return nil, invalidArg(name + " must not be empty")
		}
		return func(r *keystore.Role) bool { return r.Name == v }, nil
	}
	return nil, invalidArg("unknown filter " + quoteShort(name) + "; the roles' filters are " + strings.Join([]string{"filter[search]", "filter[name]", "filter[identifier]"}, ", "))
}

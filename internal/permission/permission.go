// Package permission matches permissions against granted patterns: the
// one rule that verification, authorisation and the no-escalation check
// share.
package permission

// Permissions are segments joined by ':', '.', '/' or '@', such as
// invoices:read, tenant.apiKey:write, payments/read, billing@eu or
// urn:acme:invoices/read. A granted permission may use '*' for a segment:
//
//   - "*" alone grants everything;
//   - a '*' segment in the middle matches exactly one segment, whatever
//     it holds, but no separator ("invoices:*:read" grants
//     "invoices:eu:read", not "invoices:eu/fr:read");
//   - a trailing '*' segment matches one or more segments joined by any
//     of the four separators ("tenant.apiKey:*" grants "tenant.apiKey:read"
//     and "tenant.apiKey:read:all"; "urn:acme:*" grants
//     "urn:acme:invoices/read"; "payments/*" grants "payments/eu@read"),
//     but not nothing ("tenant.apiKey:*" does not grant "tenant.apiKey").
//
// Separators before the '*' must match: "tenant.apiKey:*" does not grant
// "tenant:apiKey:read", nor "payments/*" "payments:read". A '*' in a
// required permission is a literal segment; only a granted '*' matches it.

// Grants tells whether the granted pattern covers the required permission.
// It allocates nothing.
func Grants(pattern, required string) bool {
	if pattern == "*" {
		return true
	}
	i, j := 0, 0
	for {
		pe, re := segmentEnd(pattern, i), segmentEnd(required, j)
		ps := pattern[i:pe]
		if ps == "*" {
			if pe == len(pattern) {
				return j < len(required)
			}
		} else if ps != required[j:re] {
			return false
		}
		if pe == len(pattern) || re == len(required) {
			return pe == len(pattern) && re == len(required)
		}
		if pattern[pe] != required[re] {
			return false
		}
		i, j = pe+1, re+1
	}
}

func segmentEnd(s string, from int) int {
	for k := from; k < len(s); k++ {
		switch s[k] {
		case ':', '.', '/', '@':
			return k
		}
	}
	return len(s)
}

// GrantsAll tells whether the granted set covers every required permission.
func GrantsAll(granted, required []string) bool {
	for _, r := range required {
		if !GrantsOne(granted, r) {
			return false
		}
	}
	return true
}

// GrantsOne tells whether any granted pattern covers the required permission.
func GrantsOne(granted []string, required string) bool {
	if required == "" {
		return false
	}
	for _, g := range granted {
		if Grants(g, required) {
			return true
		}
	}
	return false
}

package verify

// Permissions are segments joined by ':' or '.', such as invoices:read or
// tenant.apiKey:write. A granted permission may use '*' for a segment:
//
//   - "*" alone grants everything;
//   - a '*' segment in the middle matches exactly one segment
//     ("invoices:*:read" grants "invoices:eu:read");
//   - a trailing '*' segment matches one or more segments
//     ("tenant.apiKey:*" grants "tenant.apiKey:read" and
//     "tenant.apiKey:read:all", but not "tenant.apiKey").
//
// Separators must match: "tenant.apiKey:*" does not grant
// "tenant:apiKey:read". A '*' in a required permission is a literal
// segment; only a granted '*' matches it.

// grants tells whether the granted pattern covers the required permission.
// It allocates nothing.
func grants(pattern, required string) bool {
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
		if s[k] == ':' || s[k] == '.' {
			return k
		}
	}
	return len(s)
}

// grantsAll tells whether the granted set covers every required permission.
func grantsAll(granted, required []string) bool {
	for _, r := range required {
		if !grantsOne(granted, r) {
			return false
		}
	}
	return true
}

func grantsOne(granted []string, required string) bool {
	if required == "" {
		return false
	}
	for _, g := range granted {
		if grants(g, required) {
			return true
		}
	}
	return false
}

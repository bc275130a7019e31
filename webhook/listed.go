package webhook

import (
	"fmt"
	"strings"
)

// listed joins names with commas within about budget characters, then
// counts the rest. The API server cuts each warning to 256 characters once
// a response's warnings pass 4 KiB, so a warning must stay short and still
// say how many there are.
func listed(names []string, budget int) string {
	var b strings.Builder
	for i, n := range names {
		sep := ""
		if i > 0 {
			sep = ", "
		}
		if i > 0 && b.Len()+len(sep)+len(n) > budget {
			fmt.Fprintf(&b, " and %d more", len(names)-i)
			break
		}
		b.WriteString(sep + n)
	}
	return b.String()
}

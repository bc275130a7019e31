package nexus

import (
	"regexp"
	"strconv"
	"time"
)

// dateTimeRE is what System.Text.Json, the vendor's ASP.NET binder, reads
// as a date-time (its ISO 8601 profile): a date, optionally a time of
// hours and minutes with optional seconds and up to 7 fractional digits
// (.NET's tick is 100 ns), optionally an offset.
var dateTimeRE = regexp.MustCompile(`^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?(Z|[+-]\d{2}:\d{2})?)?$`)

// parseDateTime reads expiresAt as the vendor's server does: with or
// without an offset (none means UTC, which is what a server that treats
// unspecified times as UTC does), fractional seconds up to 7 digits, and
// a bare date (midnight UTC). Impossible dates (February 30) and times
// (25:00) are refused rather than normalised.
func parseDateTime(s string) (time.Time, bool) {
	m := dateTimeRE.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, false
	}
	n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
	year, month, day := n(1), n(2), n(3)
	hour, minute, sec := n(4), n(5), n(6)
	nanos := 0
	if frac := m[7]; frac != "" {
		v, _ := strconv.Atoi(frac)
		for i := len(frac); i < 9; i++ {
			v *= 10
		}
		nanos = v
	}
	loc := time.UTC
	if off := m[8]; off != "" && off != "Z" {
		h, _ := strconv.Atoi(off[1:3])
		mi, _ := strconv.Atoi(off[4:6])
		if h > 14 || mi > 59 {
			return time.Time{}, false
		}
		secs := h*3600 + mi*60
		if off[0] == '-' {
			secs = -secs
		}
		loc = time.FixedZone("", secs)
	}
	if hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nanos, loc)
	if t.Year() != year || int(t.Month()) != month || t.Day() != day {
		return time.Time{}, false
	}
	return t.UTC(), true
}

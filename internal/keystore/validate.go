package keystore

import (
	"net/netip"
	"regexp"
	"time"
	"unicode/utf8"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/token"
)

// The same rules as the CRD schema (api/v1alpha1/apikey_bounds.go), checked
// before any write so a dialect can answer in its own shape and nothing
// changes. TestStoreAndCRDAgree proves both judge a table of inputs alike.
var (
	nameForbiddenRE = regexp.MustCompile(keysv1.KeyNameForbidden)
	permissionRE    = regexp.MustCompile(keysv1.PermissionPattern)
)

// ValidateNew checks a create request.
func ValidateNew(n *NewKey, now time.Time) error {
	if n.Name != "" {
		if err := ValidateName(n.Name); err != nil {
			return err
		}
	}
	if err := validateCommon(&n.Description, &n.Permissions, &n.AllowedIPs, n.Attributes); err != nil {
		return err
	}
	if n.ExpiresAt != nil && !n.ExpiresAt.After(now) {
		return invalid("expiresAt", "must be in the future")
	}
	if n.Token != "" {
		if err := token.WellFormed(n.Token); err != nil {
			return invalid("secret", "must have %d to %d printable ASCII characters and no spaces", token.MinLen, token.MaxLen)
		}
		if token.Guessable(n.Token) {
			return invalid("secret", "is too easy to guess (repeated or consecutive characters, or too few different ones): use %d or more random characters, for example from `openssl rand -base64 32`, or leave it out to have one generated", token.MinLen)
		}
	}
	return nil
}

// ValidateUpdate checks an update request.
func ValidateUpdate(u *KeyUpdate) error {
	if u.Name != nil {
		if err := ValidateName(*u.Name); err != nil {
			return err
		}
	}
	var perms, ips *[]string
	if u.Permissions != nil {
		perms = u.Permissions
	}
	if u.AllowedIPs != nil {
		ips = u.AllowedIPs
	}
	return validateCommon(u.Description, perms, ips, u.Attributes)
}

// ValidateName checks a display name: free text of 1 to MaxNameLen
// characters (not bytes: the CRD's maxLength counts characters too), valid
// UTF-8, with none of the characters keysv1.KeyNameForbidden lists. It is the rule of
// api/v1alpha1.KeyName; a dialect may create only a narrower set.
func ValidateName(name string) error {
	switch {
	case name == "":
		return invalid("name", "must not be empty")
	case !utf8.ValidString(name):
		return invalid("name", "must be valid UTF-8 text")
	case utf8.RuneCountInString(name) > MaxNameLen:
		return invalid("name", "must be at most %d characters", MaxNameLen)
	}
	if loc := nameForbiddenRE.FindStringIndex(name); loc != nil {
		r, _ := utf8.DecodeRuneInString(name[loc[0]:])
		return invalid("name", "must not contain control characters (this one holds U+%04X): no line breaks, tabs, NUL or bidirectional-text controls; any other text is fine, for example CI Deploy (prod)", r)
	}
	return nil
}

func validateCommon(description *string, perms, ips *[]string, attrs map[string]string) error {
	if description != nil && utf8.RuneCountInString(*description) > MaxDescriptionLen {
		return invalid("description", "must be at most %d characters", MaxDescriptionLen)
	}
	if perms != nil {
		if err := validatePermissions(*perms); err != nil {
			return err
		}
	}
	if ips != nil {
		if err := validateIPs(*ips); err != nil {
			return err
		}
	}
	if len(attrs) > MaxAttributes {
		return invalid("attributes", "at most %d", MaxAttributes)
	}
	for _, v := range attrs {
		if len(v) > MaxAttributeLen {
			return invalid("attributes", "values must be at most %d characters", MaxAttributeLen)
		}
	}
	return nil
}

func validatePermissions(perms []string) error {
	if len(perms) > MaxPermissions {
		return invalid("permissions", "at most %d permissions", MaxPermissions)
	}
	if d := duplicate(perms); d != "" {
		return invalid("permissions", "%q is listed twice", truncate(d, 40))
	}
	for _, p := range perms {
		if p == "" || utf8.RuneCountInString(p) > MaxPermissionLen || !permissionRE.MatchString(p) {
			return invalid("permissions", "%q is not a permission: segments of letters, digits, '-' or '_' (or a lone '*') joined by ':', '.', '/' or '@', at most %d characters, for example invoices:read, payments/read, billing@eu or *", truncate(p, 40), MaxPermissionLen)
		}
	}
	return nil
}

func validateIPs(ips []string) error {
	if len(ips) > MaxAllowedIPs {
		return invalid("ips", "at most %d addresses", MaxAllowedIPs)
	}
	if d := duplicate(ips); d != "" {
		return invalid("ips", "%q is listed twice", truncate(d, 50))
	}
	for _, ip := range ips {
		if !validIPOrCIDR(ip) {
			return invalid("ips", "%q is not an IP address or CIDR block (for example 192.0.2.10, 10.0.0.0/8, 2001:db8::/32; no IPv6 zone, and IPv4 written as such, not as ::ffff:192.0.2.10)", truncate(ip, 50))
		}
	}
	return nil
}

// validIPOrCIDR is the CRD's rule for IPOrCIDR: isIP(self) ||
// isCIDR(self), 2 to 49 characters. Kubernetes' CEL parses with net/netip
// but refuses what netip accepts and a cluster should not store: an IPv6
// zone (fe80::1%eth0) and an IPv4-mapped IPv6 address or block
// (::ffff:192.0.2.1).
func validIPOrCIDR(s string) bool {
	if n := utf8.RuneCountInString(s); n < keysv1.IPOrCIDRMinLength || n > keysv1.IPOrCIDRMaxLength {
		return false
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Zone() == "" && !a.Is4In6()
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return !p.Addr().Is4In6()
	}
	return false
}

// duplicate returns a value the list holds twice: the CRD keeps these
// lists as sets, and would refuse them with a less helpful message.
func duplicate(list []string) string {
	seen := make(map[string]bool, len(list))
	for _, v := range list {
		if seen[v] {
			return v
		}
		seen[v] = true
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// Page returns items[offset:offset+limit], clamped; limit 0 means all.
func Page[T any](items []T, offset, limit int) []T {
	if offset < 0 || offset >= len(items) {
		return nil
	}
	end := len(items)
	if limit > 0 && offset+limit < end {
		end = offset + limit
	}
	return items[offset:end]
}

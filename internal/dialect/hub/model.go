package hub

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

// apiKey is the product's ApiKey object, field for field.
type apiKey struct {
	ID      string   `json:"id"`
	HubID   string   `json:"hub_id"`
	Name    string   `json:"name"`
	Creator creator  `json:"creator"`
	Secret  string   `json:"secret"`
	RoleID  string   `json:"role_id"`
	IPs     []string `json:"ips"` // null when the key may be used from anywhere
	State   keyState `json:"state"`
	Events  events   `json:"events"`
}

// creator is the product's CreatorScope.
type creator struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

type keyState struct {
	Current string      `json:"current"`
	Changed time.Time   `json:"changed"`
	Error   *stateError `json:"error,omitempty"`
}

type stateError struct {
	Message string    `json:"message"`
	Time    time.Time `json:"time"`
}

// events are required timestamps; one that has not happened is the zero
// time ("0001-01-01T00:00:00Z"), as the product itself answers.
type events struct {
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	Deleted time.Time `json:"deleted"`
}

// role is the product's Role object.
type role struct {
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	Root         bool              `json:"root"`
	Default      *string           `json:"default"` // always null: every role is custom
	Rank         int               `json:"rank"`
	Identifier   string            `json:"identifier"`
	Creator      creator           `json:"creator"`
	Capabilities roleCapabilities  `json:"capabilities"`
	Extra        map[string]string `json:"extra,omitempty"`
	HubID        string            `json:"hub_id"`
	State        roleState         `json:"state"`
	Events       events            `json:"events"`
}

type roleCapabilities struct {
	All      bool     `json:"all"`
	Specific []string `json:"specific"`
}

type roleState struct {
	Current string    `json:"current"`
	Changed time.Time `json:"changed"`
}

// Envelopes of successful answers.
type dataEnvelope struct {
	Data     any       `json:"data"`
	Includes *includes `json:"includes,omitempty"`
}

type includes struct {
	Roles map[string]role `json:"roles"`
}

// States of ApiKeyState.current that keys reach here.
const (
	stateNew      = "new"
	stateLive     = "live"
	stateInactive = "inactive"
	stateDeleted  = "deleted"
)

// noID stands for an unknown creator, and is the role_id of a key without
// a role (made with kubectl or another dialect): the ID schema requires
// 24 hex digits, and no role has this ID.
const noID = "000000000000000000000000"

// ipsAttribute, kept with a key (keystore.Key.Attributes), records that
// the client set ips to [] rather than null or nothing, so the answers
// show [] back. Both mean "any address" and store the same spec.
const ipsAttribute = "hub.ips"

// Extra keys of a Role.
const (
	extraDescription = "description"
	// extraPermissions holds, comma-separated, the role's permissions
	// that are not capabilities of the product (capabilities.specific may
	// hold only those).
	extraPermissions = "permissions"
)

// maskFill follows the key prefix in a masked secret: clearly not a
// token, so it never verifies and secret scanners do not flag it.
const maskFill = "********"

// toAPIKey shows a key; secret is the plaintext on create, and the
// masked prefix everywhere else.
func toAPIKey(k *keystore.Key, secret string) apiKey {
	if secret == "" {
		secret = k.KeyPrefix + maskFill
	}
	var ips []string
	switch {
	case len(k.AllowedIPs) > 0:
		ips = k.AllowedIPs
	case k.Attributes[ipsAttribute] == "[]":
		ips = []string{}
	}
	return apiKey{
		ID: k.ID, HubID: k.Namespace, Name: k.Name, Creator: creatorOf(k.CreatedBy),
		Secret: secret, RoleID: roleIDOf(k), IPs: ips, State: stateOf(k),
		Events: events{Created: k.CreatedAt.UTC(), Updated: k.UpdatedAt.UTC()},
	}
}

// roleIDOf is the key's role_id: its role's ID, or noID for a key made
// without a role.
func roleIDOf(k *keystore.Key) string {
	if k.RoleID == "" {
		return noID
	}
	return k.RoleID
}

// toDeleted shows a key that a DELETE has just removed.
func toDeleted(k *keystore.Key, now time.Time) apiKey {
	out := toAPIKey(k, "")
	now = now.UTC()
	out.State = keyState{Current: stateDeleted, Changed: now}
	out.Events.Deleted = now
	return out
}

// currentState maps the Ready condition's reason to ApiKeyState.current.
func currentState(reason string) string {
	switch reason {
	case keysv1.ReasonIssued:
		return stateLive
	case keystore.StatePending:
		return stateNew
	default:
		return stateInactive
	}
}

func stateOf(k *keystore.Key) keyState {
	changed := k.StateChangedAt
	if changed.IsZero() {
		changed = k.CreatedAt
	}
	s := keyState{Current: currentState(k.State), Changed: changed.UTC()}
	if s.Current == stateInactive && k.State != keysv1.ReasonDisabled && k.State != keysv1.ReasonExpired {
		// Anything else that stops a key is a fault someone must fix.
		msg := k.StateMessage
		if msg == "" {
			msg = k.State
		}
		s.Error = &stateError{Message: msg, Time: s.Changed}
	}
	return s
}

// creatorOf turns the recorded creator (access.Caller.Name) into a
// CreatorScope. The ID is a stable digest of the identity because the
// schema requires 24 hex digits and Kubernetes identities have no such ID.
func creatorOf(createdBy string) creator {
	switch {
	case createdBy == "":
		// Made with kubectl, Helm or GitOps: no API caller recorded.
		return creator{ID: noID, Type: "platform"}
	case strings.HasPrefix(createdBy, "apikey:"):
		return creator{ID: digestID(createdBy), Type: "api-key"}
	default:
		return creator{ID: digestID(createdBy), Type: "account"}
	}
}

func digestID(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:12])
}

// toRole shows an ApiKeyRole as the product's Role: "*" is all: true,
// permissions that are capabilities of the product go to
// capabilities.specific, and any other (invoices:read) to
// extra.permissions, comma-separated, since the schema allows only its
// capabilities in specific.
func toRole(r *keystore.Role) role {
	caps := roleCapabilities{Specific: []string{}}
	var other []string
	for _, p := range r.Permissions {
		switch {
		case p == "*":
			caps.All = true
		case capabilitySet[p]:
			caps.Specific = append(caps.Specific, p)
		default:
			other = append(other, p)
		}
	}
	var extra map[string]string
	if r.Description != "" || len(other) > 0 {
		extra = map[string]string{}
		if r.Description != "" {
			extra[extraDescription] = r.Description
		}
		if len(other) > 0 {
			extra[extraPermissions] = strings.Join(other, ",")
		}
	}
	created := r.CreatedAt.UTC()
	return role{
		ID: r.ID, Name: r.Name, Identifier: r.Name, Creator: creator{ID: noID, Type: "platform"},
		Capabilities: caps, Extra: extra, HubID: r.Namespace,
		State:  roleState{Current: stateLive, Changed: created},
		Events: events{Created: created, Updated: created},
	}
}

package hub

import (
	"context"
	"errors"
	"net/http"

	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/dialect/httpjson"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

func (h *handler) list(w http.ResponseWriter, r *http.Request, req request) error {
	q, e := parseListQuery(r.URL.RawQuery)
	if e != nil {
		return e
	}
	keys, _, err := h.store.List(r.Context(), scopes, req.hub, q.opts)
	if err != nil {
		return err
	}
	out := dataEnvelope{}
	data := make([]apiKey, 0, len(keys))
	for _, k := range keys {
		data = append(data, toAPIKey(k, ""))
	}
	out.Data = data
	if q.includeRoles {
		if out.Includes, err = h.roles(r.Context(), req.hub, keys); err != nil {
			return err
		}
	}
	httpjson.Write(w, http.StatusOK, "application/json", out)
	return nil
}

func (h *handler) get(w http.ResponseWriter, r *http.Request, req request) error {
	includeRoles, e := parseGetQuery(r.URL.RawQuery)
	if e != nil {
		return e
	}
	id, e := keyID(req.id)
	if e != nil {
		return e
	}
	k, err := h.store.Get(r.Context(), scopes, req.hub, keystore.ByID(id))
	if err != nil {
		return err
	}
	out := dataEnvelope{Data: toAPIKey(k, "")}
	if includeRoles {
		if out.Includes, err = h.roles(r.Context(), req.hub, []*keystore.Key{k}); err != nil {
			return err
		}
	}
	httpjson.Write(w, http.StatusOK, "application/json", out)
	return nil
}

// roles fetches the role of each key once. A role deleted since the key
// named it is left out; the key's role_id still says which it was.
func (h *handler) roles(ctx context.Context, hub string, keys []*keystore.Key) (*includes, error) {
	inc := &includes{Roles: map[string]role{}}
	for _, k := range keys {
		if _, done := inc.Roles[k.RoleID]; done || k.RoleID == "" {
			continue
		}
		ro, err := h.store.GetRole(ctx, scopes, hub, keystore.ByID(k.RoleID))
		switch {
		case errors.Is(err, keystore.ErrRoleNotFound):
		case err != nil:
			return nil, err
		default:
			inc.Roles[k.RoleID] = toRole(ro)
		}
	}
	return inc, nil
}

func (h *handler) create(w http.ResponseWriter, r *http.Request, req request) error {
	f, e := readBody(w, r)
	if e != nil {
		return e
	}
	body, e := parseCreate(f)
	if e != nil {
		return e
	}
	n := keystore.NewKey{Name: body.name, AllowedIPs: body.ips}
	if body.emptyIPs {
		n.Attributes = map[string]string{ipsAttribute: "[]"}
	}
	// Validate before any store call, so bad input is a 422 whatever
	// the role; the store checks again.
	if err := keystore.ValidateNew(&n, h.now()); err != nil {
		return err
	}
	// The store resolves the role: a create needs only the create right.
	n.RoleID = body.roleID
	issued, err := h.store.Create(keystore.WithDelivery(r.Context()), scopes, req.hub, n)
	if err != nil {
		return h.roleError(r, err)
	}
	w.Header().Set("Location", BasePath+"/"+issued.ID)
	httpjson.Write(w, http.StatusCreated, "application/json", dataEnvelope{Data: toAPIKey(&issued.Key, issued.Token)})
	if httpjson.Sent(w) {
		issued.Delivered()
	}
	return nil
}

func (h *handler) update(w http.ResponseWriter, r *http.Request, req request) error {
	f, e := readBody(w, r)
	if e != nil {
		return e
	}
	body, e := parseUpdate(f)
	if e != nil {
		return e
	}
	id, e := keyID(req.id)
	if e != nil {
		return e
	}
	u := keystore.KeyUpdate{Name: body.name, AllowedIPs: body.ips}
	if body.ips != nil {
		// [] is shown back as []; null and a list clear the record.
		mark := ""
		if body.emptyIPs {
			mark = "[]"
		}
		u.Attributes = map[string]string{ipsAttribute: mark}
	}
	if err := keystore.ValidateUpdate(&u); err != nil {
		return err
	}
	u.RoleID = body.roleID
	k, err := h.store.Update(r.Context(), scopes, req.hub, keystore.ByID(id), u)
	switch {
	case err != nil && body.roleID != nil:
		return h.roleError(r, err)
	case err != nil:
		return err
	}
	httpjson.Write(w, http.StatusOK, "application/json", dataEnvelope{Data: toAPIKey(k, "")})
	return nil
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request, req request) error {
	id, e := keyID(req.id)
	if e != nil {
		return e
	}
	k, err := h.store.Delete(r.Context(), scopes, req.hub, keystore.ByID(id))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, "application/json", dataEnvelope{Data: toDeleted(k, h.now())})
	return nil
}

// roleError is the answer to an error of a call that took role_id from
// the body: a missing role or a role granting too much points at that
// field.
func (h *handler) roleError(r *http.Request, err error) error {
	e := errorFor(r, err)
	if e.Code == codeRole || errors.Is(err, access.ErrEscalation) {
		e.Source = "/role_id"
	}
	return e
}

// keyID reads {apikeyId}. Anything but 24 hex digits cannot name a key,
// so it is a 404 without asking the store.
func keyID(raw string) (string, *apiError) {
	id, ok := parseObjectID(raw)
	if !ok {
		return "", newError(http.StatusNotFound, codeKey, "no API key with this ID in the hub: IDs are 24 hexadecimal characters")
	}
	return id, nil
}

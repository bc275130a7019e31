package extauthz

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"

	"github.com/apikey-operator/apikey-operator/internal/verify"
)

// Context extensions a route sets to state what it requires. Envoy sends
// them in every CheckRequest; the client cannot.
const (
	// PermissionExtension holds the permissions the route needs,
	// comma-separated; all must be granted.
	PermissionExtension = "permission"
	// NamespaceExtension and AudienceExtension say whose keys the route
	// accepts, comma-separated: a key must belong to one of the
	// namespaces, and share an audience when either side names audiences
	// (verify.Request.Namespaces, Audiences). A route that names neither
	// is refused (400, Unscoped) unless the server runs with
	// --verify-any-namespace.
	NamespaceExtension = "namespace"
	AudienceExtension  = "audience"
)

// permissionHeader is verify.PermissionHeader as Envoy sends it.
var permissionHeader = strings.ToLower(verify.PermissionHeader)

// Check answers one CheckRequest. A refusal is a CheckResponse with a
// denied HTTP answer, never a gRPC error: Envoy turns errors into 403s
// (or lets the request through with failure_mode_allow), and the client
// would lose the verdict.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	attrs := req.GetAttributes()
	httpReq := attrs.GetRequest().GetHttp()
	vreq := verify.Request{AnyNamespace: s.backend.AnyNamespace()}
	if msg := readRoute(&vreq, attrs.GetContextExtensions(), httpReq); msg != "" {
		return s.badRequest(msg), nil
	}
	vreq.Token = verify.KeyFromHeaders(s.keyHeaders, func(n string) string { return header(httpReq, n) })
	vreq.IP, vreq.Source = s.addresses(ctx, attrs.GetSource())
	res := s.backend.Verify(&vreq)
	if res.Code == verify.Valid {
		s.backend.Answered(200)
		return s.allowed(httpReq, res), nil
	}
	return s.denied(res), nil
}

// readRoute reads what the route states into req: the permissions it
// needs (context extension and, additively, the permission header) and
// whose keys it accepts (context extensions only: a client's header must
// never widen the scope), with forward-auth's bounds.
func readRoute(req *verify.Request, ext map[string]string, r *authv3.AttributeContext_HttpRequest) string {
	if v, ok := ext[PermissionExtension]; ok {
		req.Permissions = verify.AppendList(req.Permissions, v)
	}
	if v := header(r, permissionHeader); v != "" {
		req.Permissions = verify.AppendList(req.Permissions, v)
	}
	if v, ok := ext[NamespaceExtension]; ok {
		req.Namespaces = verify.AppendList(req.Namespaces, v)
	}
	if v, ok := ext[AudienceExtension]; ok {
		req.Audiences = verify.AppendList(req.Audiences, v)
	}
	if msg := verify.CheckPermissions(req.Permissions); msg != "" {
		return msg
	}
	return verify.CheckScope(req.Namespaces, req.Audiences, "context extension "+NamespaceExtension, "context extension "+AudienceExtension)
}

// header looks a request header up by its lower-case name. Envoy sends
// the headers as a map, or, with encode_raw_headers, as a list.
func header(r *authv3.AttributeContext_HttpRequest, name string) string {
	if m := r.GetHeaders(); len(m) > 0 {
		return m[name]
	}
	for _, h := range r.GetHeaderMap().GetHeaders() {
		if strings.EqualFold(h.GetKey(), name) {
			if v := h.GetValue(); v != "" {
				return v
			}
			return string(h.GetRawValue())
		}
	}
	return ""
}

// addresses are the client's address, checked against allowedIPs, and the
// address the brute-force guard charges. The gRPC peer is the proxy, never
// the client: source.address names the client, and only a trusted proxy's
// word for it counts. From any other peer the client's address is unknown
// (keys with allowedIPs are refused) and failures are charged to the peer.
func (s *Server) addresses(ctx context.Context, src *authv3.AttributeContext_Peer) (ip, source netip.Addr) {
	from := peerAddr(ctx)
	if !s.backend.TrustedProxy(from) {
		return netip.Addr{}, from
	}
	a, err := netip.ParseAddr(src.GetAddress().GetSocketAddress().GetAddress())
	if err != nil {
		return netip.Addr{}, from
	}
	a = verify.NormalizeAddr(a)
	return a, a
}

func peerAddr(ctx context.Context) netip.Addr {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return netip.Addr{}
	}
	if tcp, ok := p.Addr.(*net.TCPAddr); ok {
		return verify.NormalizeAddr(tcp.AddrPort().Addr())
	}
	return netip.Addr{}
}

// The headers of the answers, in the lower case Envoy uses.
var (
	namespaceHeader   = strings.ToLower(verify.NamespaceHeader)
	nameHeader        = strings.ToLower(verify.NameHeader)
	permissionsHeader = strings.ToLower(verify.PermissionsHeader)
	consumerHeader    = strings.ToLower(verify.ConsumerHeader)
	codeHeader        = strings.ToLower(verify.CodeHeader)
)

// okStatus is shared by every allowed answer; answers are only read
// (marshalled) after Check returns, never changed.
var okStatus = &status.Status{Code: int32(codes.OK)}

// okAnswer is an allowed answer in one allocation instead of ten: the
// messages are only read (marshalled) after Check returns.
type okAnswer struct {
	resp    authv3.CheckResponse
	oneof   authv3.CheckResponse_OkResponse
	ok      authv3.OkHttpResponse
	options [4]corev3.HeaderValueOption
	values  [4]corev3.HeaderValue
	ptrs    [4]*corev3.HeaderValueOption
	remove  [maxKeyHeaders + 1]string
}

// allowed tells Envoy to let the request through with the key's identity,
// overwriting any identity header the client sent, and without the key's
// headers, so the backend never sees the token. A key without a consumer
// removes a client's X-ApiKey-Consumer, which would otherwise reach the
// backend as if the gateway had vouched for it.
func (s *Server) allowed(r *authv3.AttributeContext_HttpRequest, res verify.Result) *authv3.CheckResponse {
	k := res.Key
	a := &okAnswer{}
	identity := [4][2]string{{namespaceHeader, k.Namespace}, {nameHeader, k.Name}, {permissionsHeader, k.PermissionsHeader}, {consumerHeader, k.Consumer}}
	headers := 3
	if k.Consumer != "" {
		headers = 4
	}
	for i, kv := range identity[:headers] {
		a.values[i] = corev3.HeaderValue{Key: kv[0], Value: kv[1]}
		a.options[i].Header = &a.values[i]
		a.options[i].AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		a.ptrs[i] = &a.options[i]
	}
	a.ok.Headers = a.ptrs[:headers]
	// Remove only the key headers the request carries: a smaller answer.
	n := 0
	for _, h := range s.keyHeaders {
		if header(r, h) != "" {
			a.remove[n] = h
			n++
		}
	}
	if k.Consumer == "" && header(r, consumerHeader) != "" {
		a.remove[n] = consumerHeader
		n++
	}
	a.ok.HeadersToRemove = a.remove[:n:n]
	verify.RateLimitHeaders(res, func(name, value string) {
		a.ok.ResponseHeadersToAdd = append(a.ok.ResponseHeadersToAdd, overwrite(strings.ToLower(name), value))
	})
	a.oneof.OkResponse = &a.ok
	a.resp.Status, a.resp.HttpResponse = okStatus, &a.oneof
	return &a.resp
}

func overwrite(name, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: name, Value: value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// grpcCodes tell Envoy's logs and stats why a request was refused; Envoy
// itself only looks at whether the code is OK.
func grpcCode(httpStatus int) codes.Code {
	switch httpStatus {
	case 401:
		return codes.Unauthenticated
	case 403:
		return codes.PermissionDenied
	case 429:
		return codes.ResourceExhausted
	case 400:
		return codes.InvalidArgument
	case 503:
		return codes.Unavailable
	}
	return codes.Internal
}

// denied is the refusal of a verdict, with forward-auth's status and
// headers.
func (s *Server) denied(res verify.Result) *authv3.CheckResponse {
	if res.Code == verify.Unscoped {
		return s.deniedWith(400, res.Code.String(), verify.UnscopedMessage("context extension "+NamespaceExtension, "context extension "+AudienceExtension),
			[]*corev3.HeaderValueOption{overwrite(codeHeader, res.Code.String()), overwrite("cache-control", "no-store")})
	}
	code := res.Code.HTTPStatus()
	hs := []*corev3.HeaderValueOption{overwrite(codeHeader, res.Code.String()), overwrite("cache-control", "no-store")}
	if code == 401 {
		hs = append(hs, overwrite("www-authenticate", `Bearer realm="apikey"`))
	}
	verify.RateLimitHeaders(res, func(name, value string) { hs = append(hs, overwrite(strings.ToLower(name), value)) })
	return s.deniedWith(code, res.Code.String(), res.Code.String(), hs)
}

// badRequest refuses a request the route itself got wrong (too many or
// too long permissions): a gateway configuration error, reported as 400
// like forward-auth does.
func (s *Server) badRequest(msg string) *authv3.CheckResponse {
	return s.deniedWith(400, invalidRoute, msg, []*corev3.HeaderValueOption{overwrite(codeHeader, invalidRoute), overwrite("cache-control", "no-store")})
}

// invalidRoute is the x-apikey-code of a refusal the route caused.
const invalidRoute = "InvalidRoute"

// deniedWith builds a refusal: name is the verdict (or invalidRoute),
// text what a person reads. The JSON body carries the message only when
// it says more than the name.
func (s *Server) deniedWith(code int, name, text string, hs []*corev3.HeaderValueOption) *authv3.CheckResponse {
	s.backend.Answered(code)
	body := ""
	switch s.bodyShape {
	case BodyText:
		body = text + "\n"
		hs = append(hs, overwrite("content-type", "text/plain; charset=utf-8"))
	case BodyJSON:
		msg := ""
		if text != name {
			msg = `,"message":` + strconv.Quote(text)
		}
		body = `{"code":` + strconv.Quote(name) + msg + `,"status":` + strconv.Itoa(code) + "}\n"
		hs = append(hs, overwrite("content-type", "application/json"))
	}
	return &authv3.CheckResponse{
		Status: &status.Status{Code: int32(grpcCode(code)), Message: text},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(code)},
			Headers: hs,
			Body:    body,
		}},
	}
}

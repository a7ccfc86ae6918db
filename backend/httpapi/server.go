// Package httpapi carries the backend contract (../openapi.yaml) over
// HTTP/JSON: Handler serves any backend.Backend, so `parley dev` can put the
// demo business on a real port, and Client is the backend.Backend of a
// tenant whose business system speaks the contract.
package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/parleyhq/parley/backend"
	"github.com/parleyhq/parley/internal/e164"
)

// Route is one operation of the contract: its method and its path template
// as written in openapi.yaml (and understood by net/http's ServeMux).
type Route struct {
	Method, Path string
}

// The contract's operations. Both the Handler and the Client are written
// against these, and a test holds openapi.yaml to the same list.
var (
	routeProfiles     = Route{http.MethodGet, "/profiles"}
	routeServices     = Route{http.MethodGet, "/services"}
	routeAvailability = Route{http.MethodGet, "/services/{service_id}/availability"}
	routeBookings     = Route{http.MethodGet, "/profiles/{profile_id}/bookings"}
	routeCancel       = Route{http.MethodPost, "/profiles/{profile_id}/bookings/{booking_id}/cancel"}
	routeAccount      = Route{http.MethodGet, "/profiles/{profile_id}/account"}
	routeSubscription = Route{http.MethodGet, "/profiles/{profile_id}/subscription"}
)

// Routes lists the operations the Handler serves.
func Routes() []Route {
	return []Route{routeProfiles, routeServices, routeAvailability, routeBookings,
		routeCancel, routeAccount, routeSubscription}
}

// Error codes of the contract's error body {"error": {"code", "message"}}.
const (
	CodeUnauthorized         = "unauthorized"
	CodeNotFound             = "not_found"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeInvalidRequest       = "invalid_request"
	CodeCancellationRefused  = "cancellation_refused"
	CodeUnavailable          = "unavailable"
	CodeUpstreamUnauthorized = "upstream_unauthorized"
	CodeInternal             = "internal"
)

// errorBody is the contract's error shape.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// refusalBody is the 409 answer to a cancellation the policy refuses: the
// error shape, so generic clients see a failure, plus the full result, so
// Parley's client can tell the customer the reason and the policy.
type refusalBody struct {
	Error  errorDetail          `json:"error"`
	Result backend.CancelResult `json:"result"`
}

type profilesBody struct {
	Profiles []backend.Profile `json:"profiles"`
}

type servicesBody struct {
	Services []backend.Service `json:"services"`
}

type availabilityBody struct {
	ServiceID string         `json:"service_id"`
	Date      string         `json:"date"`
	Slots     []backend.Slot `json:"slots"`
}

type bookingsBody struct {
	Bookings []backend.Booking `json:"bookings"`
}

const dateLayout = "2006-01-02"

// Handler serves b under the contract, to callers presenting
// "Authorization: Bearer <token>". There is no unauthenticated mode: with an
// empty token every request is refused. Mount it at the base URL's path
// (with http.StripPrefix when that is not the root).
func Handler(b backend.Backend, token string) http.Handler {
	s := &server{b: b, want: sha256.Sum256([]byte(token)), open: token != ""}
	mux := http.NewServeMux()
	mux.HandleFunc(pattern(routeProfiles), s.profiles)
	mux.HandleFunc(pattern(routeServices), s.services)
	mux.HandleFunc(pattern(routeAvailability), s.availability)
	mux.HandleFunc(pattern(routeBookings), s.bookings)
	mux.HandleFunc(pattern(routeCancel), s.cancel)
	mux.HandleFunc(pattern(routeAccount), s.account)
	mux.HandleFunc(pattern(routeSubscription), s.subscription)
	// Everything else gets the contract's JSON error rather than
	// ServeMux's plain-text 404 and 405.
	mux.HandleFunc("/", s.fallback)
	return s.authenticate(mux)
}

func pattern(r Route) string { return r.Method + " " + r.Path }

type server struct {
	b    backend.Backend
	want [sha256.Size]byte
	open bool // a token is configured
}

// authenticate checks the bearer token in constant time. Both sides are
// hashed first because subtle.ConstantTimeCompare returns early on a length
// mismatch, which would leak the token's length.
func (s *server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := bearer(r.Header.Get("Authorization"))
		sum := sha256.Sum256([]byte(got))
		if !s.open || !ok || subtle.ConstantTimeCompare(sum[:], s.want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="parley-backend"`)
			writeError(w, http.StatusUnauthorized, CodeUnauthorized, "missing or wrong bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearer extracts the token of an Authorization header; the scheme is
// case-insensitive (RFC 7235).
func bearer(h string) (string, bool) {
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	return strings.TrimSpace(h[len(scheme):]), true
}

func (s *server) profiles(w http.ResponseWriter, r *http.Request) {
	phone := r.URL.Query().Get("phone")
	// A '+' not percent-encoded in a query decodes as a space; accept it
	// rather than make every caller get the encoding right.
	if strings.HasPrefix(phone, " ") {
		phone = "+" + phone[1:]
	}
	if !e164.Valid(phone) {
		writeError(w, http.StatusBadRequest, CodeInvalidRequest, "phone must be an E.164 number such as +447700900123")
		return
	}
	ps, err := s.b.ProfilesByPhone(r.Context(), phone)
	if err != nil {
		writeBackendError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, profilesBody{Profiles: nonNil(ps)})
}

func (s *server) services(w http.ResponseWriter, r *http.Request) {
	svcs, err := s.b.Services(r.Context())
	if err != nil {
		writeBackendError(w, err)
		return
	}
	svcs = nonNil(svcs)
	for i := range svcs {
		// Duration is not on the wire; make sure its wire twin is set.
		if svcs[i].DurationMin == 0 {
			svcs[i].DurationMin = int(svcs[i].Duration / time.Minute)
		}
	}
	writeJSON(w, http.StatusOK, servicesBody{Services: svcs})
}

func (s *server) availability(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.Query().Get("date")
	day, err := time.Parse(dateLayout, raw)
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeInvalidRequest, "date must be YYYY-MM-DD")
		return
	}
	id := r.PathValue("service_id")
	slots, err := s.b.Availability(r.Context(), id, day)
	if err != nil {
		writeBackendError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, availabilityBody{ServiceID: id, Date: raw, Slots: nonNil(slots)})
}

func (s *server) bookings(w http.ResponseWriter, r *http.Request) {
	filter := backend.BookingFilter(r.URL.Query().Get("filter"))
	if filter == "" {
		filter = backend.Upcoming
	}
	if filter != backend.Upcoming && filter != backend.Past {
		writeError(w, http.StatusBadRequest, CodeInvalidRequest, "filter must be upcoming or past")
		return
	}
	bks, err := s.b.Bookings(r.Context(), r.PathValue("profile_id"), filter)
	if err != nil {
		writeBackendError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, bookingsBody{Bookings: nonNil(bks)})
}

func (s *server) cancel(w http.ResponseWriter, r *http.Request) {
	res, err := s.b.CancelBooking(r.Context(), r.PathValue("profile_id"), r.PathValue("booking_id"))
	if err != nil {
		writeBackendError(w, err)
		return
	}
	if !res.Cancelled {
		reason := res.Reason
		if reason == "" {
			reason = "the booking cannot be cancelled"
		}
		writeJSON(w, http.StatusConflict, refusalBody{
			Error:  errorDetail{Code: CodeCancellationRefused, Message: reason},
			Result: res,
		})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *server) account(w http.ResponseWriter, r *http.Request) {
	a, err := s.b.Account(r.Context(), r.PathValue("profile_id"))
	if err != nil {
		writeBackendError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *server) subscription(w http.ResponseWriter, r *http.Request) {
	sub, err := s.b.Subscription(r.Context(), r.PathValue("profile_id"))
	if err != nil {
		writeBackendError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, sub)
}

// fallback answers what no route matched: 405 when the path is the
// contract's but the method is not, 404 otherwise.
func (s *server) fallback(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, rt := range Routes() {
		if matchPath(rt.Path, r.URL.Path) {
			allow = append(allow, rt.Method)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "method not allowed")
		return
	}
	writeError(w, http.StatusNotFound, CodeNotFound, "no such operation")
}

// matchPath reports whether path fits a template whose {name} segments
// match any one non-empty segment.
func matchPath(template, path string) bool {
	ts, ps := strings.Split(template, "/"), strings.Split(path, "/")
	if len(ts) != len(ps) {
		return false
	}
	for i := range ts {
		if strings.HasPrefix(ts[i], "{") {
			if ps[i] == "" {
				return false
			}
			continue
		}
		if ts[i] != ps[i] {
			return false
		}
	}
	return true
}

// writeBackendError maps the typed errors to statuses, the inverse of the
// client's mapping, so a Client in front of a Handler returns the error the
// backend behind it did.
func writeBackendError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, backend.ErrNotFound):
		writeError(w, http.StatusNotFound, CodeNotFound, err.Error())
	case errors.Is(err, backend.ErrInvalid):
		writeError(w, http.StatusBadRequest, CodeInvalidRequest, err.Error())
	case errors.Is(err, backend.ErrUnavailable):
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "the business system is unavailable")
	case errors.Is(err, backend.ErrUnauthorized):
		// Our caller's credentials were fine; the system behind us
		// refused ours. That is a bad gateway, not a 401 for the caller.
		writeError(w, http.StatusBadGateway, CodeUpstreamUnauthorized, "the business system refused its credentials")
	default:
		// Unexpected errors may carry internals; say nothing of them.
		writeError(w, http.StatusInternalServerError, CodeInternal, "internal error")
	}
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	// Account data must not sit in shared caches.
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the status is sent; a write error has nowhere to go
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

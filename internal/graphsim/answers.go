package graphsim

import (
	"net/http"
	"time"

	"github.com/jitaccess/jitaccess/internal/simkit"
)

// Graph's answers: JSON bodies, the error shape and its texts.

// Graph's own texts for the answers that callers interpret.
const (
	MsgAlreadyExists   = "One or more added object references already exist for the following modified properties: 'members'."
	MsgRemovedNotExist = "One or more removed object references do not exist for the following modified properties: 'members'."
	MsgInvalidPayload  = "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format."
	MsgEmptyToken      = "Access token is empty."
	MsgInvalidToken    = "Access token validation failure. Invalid audience."
)

func notFound(w http.ResponseWriter, r *http.Request, id string) {
	writeError(w, r, http.StatusNotFound, "Request_ResourceNotFound",
		"Resource '"+id+"' does not exist or one of its queried reference-property objects are not present.", 0)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	simkit.WriteJSON(w, status, "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8", v)
}

// writeError answers with Graph's error shape.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string, retryAfter time.Duration) {
	simkit.SetRetryAfter(w.Header(), retryAfter)
	writeJSON(w, status, map[string]any{
		"error": map[string]any{
			"code":    code,
			"message": msg,
			"innerError": map[string]any{
				"date":              time.Now().UTC().Format("2006-01-02T15:04:05"),
				"request-id":        w.Header().Get("request-id"),
				"client-request-id": w.Header().Get("client-request-id"),
			},
		},
	})
}

// errorText gives Graph's code and message for an injected status.
func errorText(status int) (string, string) {
	switch status {
	case http.StatusTooManyRequests:
		return "TooManyRequests", "Too many requests. Please retry after the time given in the Retry-After header."
	case http.StatusServiceUnavailable:
		return "serviceNotAvailable", "The service is temporarily unavailable. Please retry after a delay."
	case http.StatusGatewayTimeout:
		return "timeout", "The operation timed out before it could be completed."
	case http.StatusBadGateway:
		return "badGateway", "The service received an invalid response from an upstream server."
	case http.StatusInternalServerError:
		return "generalException", "An unspecified error has occurred."
	case http.StatusForbidden:
		return "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
	case http.StatusUnauthorized:
		return "InvalidAuthenticationToken", "Access token has expired or is not yet valid."
	case http.StatusNotFound:
		return "Request_ResourceNotFound", "Resource does not exist or one of its queried reference-property objects are not present."
	case http.StatusBadRequest:
		return "Request_BadRequest", "Invalid request."
	}
	return "UnknownError", http.StatusText(status)
}

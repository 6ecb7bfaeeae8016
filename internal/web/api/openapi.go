package api

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/mailca/mailca/internal/apikey"
)

// schemas are the component schemas the route table names.
//
//go:embed schemas.json
var schemas []byte

// Document returns the OpenAPI 3.1 document of the API. Its paths come
// from the route table, the same one the mux is built from; its schemas
// from schemas.json, against which the tests validate real responses.
func Document() ([]byte, error) {
	var comps map[string]any
	if err := json.Unmarshal(schemas, &comps); err != nil {
		return nil, fmt.Errorf("api: schemas.json: %w", err)
	}
	// An enrolment with its history is an enrolment and one more member;
	// built here, as allOf cannot extend a closed object.
	var copied struct{ Enrolment map[string]any }
	if err := json.Unmarshal(schemas, &copied); err != nil || copied.Enrolment == nil {
		return nil, fmt.Errorf("api: schemas.json has no Enrolment: %v", err)
	}
	withHistory := copied.Enrolment
	withHistory["required"] = append(withHistory["required"].([]any), "history")
	withHistory["properties"].(map[string]any)["history"] = map[string]any{"type": "array", "items": ref("Event")}
	comps["EnrolmentWithHistory"] = withHistory
	paths := map[string]map[string]any{}
	for _, rt := range routeTable() {
		item := paths[rt.Path]
		if item == nil {
			item = map[string]any{}
			paths[rt.Path] = item
		}
		if _, dup := item[strings.ToLower(rt.Method)]; dup {
			return nil, fmt.Errorf("api: route %s %s twice", rt.Method, rt.Path)
		}
		for _, name := range []string{rt.Body} {
			if _, ok := comps[name]; name != "" && !ok {
				return nil, fmt.Errorf("api: route %s %s names unknown schema %s", rt.Method, rt.Path, name)
			}
		}
		item[strings.ToLower(rt.Method)] = operation(rt, comps)
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "mailca integration API",
			"version":     "1",
			"description": "Invite, refer, follow, approve, fetch and revoke S/MIME certificates. Authenticate with an API key (mailca apikey create) as Authorization: Bearer mca_...; every error is an RFC 9457 problem. See docs/api.md.",
		},
		"servers": []any{map[string]any{"url": Prefix}},
		"paths":   paths,
		"components": map[string]any{
			"schemas": comps,
			"securitySchemes": map[string]any{
				"apiKey": map[string]any{"type": "http", "scheme": "bearer", "description": "an API key, mca_<id>_<secret>"},
			},
			"responses": problemResponses(),
		},
	}
	return json.MarshalIndent(doc, "", "  ")
}

var errorStatuses = map[int]string{
	400: "malformed or invalid request", 401: "no key, or a key that is unknown, revoked or expired",
	403: "the key lacks the scope or the policy", 404: "not found", 405: "method not allowed", 409: "conflict",
	413: "body too large", 415: "unsupported media type", 422: "invalid values", 429: "rate limited", 500: "internal error",
}

func problemResponses() map[string]any {
	out := map[string]any{}
	for status, desc := range errorStatuses {
		out["P"+strconv.Itoa(status)] = map[string]any{
			"description": desc,
			"content":     map[string]any{"application/problem+json": map[string]any{"schema": ref("Problem")}},
		}
	}
	return out
}

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

func operation(rt route, comps map[string]any) map[string]any {
	op := map[string]any{"operationId": rt.ID, "summary": rt.Summary, "tags": []string{rt.Tag}}
	if rt.Scope != "" {
		op["security"] = []any{map[string]any{"apiKey": []string{}}}
		op["description"] = "Needs the scope " + string(rt.Scope) + "."
	} else {
		op["security"] = []any{}
	}
	var params []any
	for _, p := range rt.Params {
		schema := map[string]any{"type": p.Type}
		if len(p.Enum) > 0 {
			schema["enum"] = p.Enum
		}
		params = append(params, map[string]any{"name": p.Name, "in": p.In, "required": p.In == "path", "description": p.Desc, "schema": schema})
	}
	if params != nil {
		op["parameters"] = params
	}
	if rt.Body != "" {
		types := rt.BodyTypes
		if types == nil {
			types = []string{"application/json"}
		}
		content := map[string]any{}
		for _, t := range types {
			if t == "application/json" {
				content[t] = map[string]any{"schema": ref(rt.Body)}
			} else {
				content[t] = map[string]any{"schema": map[string]any{"type": "string"}}
			}
		}
		op["requestBody"] = map[string]any{"required": !rt.BodyOptional, "content": content}
	}
	responses := map[string]any{}
	for _, r := range rt.Responses {
		content := map[string]any{}
		if r.Schema != "" {
			content["application/json"] = map[string]any{"schema": ref(r.Schema)}
		}
		for _, t := range r.Types {
			content[t] = map[string]any{"schema": map[string]any{"type": "string"}}
		}
		responses[strconv.Itoa(r.Status)] = map[string]any{"description": r.Desc, "content": content}
	}
	for _, status := range errorsOf(rt) {
		responses[strconv.Itoa(status)] = map[string]any{"$ref": "#/components/responses/P" + strconv.Itoa(status)}
	}
	op["responses"] = responses
	return op
}

// errorsOf lists the problem statuses a route can answer with.
func errorsOf(rt route) []int {
	out := []int{405, 500}
	if rt.Scope != "" {
		out = append(out, 400, 401, 403, 404, 429)
	}
	if rt.Method == http.MethodPost {
		out = append(out, 409, 413, 415, 422)
	}
	return out
}

func (s *server) openAPI(w http.ResponseWriter, r *http.Request, _ *apikey.Key) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, err := w.Write(s.doc)
	return err
}

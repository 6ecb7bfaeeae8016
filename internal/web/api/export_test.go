package api

// RoutePatterns returns the mux pattern of every route, for the test that
// checks them against the OpenAPI document.
func RoutePatterns() []string {
	var out []string
	for _, rt := range routeTable() {
		out = append(out, rt.Method+" "+Prefix+rt.Path)
	}
	return out
}

// SPDX-License-Identifier: Apache-2.0

package nvcf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// HTTPError is a response with status 400 or above from the REST API or the
// gateway, with the fields of its RFC 7807 problem body. It matches the
// status values with errors.Is: 400 ErrInvalid, 401 ErrUnauthenticated,
// 403 ErrPermission, 404 ErrNotFound, 409 ErrConflict, 429 ErrQuota,
// 503 ErrUnavailable, 504 ErrTimeout.
type HTTPError struct {
	StatusCode int
	Type       string
	Title      string
	Detail     string
	Instance   string
	// Problem is the whole decoded body; nil when it was not a JSON
	// object.
	Problem map[string]any
	Method  string
	URL     string
	Header  http.Header
	Body    []byte
}

func (e *HTTPError) Error() string {
	msg := e.Detail
	if msg == "" {
		msg = e.Title
	}
	if msg == "" {
		msg = strings.TrimSpace(string(e.Body))
		if len(msg) > 200 {
			msg = msg[:200]
		}
	}
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	return fmt.Sprintf("nvcf: HTTP %d (%s %s): %s", e.StatusCode,
		e.Method, e.URL, msg)
}

var httpSentinels = map[int]*Error{
	http.StatusBadRequest:         ErrInvalid,
	http.StatusUnauthorized:       ErrUnauthenticated,
	http.StatusForbidden:          ErrPermission,
	http.StatusNotFound:           ErrNotFound,
	http.StatusConflict:           ErrConflict,
	http.StatusTooManyRequests:    ErrQuota,
	http.StatusServiceUnavailable: ErrUnavailable,
	http.StatusGatewayTimeout:     ErrTimeout,
}

// Is matches the status values by HTTP status code; see HTTPError.
func (e *HTTPError) Is(target error) bool {
	s, ok := httpSentinels[e.StatusCode]
	return ok && errors.Is(s, target)
}

func newHTTPError(r *Response, method, u string) *HTTPError {
	e := &HTTPError{StatusCode: r.StatusCode, Method: method, URL: u,
		Header: r.Header, Body: r.Body}
	var p map[string]any
	if json.Unmarshal(r.Body, &p) == nil && p != nil {
		e.Problem = p
		e.Type, _ = p["type"].(string)
		e.Title, _ = p["title"].(string)
		e.Detail, _ = p["detail"].(string)
		e.Instance, _ = p["instance"].(string)
	}
	return e
}

// Response is one HTTP response, read in full.
type Response struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

// RequestID returns the NVCF-REQID header of a gateway response.
func (r *Response) RequestID() string { return r.Header.Get("NVCF-REQID") }

// NVCFStatus returns the NVCF-STATUS header ("fulfilled", ...).
func (r *Response) NVCFStatus() string { return r.Header.Get("NVCF-STATUS") }

// JSON decodes the body into v.
func (r *Response) JSON(v any) error { return json.Unmarshal(r.Body, v) }

// newHTTPClient returns a client that never goes through a proxy from the
// environment: local stacks live on loopback.
func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	}}
}

type httpBase struct {
	BaseURL string
	Key     string
	Client  *http.Client
}

// do sends one request and returns the response whatever its status; only
// transport failures and ctx are errors.
func (c *httpBase) do(ctx context.Context, method, path string, body []byte, header http.Header) (*Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method,
		strings.TrimRight(c.BaseURL, "/")+path, rd)
	if err != nil {
		return nil, err
	}

	for k, v := range header {
		req.Header[k] = v
	}
	if c.Key != "" {
		req.Header.Set("Authorization", "Bearer "+c.Key)
	}
	cl := c.Client
	if cl == nil {
		cl = http.DefaultClient
	}

	resp, err := cl.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &Response{StatusCode: resp.StatusCode, Header: resp.Header,
		Body: data}, nil
}

// doJSON sends v as JSON, checks the status against ok, and decodes the
// response into out (when not nil).
func (c *httpBase) doJSON(ctx context.Context, method, path string, v, out any, ok ...int) error {
	var body []byte
	h := http.Header{}
	if v != nil {
		var err error
		if body, err = json.Marshal(v); err != nil {
			return err
		}
		h.Set("Content-Type", "application/json")
	}
	r, err := c.do(ctx, method, path, body, h)
	if err != nil {
		return err
	}
	if len(ok) == 0 {
		ok = []int{http.StatusOK}
	}
	for _, code := range ok {
		if r.StatusCode == code {
			if out == nil || len(r.Body) == 0 {
				return nil
			}
			return r.JSON(out)
		}
	}
	return newHTTPError(r, method, strings.TrimRight(c.BaseURL, "/")+path)
}

func pathEsc(s string) string { return url.PathEscape(s) }

// APIClient calls the control-plane REST API (nvcf-api). Paths and
// bodies are NVCF's, so it works against any compatible endpoint.
type APIClient struct{ httpBase }

// NewAPIClient returns a client of the API at baseURL that presents key.
func NewAPIClient(baseURL, key string) *APIClient {
	return &APIClient{httpBase{BaseURL: baseURL, Key: key,
		Client: newHTTPClient()}}
}

// Do sends one raw request with an optional JSON body and returns the
// response whatever its status.
func (c *APIClient) Do(ctx context.Context, method, path string, jsonBody any) (*Response, error) {
	var body []byte
	h := http.Header{}
	if jsonBody != nil {
		var err error
		if body, err = json.Marshal(jsonBody); err != nil {
			return nil, err
		}
		h.Set("Content-Type", "application/json")
	}
	return c.do(ctx, method, path, body, h)
}

// HealthCheck describes how the platform probes a function.
type HealthCheck struct {
	Protocol           string `json:"protocol,omitempty"`
	URI                string `json:"uri,omitempty"`
	Port               int    `json:"port,omitempty"`
	Timeout            string `json:"timeout,omitempty"`
	ExpectedStatusCode int    `json:"expectedStatusCode,omitempty"`
}

// FunctionSpec is the body of a function (version) creation.
type FunctionSpec struct {
	Name           string
	InferenceURL   string
	ContainerImage string // e.g. "file:///path/server.py"
	InferencePort  int    // 0 leaves it to the platform
	HealthURI      string
	Health         *HealthCheck
	Args           string
	Env            map[string]string
	Description    string
	Tags           []string
	// Extra holds further NVCF fields by their JSON names.
	Extra map[string]any
}

func (s *FunctionSpec) body() map[string]any {
	b := map[string]any{"name": s.Name, "inferenceUrl": s.InferenceURL,
		"containerImage": s.ContainerImage}
	if s.InferencePort != 0 {
		b["inferencePort"] = s.InferencePort
	}
	if s.HealthURI != "" {
		b["healthUri"] = s.HealthURI
	}
	if s.Health != nil {
		b["health"] = s.Health
	}
	if s.Args != "" {
		b["containerArgs"] = s.Args
	}
	if len(s.Env) > 0 {
		var env []map[string]string
		for k, v := range s.Env {
			env = append(env, map[string]string{"key": k, "value": v})
		}
		b["containerEnvironment"] = env
	}
	if s.Description != "" {
		b["description"] = s.Description
	}
	if len(s.Tags) > 0 {
		b["tags"] = s.Tags
	}
	for k, v := range s.Extra {
		b[k] = v
	}
	return b
}

// Function is a function version's record. Raw holds every field the API
// returned.
type Function struct {
	ID             string         `json:"id"`
	VersionID      string         `json:"versionId"`
	Name           string         `json:"name"`
	Status         string         `json:"status"`
	NcaID          string         `json:"ncaId"`
	ContainerImage string         `json:"containerImage"`
	InferenceURL   string         `json:"inferenceUrl"`
	Raw            map[string]any `json:"-"`
}

// UnmarshalJSON fills the typed fields and keeps the whole record in Raw.
func (f *Function) UnmarshalJSON(data []byte) error {
	type plain Function
	if err := json.Unmarshal(data, (*plain)(f)); err != nil {
		return err
	}
	return json.Unmarshal(data, &f.Raw)
}

// CreateFunction creates a function and its first version.
func (c *APIClient) CreateFunction(ctx context.Context, spec FunctionSpec) (*Function, error) {
	var out struct{ Function Function }
	if err := c.doJSON(ctx, "POST", "/v2/nvcf/functions", spec.body(),
		&out); err != nil {
		return nil, err
	}
	return &out.Function, nil
}

// CreateVersion adds a version to function fid.
func (c *APIClient) CreateVersion(ctx context.Context, fid string, spec FunctionSpec) (*Function, error) {
	var out struct{ Function Function }
	if err := c.doJSON(ctx, "POST", "/v2/nvcf/functions/"+pathEsc(fid)+
		"/versions", spec.body(), &out); err != nil {
		return nil, err
	}
	return &out.Function, nil
}

// GetFunction returns one function version's record.
func (c *APIClient) GetFunction(ctx context.Context, fid, vid string) (*Function, error) {
	var out struct{ Function Function }
	if err := c.doJSON(ctx, "GET", "/v2/nvcf/functions/"+pathEsc(fid)+
		"/versions/"+pathEsc(vid), nil, &out); err != nil {
		return nil, err
	}
	return &out.Function, nil
}

// ListFunctions returns every function version of the account.
func (c *APIClient) ListFunctions(ctx context.Context) ([]Function, error) {
	var out struct{ Functions []Function }
	err := c.doJSON(ctx, "GET", "/v2/nvcf/functions", nil, &out)
	return out.Functions, err
}

// DeleteVersion deletes a version, undeploying it first.
func (c *APIClient) DeleteVersion(ctx context.Context, fid, vid string) error {
	return c.doJSON(ctx, "DELETE", "/v2/nvcf/functions/"+pathEsc(fid)+
		"/versions/"+pathEsc(vid), nil, nil, 200, 204)
}

// DeploymentSpec is one entry of deploymentSpecifications. A zero
// MaxInstances means max(1, MinInstances) and a zero
// MaxRequestConcurrency means 1.
type DeploymentSpec struct {
	GPU                   string   `json:"gpu"`
	InstanceType          string   `json:"instanceType"`
	MinInstances          int      `json:"minInstances"`
	MaxInstances          int      `json:"maxInstances"`
	MaxRequestConcurrency int      `json:"maxRequestConcurrency"`
	Regions               []string `json:"regions,omitempty"`
	Clusters              []string `json:"clusters,omitempty"`
	Backend               string   `json:"backend,omitempty"`
}

// Deployment is a version's deployment record. Raw holds every field.
type Deployment struct {
	DeploymentID      string           `json:"deploymentId"`
	FunctionID        string           `json:"functionId"`
	FunctionVersionID string           `json:"functionVersionId"`
	FunctionStatus    string           `json:"functionStatus"`
	Specs             []DeploymentSpec `json:"deploymentSpecifications"`
	Raw               map[string]any   `json:"-"`
}

// UnmarshalJSON fills the typed fields and keeps the whole record in Raw.
func (d *Deployment) UnmarshalJSON(data []byte) error {
	type plain Deployment
	if err := json.Unmarshal(data, (*plain)(d)); err != nil {
		return err
	}
	return json.Unmarshal(data, &d.Raw)
}

// Deploy deploys version vid of function fid with one or more
// specifications. It returns once the API accepted it; see WaitActive.
func (c *APIClient) Deploy(ctx context.Context, fid, vid string, specs ...DeploymentSpec) (*Deployment, error) {
	if len(specs) == 0 {
		return nil, invalid("Deploy of function %s version %s has no "+
			"DeploymentSpec: pass at least one", fid, vid)
	}
	for i := range specs {
		if specs[i].MaxInstances == 0 {
			specs[i].MaxInstances = specs[i].MinInstances
			if specs[i].MaxInstances < 1 {
				specs[i].MaxInstances = 1
			}
		}
		if specs[i].MaxRequestConcurrency == 0 {
			specs[i].MaxRequestConcurrency = 1
		}
	}
	var out struct{ Deployment Deployment }
	err := c.doJSON(ctx, "POST", "/v2/nvcf/deployments/functions/"+
		pathEsc(fid)+"/versions/"+pathEsc(vid),
		map[string]any{"deploymentSpecifications": specs}, &out)
	if err != nil {
		return nil, err
	}
	return &out.Deployment, nil
}

// GetDeployment returns a version's deployment record.
func (c *APIClient) GetDeployment(ctx context.Context, fid, vid string) (*Deployment, error) {
	var out struct{ Deployment Deployment }
	err := c.doJSON(ctx, "GET", "/v2/nvcf/deployments/functions/"+
		pathEsc(fid)+"/versions/"+pathEsc(vid), nil, &out)
	if err != nil {
		return nil, err
	}
	return &out.Deployment, nil
}

// Undeploy removes a version's deployment.
func (c *APIClient) Undeploy(ctx context.Context, fid, vid string) error {
	return c.doJSON(ctx, "DELETE", "/v2/nvcf/deployments/functions/"+
		pathEsc(fid)+"/versions/"+pathEsc(vid), nil, nil)
}

// DeployFailedError is WaitActive's error for a version whose status
// became ERROR.
type DeployFailedError struct {
	FunctionID, VersionID string
	Function              *Function
}

func (e *DeployFailedError) Error() string {
	info, _ := json.Marshal(e.Function.Raw["healthInfo"])
	return fmt.Sprintf("nvcf: function %s version %s failed to deploy "+
		"(status ERROR): %s", e.FunctionID, e.VersionID, info)
}

// WaitActive polls the version until its status is ACTIVE and returns
// its record. It fails with *DeployFailedError when the status becomes
// ERROR, and with an error wrapping ctx.Err() and naming the last status
// when ctx ends first.
func (c *APIClient) WaitActive(ctx context.Context, fid, vid string) (*Function, error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	status := "unknown"
	for {
		fn, err := c.GetFunction(ctx, fid, vid)
		if err != nil && ctx.Err() == nil {
			return nil, err
		}
		if err == nil {
			status = fn.Status
			switch status {
			case "ACTIVE":
				return fn, nil
			case "ERROR":
				return nil, &DeployFailedError{fid, vid, fn}
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("nvcf: function %s version %s "+
				"is still %s: %w", fid, vid, status, ctx.Err())
		case <-tick.C:
		}
	}
}

// GatewayClient calls the invocation gateway (nvcf-invocation).
type GatewayClient struct{ httpBase }

// NewGatewayClient returns a client of the gateway at baseURL that
// presents key.
func NewGatewayClient(baseURL, key string) *GatewayClient {
	return &GatewayClient{httpBase{BaseURL: baseURL, Key: key,
		Client: newHTTPClient()}}
}

// InvokeOptions adjust one invocation. The zero value invokes the
// function's active version with a JSON body and the default poll
// window.
type InvokeOptions struct {
	VersionID   string
	PollSeconds int // NVCF-POLL-SECONDS; 0 leaves it out
	ContentType string
	Header      http.Header // further headers
}

// Invoke calls POST /v2/nvcf/pexec/functions/{fid}[/versions/{vid}]. It
// returns the Response for 200 (the function's response) and 202 (the poll
// window ended; Poll with its RequestID), and an *HTTPError for 400 and
// above.
func (g *GatewayClient) Invoke(ctx context.Context, fid string, body []byte, opts *InvokeOptions) (*Response, error) {
	if opts == nil {
		opts = &InvokeOptions{}
	}
	path := "/v2/nvcf/pexec/functions/" + pathEsc(fid)
	if opts.VersionID != "" {
		path += "/versions/" + pathEsc(opts.VersionID)
	}
	h := http.Header{}
	for k, v := range opts.Header {
		h[k] = v
	}
	ct := opts.ContentType
	if ct == "" {
		ct = "application/json"
	}
	h.Set("Content-Type", ct)
	if opts.PollSeconds > 0 {
		h.Set("NVCF-POLL-SECONDS", strconv.Itoa(opts.PollSeconds))
	}
	if body == nil {
		body = []byte{}
	}
	return g.checked(ctx, "POST", path, body, h)
}

// Poll calls GET /v2/nvcf/pexec/status/{reqID}, waiting up to
// pollSeconds (0: the gateway's default) for the result. It returns the
// Response for 200 and 202, and an *HTTPError otherwise (404 for an
// unknown id).
func (g *GatewayClient) Poll(ctx context.Context, reqID string, pollSeconds int) (*Response, error) {
	h := http.Header{}
	if pollSeconds > 0 {
		h.Set("NVCF-POLL-SECONDS", strconv.Itoa(pollSeconds))
	}
	return g.checked(ctx, "GET", "/v2/nvcf/pexec/status/"+pathEsc(reqID),
		nil, h)
}

func (g *GatewayClient) checked(ctx context.Context, method, path string, body []byte, h http.Header) (*Response, error) {
	r, err := g.do(ctx, method, path, body, h)
	if err != nil {
		return nil, err
	}
	if r.StatusCode >= 400 {
		return r, newHTTPError(r, method,
			strings.TrimRight(g.BaseURL, "/")+path)
	}
	return r, nil
}

// Call invokes and then polls while the response is 202, until the result
// or ctx's end.
func (g *GatewayClient) Call(ctx context.Context, fid string, body []byte, opts *InvokeOptions) (*Response, error) {
	r, err := g.Invoke(ctx, fid, body, opts)
	poll := 0
	if opts != nil {
		poll = opts.PollSeconds
	}
	for err == nil && r.StatusCode == http.StatusAccepted {
		id := r.RequestID()
		if id == "" {
			return r, fmt.Errorf("nvcf: gateway responded 202 " +
				"without NVCF-REQID")
		}
		r, err = g.Poll(ctx, id, poll)
	}
	return r, err
}

// Health returns nil when GET /health responds 200.
func (g *GatewayClient) Health(ctx context.Context) error {
	_, err := g.checked(ctx, "GET", "/health", nil, nil)
	return err
}

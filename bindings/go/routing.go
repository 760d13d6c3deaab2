// SPDX-License-Identifier: Apache-2.0

package nvcf

/*
#include <stdlib.h>
#include <string.h>
#include <nvcf/routing.h>
*/
import "C"

import (
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// Routing defaults.
const (
	// HeartbeatTimeoutDefault is how old a cluster's heartbeat may be
	// before the cluster counts as unhealthy, when a call passes 0.
	HeartbeatTimeoutDefault = time.Duration(C.NVCF_HEARTBEAT_TIMEOUT_MS_DEFAULT) * time.Millisecond
	routingNameMax          = C.NVCF_ROUTING_NAME_MAX
)

// InstanceType is one instance type a cluster offers for one GPU type.
type InstanceType struct {
	Name        string // e.g. "NCP.GPU.L40S_2x"
	Description string
	Default     bool // the GPU's default instance type
	GPUCount    uint // GPUs per instance, at least 1
}

// GPU is one GPU type of a cluster and how many of its GPUs are in use.
type GPU struct {
	Name          string
	Capacity      uint
	Allocated     uint // may exceed Capacity while a cluster drains
	InstanceTypes []InstanceType
}

// Cluster is one cluster as its agent reports it. Empty Name and Group
// mean the cluster id, an empty Region means "local". A zero Heartbeat
// means the agent never reported one.
type Cluster struct {
	ID         string // letters, digits, '-' and '_'
	Name       string
	Group      string
	Region     string
	Attributes []string
	GPUs       []GPU
	Healthy    bool // the agent reported itself healthy
	Heartbeat  time.Time
}

// PlacementMode splits a placement's instances across eligible clusters.
type PlacementMode int

// Placement modes.
const (
	// PlacementPack fills the first cluster in rank order, then the
	// next.
	PlacementPack PlacementMode = 0
	// PlacementSpread gives one instance per cluster in rank order,
	// round and round.
	PlacementSpread PlacementMode = 1
)

// PlacementSpec is one deployment specification to place.
type PlacementSpec struct {
	GPU          string // required, e.g. "L40S"
	InstanceType string // required, e.g. "NCP.GPU.L40S_1x"
	// Clusters are ids or names; empty means any cluster.
	Clusters []string
	// Backend is a cluster group; empty means any group.
	Backend string
	// Regions; empty means any region.
	Regions []string
	// Attributes every chosen cluster must have.
	Attributes    []string
	InstanceCount uint
	// Now is the current time for heartbeat ages; zero means
	// time.Now().
	Now time.Time
	// HeartbeatTimeout of 0 means HeartbeatTimeoutDefault.
	HeartbeatTimeout time.Duration
	// Exclude lists cluster ids or names that must not get this work.
	Exclude []string
	Mode    PlacementMode
}

// RouteReason is the cause that keeps a cluster out of a placement.
type RouteReason int

// Route reasons; the numbers are frozen by the ABI.
const (
	RouteExcludedByCaller   RouteReason = 1
	RouteNotInClusters      RouteReason = 2
	RouteNotInBackend       RouteReason = 3
	RouteNotInRegions       RouteReason = 4
	RouteMissingAttribute   RouteReason = 5
	RouteUnhealthy          RouteReason = 6
	RouteNoSuchGPU          RouteReason = 7
	RouteNoSuchInstanceType RouteReason = 8
	RouteNoCapacity         RouteReason = 9
)

// String returns the library's name ("UNHEALTHY"), or "UNKNOWN".
func (r RouteReason) String() string {
	return C.GoString(C.nvcf_route_reason_name(C.nvcf_route_reason(r)))
}

// RouteEntry is a cluster that can take a placement.
type RouteEntry struct {
	ClusterID    string
	GPU          string // as the cluster spells it
	InstanceType string // as the cluster spells it
	GPUCount     uint   // GPUs per instance on this cluster
	FreeGPUs     uint
	FreeSlots    uint // instances that fit
	Assigned     uint // instances given to this cluster
}

// Exclusion is a cluster left out of a placement, and why.
type Exclusion struct {
	ClusterID string
	Reason    RouteReason
	Text      string // one line naming the value
}

// Route is the result of Inventory.Place: the eligible clusters in rank
// order, the excluded ones in inventory order, the instances that fit
// nowhere and a paragraph explaining it all.
type Route struct {
	Eligible    []RouteEntry
	Excluded    []Exclusion
	Unplaced    uint
	Explanation string
}

// Assignments maps each cluster that got instances to their number.
func (r *Route) Assignments() map[string]uint {
	m := make(map[string]uint)
	for _, e := range r.Eligible {
		if e.Assigned > 0 {
			m[e.ClusterID] = e.Assigned
		}
	}
	return m
}

// cArena keeps the C memory of one call's arguments; free releases all.
type cArena struct {
	ptrs []unsafe.Pointer
	err  error
}

func (a *cArena) alloc(size C.size_t) unsafe.Pointer {
	p := C.calloc(1, size)
	if p == nil {
		panic("nvcf: out of C memory")
	}
	a.ptrs = append(a.ptrs, p)
	return p
}

// str copies s; "" gives NULL when optional, so the library's default
// applies.
func (a *cArena) str(what, s string, optional bool) *C.char {
	if s == "" && optional {
		return nil
	}
	cs, err := cString(what, s)
	if err != nil {
		if a.err == nil {
			a.err = err
		}
		return nil
	}
	a.ptrs = append(a.ptrs, unsafe.Pointer(cs))
	return cs
}

func (a *cArena) strs(what string, ss []string) (**C.char, C.size_t) {
	if len(ss) == 0 {
		return nil, 0
	}
	size := C.size_t(unsafe.Sizeof((*C.char)(nil)))
	arr := (**C.char)(a.alloc(size * C.size_t(len(ss))))
	sl := unsafe.Slice(arr, len(ss))
	for i, s := range ss {
		sl[i] = a.str(what, s, false)
	}
	return arr, C.size_t(len(ss))
}

func (a *cArena) free() {
	for _, p := range a.ptrs {
		C.free(p)
	}
	a.ptrs = nil
}

func epochMs(t time.Time) C.int64_t {
	if t.IsZero() {
		return 0
	}
	return C.int64_t(t.UnixMilli())
}

func goStr(s *C.char) string {
	if s == nil {
		return ""
	}
	return C.GoString(s)
}

// Inventory is the set of clusters known to a control-plane process
// (nvcf_inventory). Its methods may be called from several goroutines;
// they take turns.
type Inventory struct {
	mu  sync.Mutex
	inv *C.nvcf_inventory
}

// NewInventory returns an empty inventory. Close releases it.
func NewInventory() (*Inventory, error) {
	inv := &Inventory{}
	if err := call(func() C.nvcf_status {
		return C.nvcf_inventory_new(&inv.inv)
	}); err != nil {
		return nil, err
	}
	runtime.SetFinalizer(inv, (*Inventory).Close)
	return inv, nil
}

// Close releases the inventory; later calls fail with ErrClosed or
// return empty results. It is safe to call more than once.
func (inv *Inventory) Close() error {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	C.nvcf_inventory_free(inv.inv)
	inv.inv = nil
	runtime.SetFinalizer(inv, nil)
	return nil
}

// locked runs f with the inventory held, or returns ErrClosed.
func (inv *Inventory) locked(f func(*C.nvcf_inventory) error) error {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if inv.inv == nil {
		return ErrClosed
	}
	return f(inv.inv)
}

// AddCluster adds c, or replaces the cluster with the same id. The
// ErrInvalid *Error names the field at fault (a cluster id that is not a
// single subject token, a GPU without a name, a gpu_count of 0...).
func (inv *Inventory) AddCluster(c Cluster) error {
	var a cArena
	defer a.free()
	var ci C.nvcf_cluster_info
	ci.version = C.NVCF_CLUSTER_INFO_VERSION
	ci.cluster_id = a.str("cluster id", c.ID, false)
	ci.name = a.str("cluster name", c.Name, true)
	ci.group = a.str("cluster group", c.Group, true)
	ci.region = a.str("region", c.Region, true)
	attrs, n := a.strs("attribute", c.Attributes)
	ci.attributes = (**C.char)(unsafe.Pointer(attrs))
	ci.attributes_count = n
	ci.healthy = C.bool(c.Healthy)
	ci.heartbeat_ms = epochMs(c.Heartbeat)

	if len(c.GPUs) > 0 {
		gsize := C.size_t(unsafe.Sizeof(C.nvcf_gpu_info{}))
		gpus := (*C.nvcf_gpu_info)(a.alloc(gsize * C.size_t(len(c.GPUs))))
		gs := unsafe.Slice(gpus, len(c.GPUs))
		for i, g := range c.GPUs {
			gs[i].name = a.str("GPU name", g.Name, false)
			gs[i].capacity = C.uint(g.Capacity)
			gs[i].allocated = C.uint(g.Allocated)
			if len(g.InstanceTypes) == 0 {
				continue
			}
			tsize := C.size_t(unsafe.Sizeof(C.nvcf_instance_type_info{}))
			types := (*C.nvcf_instance_type_info)(a.alloc(
				tsize * C.size_t(len(g.InstanceTypes))))
			ts := unsafe.Slice(types, len(g.InstanceTypes))
			for j, t := range g.InstanceTypes {
				ts[j].name = a.str("instance type", t.Name, false)
				ts[j].description = a.str("description",
					t.Description, true)
				ts[j].is_default = C.bool(t.Default)
				ts[j].gpu_count = C.uint(t.GPUCount)
			}
			gs[i].instance_types = types
			gs[i].instance_types_count = C.size_t(len(ts))
		}
		ci.gpus = gpus
		ci.gpus_count = C.size_t(len(gs))
	}
	if a.err != nil {
		return a.err
	}

	return inv.locked(func(p *C.nvcf_inventory) error {
		return call(func() C.nvcf_status {
			return C.nvcf_inventory_add_cluster(p, &ci)
		})
	})
}

// AddClusterJSON decodes one nvcf_clusters KV record and adds it like
// AddCluster. The ErrInvalid *Error names the field at fault
// ("cluster record: gpus[1].capacity must be a non-negative integer").
func (inv *Inventory) AddClusterJSON(record []byte) error {
	cs, err := cString("cluster record", string(record))
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(cs))
	return inv.locked(func(p *C.nvcf_inventory) error {
		return call(func() C.nvcf_status {
			return C.nvcf_inventory_add_cluster_json(p, cs)
		})
	})
}

// Remove removes the cluster with id clusterID; ErrNotFound when there
// is none.
func (inv *Inventory) Remove(clusterID string) error {
	cs, err := cString("cluster id", clusterID)
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(cs))
	return inv.locked(func(p *C.nvcf_inventory) error {
		return call(func() C.nvcf_status {
			return C.nvcf_inventory_remove(p, cs)
		})
	})
}

// Len returns the number of clusters; 0 after Close.
func (inv *Inventory) Len() int {
	n := 0
	_ = inv.locked(func(p *C.nvcf_inventory) error {
		n = int(C.nvcf_inventory_count(p))
		return nil
	})
	return n
}

func clusterFromC(c *C.nvcf_cluster_info) Cluster {
	out := Cluster{
		ID:      goStr(c.cluster_id),
		Name:    goStr(c.name),
		Group:   goStr(c.group),
		Region:  goStr(c.region),
		Healthy: bool(c.healthy),
	}
	if c.heartbeat_ms != 0 {
		out.Heartbeat = time.UnixMilli(int64(c.heartbeat_ms))
	}
	if c.attributes_count > 0 {
		for _, s := range unsafe.Slice(c.attributes, c.attributes_count) {
			out.Attributes = append(out.Attributes, goStr(s))
		}
	}
	if c.gpus_count == 0 {
		return out
	}
	for _, g := range unsafe.Slice(c.gpus, c.gpus_count) {
		gpu := GPU{Name: goStr(g.name), Capacity: uint(g.capacity),
			Allocated: uint(g.allocated)}
		if g.instance_types_count > 0 {
			for _, t := range unsafe.Slice(g.instance_types,
				g.instance_types_count) {
				gpu.InstanceTypes = append(gpu.InstanceTypes,
					InstanceType{
						Name:        goStr(t.name),
						Description: goStr(t.description),
						Default:     bool(t.is_default),
						GPUCount:    uint(t.gpu_count),
					})
			}
		}
		out.GPUs = append(out.GPUs, gpu)
	}
	return out
}

// Cluster returns a copy of cluster i, in the order clusters were first
// added. The second result is false when i is out of range.
func (inv *Inventory) Cluster(i int) (Cluster, bool) {
	var out Cluster
	ok := false
	_ = inv.locked(func(p *C.nvcf_inventory) error {
		if i < 0 {
			return nil
		}
		c := C.nvcf_inventory_cluster(p, C.size_t(i))
		if c != nil {
			out, ok = clusterFromC(c), true
		}
		return nil
	})
	return out, ok
}

// Clusters returns a copy of every cluster, in insertion order.
func (inv *Inventory) Clusters() []Cluster {
	var out []Cluster
	for i := 0; ; i++ {
		c, ok := inv.Cluster(i)
		if !ok {
			return out
		}
		out = append(out, c)
	}
}

// Find returns the index of the cluster with this id, or else this name
// (case-insensitive); ErrNotFound when none matches.
func (inv *Inventory) Find(idOrName string) (int, error) {
	cs, err := cString("cluster id or name", idOrName)
	if err != nil {
		return -1, err
	}
	defer C.free(unsafe.Pointer(cs))
	var idx C.size_t
	err = inv.locked(func(p *C.nvcf_inventory) error {
		return call(func() C.nvcf_status {
			return C.nvcf_inventory_find(p, cs, &idx)
		})
	})
	if err != nil {
		return -1, err
	}
	return int(idx), nil
}

// Healthy reports whether cluster i may take work at now: the agent
// reported itself healthy and its heartbeat is at most timeout old (0
// means HeartbeatTimeoutDefault). False also for an index out of range.
func (inv *Inventory) Healthy(i int, now time.Time, timeout time.Duration) bool {
	ok := false
	_ = inv.locked(func(p *C.nvcf_inventory) error {
		if i >= 0 {
			ok = bool(C.nvcf_inventory_cluster_healthy(p,
				C.size_t(i), epochMs(now), ms(timeout)))
		}
		return nil
	})
	return ok
}

// RemoveUnhealthy removes every cluster that Healthy rejects and returns
// how many it removed.
func (inv *Inventory) RemoveUnhealthy(now time.Time, timeout time.Duration) (int, error) {
	var n C.size_t
	err := inv.locked(func(p *C.nvcf_inventory) error {
		return call(func() C.nvcf_status {
			return C.nvcf_inventory_remove_unhealthy(p,
				epochMs(now), ms(timeout), &n)
		})
	})
	return int(n), err
}

// ClusterGroupsJSON returns the body of GET /v2/nvcf/clusterGroups for
// the account ncaID.
func (inv *Inventory) ClusterGroupsJSON(ncaID string) ([]byte, error) {
	cs, err := cString("nca id", ncaID)
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(cs))
	var out *C.char
	err = inv.locked(func(p *C.nvcf_inventory) error {
		return call(func() C.nvcf_status {
			return C.nvcf_inventory_cluster_groups_json(p, cs, &out)
		})
	})
	if err != nil {
		return nil, err
	}
	defer C.nvcf_free(unsafe.Pointer(out))
	return C.GoBytes(unsafe.Pointer(out), C.int(C.strlen(out))), nil
}

func (s *PlacementSpec) toC(a *cArena, c *C.nvcf_placement_spec) {
	c.version = C.NVCF_PLACEMENT_SPEC_VERSION
	c.gpu = a.str("gpu", s.GPU, false)
	c.instance_type = a.str("instance type", s.InstanceType, false)
	c.clusters, c.clusters_count = a.strs("cluster", s.Clusters)
	c.backend = a.str("backend", s.Backend, true)
	c.regions, c.regions_count = a.strs("region", s.Regions)
	c.attributes, c.attributes_count = a.strs("attribute", s.Attributes)
	c.instance_count = C.uint(s.InstanceCount)
	now := s.Now
	if now.IsZero() {
		now = time.Now()
	}
	c.now_ms = epochMs(now)
	c.heartbeat_timeout_ms = ms(s.HeartbeatTimeout)
	c.exclude, c.exclude_count = a.strs("excluded cluster", s.Exclude)
	c.mode = C.nvcf_placement_mode(s.Mode)
}

// ValidateSpec returns nil when some cluster could take spec once healthy
// and free, and otherwise an ErrInvalid *Error naming the field and value
// ("clusters[1]: no cluster has id or name 'c9'"). Health, capacity,
// Exclude, InstanceCount and Now are not looked at.
func (inv *Inventory) ValidateSpec(spec PlacementSpec) error {
	var a cArena
	defer a.free()
	var cs C.nvcf_placement_spec
	spec.toC(&a, &cs)
	if a.err != nil {
		return a.err
	}
	return inv.locked(func(p *C.nvcf_inventory) error {
		return call(func() C.nvcf_status {
			return C.nvcf_inventory_validate_spec(p, &cs, nil, 0)
		})
	})
}

// Place chooses clusters for spec and splits its instances across them.
// Instances that fit nowhere are counted in Route.Unplaced; that is not
// an error. The same inventory and spec always give the same route.
func (inv *Inventory) Place(spec PlacementSpec) (*Route, error) {
	var a cArena
	defer a.free()
	var cs C.nvcf_placement_spec
	spec.toC(&a, &cs)
	if a.err != nil {
		return nil, a.err
	}
	var r *C.nvcf_route
	err := inv.locked(func(p *C.nvcf_inventory) error {
		return call(func() C.nvcf_status {
			return C.nvcf_routing_place(p, &cs, &r)
		})
	})
	if err != nil {
		return nil, err
	}
	defer C.nvcf_route_free(r)

	out := &Route{
		Unplaced:    uint(C.nvcf_route_unplaced(r)),
		Explanation: goStr(C.nvcf_route_explanation(r)),
	}
	for i := C.size_t(0); i < C.nvcf_route_count(r); i++ {
		e := C.nvcf_route_entry_at(r, i)
		out.Eligible = append(out.Eligible, RouteEntry{
			ClusterID:    goStr(e.cluster_id),
			GPU:          goStr(e.gpu),
			InstanceType: goStr(e.instance_type),
			GPUCount:     uint(e.gpu_count),
			FreeGPUs:     uint(e.free_gpus),
			FreeSlots:    uint(e.free_slots),
			Assigned:     uint(e.assigned),
		})
	}
	for i := C.size_t(0); i < C.nvcf_route_excluded_count(r); i++ {
		x := C.nvcf_route_excluded_at(r, i)
		out.Excluded = append(out.Excluded, Exclusion{
			ClusterID: goStr(x.cluster_id),
			Reason:    RouteReason(x.reason),
			Text:      goStr(x.text),
		})
	}
	return out, nil
}

// WorkloadKind is the kind of workload a creation message starts.
type WorkloadKind int

// Workload kinds.
const (
	WorkloadFunction WorkloadKind = 0
	WorkloadTask     WorkloadKind = 1
)

// routingName runs one of the name writers with C copies of args.
func routingName(f func(args []*C.char, buf *C.char, n C.size_t) C.nvcf_status, args ...string) (string, error) {
	var a cArena
	defer a.free()
	cargs := make([]*C.char, len(args))
	for i, s := range args {
		cargs[i] = a.str("name", s, false)
	}
	if a.err != nil {
		return "", a.err
	}
	var buf [routingNameMax]C.char
	if err := call(func() C.nvcf_status {
		return f(cargs, &buf[0], C.size_t(len(buf)))
	}); err != nil {
		return "", err
	}
	return C.GoString(&buf[0]), nil
}

// CreateSubject returns the creation subject
// Create.NVCA.{Function|Task}.{clusterId}.{gpu}.{instanceType} with each
// '.' of the instance type written as '|'. ErrInvalid names a malformed
// argument.
func CreateSubject(kind WorkloadKind, clusterID, gpu, instanceType string) (string, error) {
	return routingName(func(v []*C.char, b *C.char, n C.size_t) C.nvcf_status {
		return C.nvcf_routing_create_subject(C.nvcf_workload_kind(kind),
			v[0], v[1], v[2], b, n)
	}, clusterID, gpu, instanceType)
}

// CreateConsumer returns the durable consumer name of a cluster's
// creation queue, CreateNvcaFunctionTaskStream-{clusterId}.
func CreateConsumer(clusterID string) (string, error) {
	return routingName(func(v []*C.char, b *C.char, n C.size_t) C.nvcf_status {
		return C.nvcf_routing_create_consumer(v[0], b, n)
	}, clusterID)
}

// CreateFilter returns the filter subject of that consumer,
// Create.NVCA.*.{clusterId}.*.*.
func CreateFilter(clusterID string) (string, error) {
	return routingName(func(v []*C.char, b *C.char, n C.size_t) C.nvcf_status {
		return C.nvcf_routing_create_filter(v[0], b, n)
	}, clusterID)
}

// TerminateSubject returns Terminate.NVCA.{clusterId}.
func TerminateSubject(clusterID string) (string, error) {
	return routingName(func(v []*C.char, b *C.char, n C.size_t) C.nvcf_status {
		return C.nvcf_routing_terminate_subject(v[0], b, n)
	}, clusterID)
}

// TerminateConsumer returns TerminateNvcaStream-{clusterId}.
func TerminateConsumer(clusterID string) (string, error) {
	return routingName(func(v []*C.char, b *C.char, n C.size_t) C.nvcf_status {
		return C.nvcf_routing_terminate_consumer(v[0], b, n)
	}, clusterID)
}

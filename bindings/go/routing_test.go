// SPDX-License-Identifier: Apache-2.0

package nvcf_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	nvcf "github.com/libnvcf/nvcf-go"
)

var now = time.UnixMilli(1_700_000_000_000)

func l40s(allocated uint) nvcf.GPU {
	return nvcf.GPU{Name: "L40S", Capacity: 8, Allocated: allocated,
		InstanceTypes: []nvcf.InstanceType{
			{Name: "NCP.GPU.L40S_1x", GPUCount: 1},
			{Name: "NCP.GPU.L40S_2x", GPUCount: 2}}}
}

func newInventory(t *testing.T) *nvcf.Inventory {
	t.Helper()
	inv, err := nvcf.NewInventory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inv.Close() })
	for _, c := range []nvcf.Cluster{
		{ID: "c1", Group: "g", Region: "us-east", Healthy: true,
			Heartbeat: now, GPUs: []nvcf.GPU{l40s(6)}},
		{ID: "c2", Group: "g", Region: "eu-west", Healthy: true,
			Heartbeat: now, GPUs: []nvcf.GPU{l40s(0)},
			Attributes: []string{"fast"}},
	} {
		if err := inv.AddCluster(c); err != nil {
			t.Fatal(err)
		}
	}
	return inv
}

func TestInventoryRoundTrip(t *testing.T) {
	inv := newInventory(t)
	if inv.Len() != 2 {
		t.Fatalf("Len() = %d", inv.Len())
	}
	c1, ok := inv.Cluster(0)
	want := nvcf.Cluster{ID: "c1", Name: "c1", Group: "g",
		Region: "us-east", Healthy: true, Heartbeat: now,
		GPUs: []nvcf.GPU{l40s(6)}}
	if !ok || !reflect.DeepEqual(c1, want) {
		t.Fatalf("Cluster(0) = %+v", c1)
	}
	if _, ok := inv.Cluster(2); ok {
		t.Fatal("Cluster(2) exists")
	}
	if cs := inv.Clusters(); len(cs) != 2 ||
		!reflect.DeepEqual(cs[1].Attributes, []string{"fast"}) {
		t.Fatalf("Clusters() = %+v", cs)
	}
	if i, err := inv.Find("C2"); err != nil || i != 1 {
		t.Fatalf("Find: %d %v", i, err)
	}
	if _, err := inv.Find("c9"); !errors.Is(err, nvcf.ErrNotFound) {
		t.Fatalf("Find c9: %v", err)
	}
}

func TestAddClusterErrors(t *testing.T) {
	inv := newInventory(t)
	err := inv.AddClusterJSON([]byte(`{"clusterId": "c3",
		"heartbeatAtMs": 1, "gpus": [{"name": "L40S", "capacity": -1,
		"instanceTypes": []}]}`))
	if e := asNvcf(t, err); e.Status != nvcf.StatusInvalid ||
		!strings.Contains(e.Message, "capacity") {
		t.Fatalf("negative capacity: %v", err)
	}
	err = inv.AddCluster(nvcf.Cluster{ID: "a.b"})
	if e := asNvcf(t, err); e.Status != nvcf.StatusInvalid ||
		!strings.Contains(e.Message, "a.b") {
		t.Fatalf("dotted id: %v", err)
	}
	err = inv.AddCluster(nvcf.Cluster{ID: "c4", GPUs: []nvcf.GPU{{
		Name: "L40S", Capacity: 1, InstanceTypes: []nvcf.InstanceType{
			{Name: "x", GPUCount: 0}}}}})
	if !errors.Is(err, nvcf.ErrInvalid) {
		t.Fatalf("gpu_count 0: %v", err)
	}
	if err := inv.AddCluster(nvcf.Cluster{ID: "c\x005"}); !errors.Is(err,
		nvcf.ErrInvalid) {
		t.Fatalf("NUL in id: %v", err)
	}
	if inv.Len() != 2 {
		t.Fatalf("a failed add changed the inventory: %d", inv.Len())
	}
	if err := inv.AddClusterJSON([]byte(`{"clusterId": "c3",
		"heartbeatAtMs": 1, "gpus": []}`)); err != nil {
		t.Fatal(err)
	}
	if inv.Len() != 3 {
		t.Fatal("AddClusterJSON did not add")
	}
}

func TestHealth(t *testing.T) {
	inv := newInventory(t)
	if !inv.Healthy(0, now.Add(time.Second), 0) ||
		inv.Healthy(0, now.Add(31*time.Second), 0) ||
		!inv.Healthy(0, now.Add(31*time.Second), time.Minute) ||
		inv.Healthy(5, now, 0) || inv.Healthy(-1, now, 0) {
		t.Fatal("Healthy results differ")
	}
	n, err := inv.RemoveUnhealthy(now.Add(31*time.Second), 0)
	if err != nil || n != 2 || inv.Len() != 0 {
		t.Fatalf("RemoveUnhealthy: %d %v", n, err)
	}
}

func TestPlace(t *testing.T) {
	inv := newInventory(t)
	r, err := inv.Place(nvcf.PlacementSpec{GPU: "L40S",
		InstanceType: "NCP.GPU.L40S_2x", InstanceCount: 6, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Eligible) != 2 || r.Eligible[0].ClusterID != "c2" ||
		r.Eligible[0].FreeSlots != 4 || r.Eligible[0].Assigned != 4 ||
		r.Eligible[1].ClusterID != "c1" ||
		r.Eligible[1].Assigned != 1 || r.Eligible[1].GPUCount != 2 {
		t.Fatalf("pack: %+v", r.Eligible)
	}
	if r.Unplaced != 1 || len(r.Excluded) != 0 ||
		!strings.Contains(r.Explanation, "1 instance did not fit") {
		t.Fatalf("pack: %+v", r)
	}
	r, _ = inv.Place(nvcf.PlacementSpec{GPU: "L40S",
		InstanceType: "NCP.GPU.L40S_1x", InstanceCount: 2, Now: now,
		Mode: nvcf.PlacementSpread})
	if !reflect.DeepEqual(r.Assignments(), map[string]uint{"c1": 1,
		"c2": 1}) {
		t.Fatalf("spread: %v", r.Assignments())
	}
	r, _ = inv.Place(nvcf.PlacementSpec{GPU: "l40s",
		InstanceType: "NCP.GPU.L40S_1x", InstanceCount: 1, Now: now,
		Regions: []string{"us-east"}})
	want := []nvcf.Exclusion{{ClusterID: "c2",
		Reason: nvcf.RouteNotInRegions,
		Text:   "cluster c2: region eu-west not in regions [us-east]"}}
	if !reflect.DeepEqual(r.Excluded, want) ||
		!reflect.DeepEqual(r.Assignments(), map[string]uint{"c1": 1}) {
		t.Fatalf("regions: %+v", r)
	}
	r, _ = inv.Place(nvcf.PlacementSpec{GPU: "L40S",
		InstanceType: "NCP.GPU.L40S_1x", InstanceCount: 1, Now: now,
		Exclude: []string{"c2"}, Attributes: []string{"fast"}})
	if len(r.Excluded) != 2 ||
		r.Excluded[0].Reason != nvcf.RouteMissingAttribute ||
		r.Excluded[1].Reason != nvcf.RouteExcludedByCaller ||
		r.Unplaced != 1 {
		t.Fatalf("exclusions: %+v", r)
	}
	// A zero Now means the wall clock, at which the heartbeats are old.
	r, _ = inv.Place(nvcf.PlacementSpec{GPU: "L40S",
		InstanceType: "NCP.GPU.L40S_1x", InstanceCount: 1})
	if len(r.Excluded) != 2 || r.Excluded[0].Reason != nvcf.RouteUnhealthy {
		t.Fatalf("stale: %+v", r)
	}
	_, err = inv.Place(nvcf.PlacementSpec{GPU: "", InstanceType: "x"})
	if e := asNvcf(t, err); e.Status != nvcf.StatusInvalid ||
		!strings.Contains(e.Message, "gpu") {
		t.Fatalf("empty gpu: %v", err)
	}
	if nvcf.RouteNoCapacity.String() != "NO_CAPACITY" ||
		nvcf.RouteReason(77).String() != "UNKNOWN" {
		t.Fatal("route reason names differ")
	}
}

func TestValidateSpec(t *testing.T) {
	inv := newInventory(t)
	if err := inv.ValidateSpec(nvcf.PlacementSpec{GPU: "L40S",
		InstanceType: "NCP.GPU.L40S_1x"}); err != nil {
		t.Fatal(err)
	}
	err := inv.ValidateSpec(nvcf.PlacementSpec{GPU: "H100",
		InstanceType: "NCP.GPU.H100_1x"})
	if e := asNvcf(t, err); e.Message !=
		"gpu: no cluster offers GPU 'H100'; GPUs: [L40S]" {
		t.Fatalf("H100: %v", err)
	}
}

func TestClusterGroupsJSON(t *testing.T) {
	inv := newInventory(t)
	data, err := inv.ClusterGroupsJSON("acct")
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		ClusterGroups []struct {
			Name     string
			NcaID    string `json:"ncaId"`
			Clusters []struct{ ID string }
		}
	}
	if err := json.Unmarshal(data, &body); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	g := body.ClusterGroups
	if len(g) != 1 || g[0].Name != "g" || g[0].NcaID != "acct" ||
		len(g[0].Clusters) != 2 || g[0].Clusters[0].ID != "c1" {
		t.Fatalf("cluster groups: %s", data)
	}
}

func TestRemoveAndClose(t *testing.T) {
	inv := newInventory(t)
	if err := inv.Remove("c1"); err != nil {
		t.Fatal(err)
	}
	err := inv.Remove("c1")
	if e := asNvcf(t, err); e.Status != nvcf.StatusNotFound ||
		!strings.Contains(e.Message, "'c1'") {
		t.Fatalf("second Remove: %v", err)
	}
	inv.Close()
	if err := inv.Remove("c2"); err != nvcf.ErrClosed {
		t.Fatalf("Remove after Close: %v", err)
	}
	if inv.Len() != 0 || inv.Clusters() != nil {
		t.Fatal("a closed inventory lists clusters")
	}
}

func TestSubjects(t *testing.T) {
	check := func(got string, err error, want string) {
		t.Helper()
		if err != nil || got != want {
			t.Errorf("got %q, %v; want %q", got, err, want)
		}
	}
	s, err := nvcf.CreateSubject(nvcf.WorkloadFunction, "c1", "L40S",
		"NCP.GPU.L40S_1x")
	check(s, err, "Create.NVCA.Function.c1.L40S.NCP|GPU|L40S_1x")
	s, err = nvcf.CreateSubject(nvcf.WorkloadTask, "c1", "L40S", "x")
	check(s, err, "Create.NVCA.Task.c1.L40S.x")
	s, err = nvcf.CreateConsumer("c1")
	check(s, err, "CreateNvcaFunctionTaskStream-c1")
	s, err = nvcf.CreateFilter("c1")
	check(s, err, "Create.NVCA.*.c1.*.*")
	s, err = nvcf.TerminateSubject("c1")
	check(s, err, "Terminate.NVCA.c1")
	s, err = nvcf.TerminateConsumer("c1")
	check(s, err, "TerminateNvcaStream-c1")
	_, err = nvcf.CreateConsumer("c.1")
	if e := asNvcf(t, err); !strings.Contains(e.Message,
		"cluster id 'c.1'") {
		t.Fatalf("c.1: %v", err)
	}
}

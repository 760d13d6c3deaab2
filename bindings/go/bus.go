// SPDX-License-Identifier: Apache-2.0

package nvcf

/*
#include <stdlib.h>
#include <nvcf/bus.h>
*/
import "C"

import (
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// Control-plane KV buckets.
const (
	BucketFunctions   = C.NVCF_BUCKET_FUNCTIONS
	BucketDeployments = C.NVCF_BUCKET_DEPLOYMENTS
	BucketClusters    = C.NVCF_BUCKET_CLUSTERS
	BucketInstances   = C.NVCF_BUCKET_INSTANCES
	BucketTasks       = C.NVCF_BUCKET_TASKS
	BucketKeys        = C.NVCF_BUCKET_KEYS
)

// BusOptions configure ConnectBus. Zero fields take the library's
// defaults.
type BusOptions struct {
	URL            string // empty means nats://127.0.0.1:4222
	Name           string // connection name the server shows
	Region         string // region of request queues; empty means "local"
	ConnectTimeout time.Duration
}

// Bus is a connection to NATS JetStream (nvcf_bus). Its methods may be
// called from several goroutines.
type Bus struct {
	mu  sync.RWMutex
	bus *C.nvcf_bus
}

// ConnectBus connects to NATS. It fails with ErrUnavailable when no server
// accepts the connection within the timeout.
func ConnectBus(opts BusOptions) (*Bus, error) {
	var a cArena
	defer a.free()
	var o C.nvcf_bus_options
	if err := call(func() C.nvcf_status {
		return C.nvcf_bus_options_init(&o, C.NVCF_BUS_OPTIONS_VERSION)
	}); err != nil {
		return nil, err
	}
	o.url = a.str("url", opts.URL, true)
	o.name = a.str("name", opts.Name, true)
	o.region = a.str("region", opts.Region, true)
	o.connect_timeout_ms = ms(opts.ConnectTimeout)
	if a.err != nil {
		return nil, a.err
	}
	b := &Bus{}
	if err := call(func() C.nvcf_status {
		return C.nvcf_bus_new(&b.bus, &o)
	}); err != nil {
		return nil, err
	}
	runtime.SetFinalizer(b, (*Bus).Close)
	return b, nil
}

// Close closes the connection; later calls fail with ErrClosed.
func (b *Bus) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	C.nvcf_bus_free(b.bus)
	b.bus = nil
	runtime.SetFinalizer(b, nil)
	return nil
}

func (b *Bus) with(f func(*C.nvcf_bus) C.nvcf_status) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.bus == nil {
		return ErrClosed
	}
	return call(func() C.nvcf_status { return f(b.bus) })
}

// Region returns the region the bus was configured with.
func (b *Bus) Region() string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.bus == nil {
		return ""
	}
	return goStr(C.nvcf_bus_region(b.bus))
}

// EnsureControl creates the control-plane streams and KV buckets that are
// missing.
func (b *Bus) EnsureControl() error {
	return b.with(func(p *C.nvcf_bus) C.nvcf_status {
		return C.nvcf_bus_ensure_control(p)
	})
}

func bytesPtr(v []byte) unsafe.Pointer {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Pointer(&v[0])
}

// KVGet returns a value and its revision; ErrNotFound when the key does
// not exist or was deleted.
func (b *Bus) KVGet(bucket, key string) ([]byte, uint64, error) {
	var a cArena
	defer a.free()
	cb, ck := a.str("bucket", bucket, false), a.str("key", key, false)
	if a.err != nil {
		return nil, 0, a.err
	}
	var val *C.char
	var n C.size_t
	var rev C.uint64_t
	if err := b.with(func(p *C.nvcf_bus) C.nvcf_status {
		return C.nvcf_bus_kv_get(p, cb, ck, &val, &n, &rev)
	}); err != nil {
		return nil, 0, err
	}
	defer C.nvcf_free(unsafe.Pointer(val))
	return C.GoBytes(unsafe.Pointer(val), C.int(n)), uint64(rev), nil
}

// KVPut writes a value unconditionally and returns its revision.
func (b *Bus) KVPut(bucket, key string, value []byte) (uint64, error) {
	return b.kvWrite(bucket, key, value, func(p *C.nvcf_bus, cb, ck *C.char, v unsafe.Pointer, n C.size_t, rev *C.uint64_t) C.nvcf_status {
		return C.nvcf_bus_kv_put(p, cb, ck, v, n, rev)
	})
}

// KVCreate writes a value only if the key does not exist (ErrExists
// otherwise) and returns its revision.
func (b *Bus) KVCreate(bucket, key string, value []byte) (uint64, error) {
	return b.kvWrite(bucket, key, value, func(p *C.nvcf_bus, cb, ck *C.char, v unsafe.Pointer, n C.size_t, rev *C.uint64_t) C.nvcf_status {
		return C.nvcf_bus_kv_create(p, cb, ck, v, n, rev)
	})
}

// KVUpdate writes a value only if its revision is still last
// (ErrConflict otherwise) and returns the new revision.
func (b *Bus) KVUpdate(bucket, key string, value []byte, last uint64) (uint64, error) {
	return b.kvWrite(bucket, key, value, func(p *C.nvcf_bus, cb, ck *C.char, v unsafe.Pointer, n C.size_t, rev *C.uint64_t) C.nvcf_status {
		return C.nvcf_bus_kv_update(p, cb, ck, v, n,
			C.uint64_t(last), rev)
	})
}

func (b *Bus) kvWrite(bucket, key string, value []byte, f func(*C.nvcf_bus, *C.char, *C.char, unsafe.Pointer, C.size_t, *C.uint64_t) C.nvcf_status) (uint64, error) {
	var a cArena
	defer a.free()
	cb, ck := a.str("bucket", bucket, false), a.str("key", key, false)
	if a.err != nil {
		return 0, a.err
	}
	var rev C.uint64_t
	err := b.with(func(p *C.nvcf_bus) C.nvcf_status {
		return f(p, cb, ck, bytesPtr(value), C.size_t(len(value)), &rev)
	})
	runtime.KeepAlive(value)
	return uint64(rev), err
}

// KVDelete deletes a key; deleting a missing key is not an error.
func (b *Bus) KVDelete(bucket, key string) error {
	var a cArena
	defer a.free()
	cb, ck := a.str("bucket", bucket, false), a.str("key", key, false)
	if a.err != nil {
		return a.err
	}
	return b.with(func(p *C.nvcf_bus) C.nvcf_status {
		return C.nvcf_bus_kv_delete(p, cb, ck)
	})
}

// KVKeys lists the keys of bucket matching filter, a NATS subject pattern
// such as "acct.>"; an empty filter lists every key.
func (b *Bus) KVKeys(bucket, filter string) ([]string, error) {
	var a cArena
	defer a.free()
	cb, cf := a.str("bucket", bucket, false), a.str("filter", filter, true)
	if a.err != nil {
		return nil, a.err
	}
	var keys **C.char
	var n C.size_t
	if err := b.with(func(p *C.nvcf_bus) C.nvcf_status {
		return C.nvcf_bus_kv_keys(p, cb, cf, &keys, &n)
	}); err != nil {
		return nil, err
	}
	defer C.nvcf_strings_free(keys, n)
	out := make([]string, 0, int(n))
	if n > 0 {
		for _, k := range unsafe.Slice(keys, n) {
			out = append(out, goStr(k))
		}
	}
	return out, nil
}

// Publish stores data on a JetStream subject and waits for the store.
// msgID, when not empty, de-duplicates. ErrQuota means the stream is
// full, ErrNotFound that no stream takes the subject.
func (b *Bus) Publish(subject string, data []byte, msgID string) error {
	var a cArena
	defer a.free()
	cs, cm := a.str("subject", subject, false), a.str("msg id", msgID, true)
	if a.err != nil {
		return a.err
	}
	err := b.with(func(p *C.nvcf_bus) C.nvcf_status {
		return C.nvcf_bus_publish(p, cs, bytesPtr(data),
			C.size_t(len(data)), cm)
	})
	runtime.KeepAlive(data)
	return err
}

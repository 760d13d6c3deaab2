// SPDX-License-Identifier: Apache-2.0

package nvcf_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	nvcf "github.com/libnvcf/nvcf-go"
)

// One local stack serves every test that needs a server; it starts on
// first use and stops after the last test.
var (
	stackOnce sync.Once
	stack     *nvcf.LocalStack
	stackErr  error
)

func localStack(t *testing.T) *nvcf.LocalStack {
	t.Helper()
	stackOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(),
			90*time.Second)
		defer cancel()
		stack, stackErr = nvcf.StartLocalStack(ctx, nil)
	})
	if stackErr != nil {
		t.Fatalf("local stack: %v", stackErr)
	}
	return stack
}

// sourceDir is the repository root: NVCF_SOURCE_DIR, else two levels up.
func sourceDir() string {
	if d := os.Getenv("NVCF_SOURCE_DIR"); d != "" {
		return d
	}
	d, _ := filepath.Abs(filepath.Join("..", ".."))
	return d
}

// waitFor polls cond until it holds or the timeout ends.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// asNvcf returns err as *nvcf.Error or fails the test.
func asNvcf(t *testing.T, err error) *nvcf.Error {
	t.Helper()
	var e *nvcf.Error
	if !errors.As(err, &e) {
		t.Fatalf("want *nvcf.Error, got %T %v", err, err)
	}
	return e
}

func TestMain(m *testing.M) {
	if err := nvcf.CheckVersion(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if stack != nil {
		if err := stack.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// SPDX-License-Identifier: Apache-2.0

package nvcf

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// LocalProcesses are the processes `nvcf up` starts, by the names of
// their pid and log files.
var LocalProcesses = []string{"nats", "nvcf-api", "nvcf-invocation",
	"nvca", "nvcf-autoscaler"}

// LocalStackOptions configure StartLocalStack. The zero value is a stack
// in a new temporary directory with the default backend.
type LocalStackOptions struct {
	// CLI is the nvcf executable; empty means FindCLI.
	CLI string
	// Backend is an NVCFBackend YAML file; empty means nvcf up's
	// default.
	Backend string
	// LogLevel is passed to each daemon ("error" ... "trace").
	LogLevel string
	// NatsPort of 0 lets nvcf up pick a free port.
	NatsPort int
	// StateDir is used (and kept) when set; otherwise a temporary
	// directory is created and removed by Close unless KeepState.
	StateDir  string
	KeepState bool
}

// LocalStack is a whole local stack (nats-server and every daemon on
// loopback) that `nvcf up` started. API and Gateway hold the admin key of
// account "local-admin", which has every scope.
type LocalStack struct {
	StateDir  string
	CLI       string
	APIURL    string
	InvokeURL string
	NatsURL   string
	AdminKey  string
	// Env is the whole of StateDir/env.
	Env     map[string]string
	API     *APIClient
	Gateway *GatewayClient

	removeDir bool
	closeOnce sync.Once
	closeErr  error
}

// FindCLI returns the path of the nvcf executable: $NVCF_CLI, then the
// build tree or prefix next to the loaded libnvcf, then
// $NVCF_BUILD_DIR/daemons/nvcf/nvcf, then PATH.
func FindCLI() (string, error) {
	var tried []string
	exe := func(p string) bool {
		st, err := os.Stat(p)
		return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
	}
	if p := os.Getenv("NVCF_CLI"); p != "" {
		if exe(p) {
			return p, nil
		}
		return "", fmt.Errorf("nvcf: NVCF_CLI is %q, which is not an "+
			"executable: point it at the nvcf binary or unset it", p)
	}
	if lib := LibraryPath(); filepath.IsAbs(lib) {
		dir := filepath.Dir(lib)
		if real, err := filepath.EvalSymlinks(lib); err == nil {
			dir = filepath.Dir(real)
		}
		for _, rel := range []string{"../daemons/nvcf/nvcf",
			"../bin/nvcf", "../../bin/nvcf"} {
			p := filepath.Clean(filepath.Join(dir, rel))
			if exe(p) {
				return p, nil
			}
			tried = append(tried, p)
		}
	}
	if b := os.Getenv("NVCF_BUILD_DIR"); b != "" {
		p := filepath.Join(b, "daemons", "nvcf", "nvcf")
		if exe(p) {
			return p, nil
		}
		tried = append(tried, p)
	}
	if p, err := exec.LookPath("nvcf"); err == nil {
		return p, nil
	}
	tried = append(tried, "PATH")
	return "", fmt.Errorf("nvcf: cannot find the nvcf executable; tried "+
		"%s. Build it, or set NVCF_CLI or LocalStackOptions.CLI",
		strings.Join(tried, ", "))
}

// StartLocalStack runs `nvcf up` and returns the running stack; Close
// stops it. ctx bounds the start. On failure everything started is
// stopped again and the error carries nvcf up's output and the daemons'
// logs.
func StartLocalStack(ctx context.Context, opts *LocalStackOptions) (*LocalStack, error) {
	if opts == nil {
		opts = &LocalStackOptions{}
	}
	cli := opts.CLI
	if cli == "" {
		var err error
		if cli, err = FindCLI(); err != nil {
			return nil, err
		}
	}
	s := &LocalStack{CLI: cli}
	if opts.StateDir != "" {
		if err := os.MkdirAll(opts.StateDir, 0o755); err != nil {
			return nil, err
		}
		dir, err := filepath.Abs(opts.StateDir)
		if err != nil {
			return nil, err
		}
		s.StateDir = dir
	} else {
		dir, err := os.MkdirTemp("", "nvcf-local-")
		if err != nil {
			return nil, err
		}
		s.StateDir = dir
		s.removeDir = !opts.KeepState
	}

	args := []string{"up", "--state-dir", s.StateDir}
	if opts.Backend != "" {
		b, err := filepath.Abs(opts.Backend)
		if err != nil {
			return nil, err
		}
		args = append(args, "--backend", b)
	}
	if opts.LogLevel != "" {
		args = append(args, "--log-level", opts.LogLevel)
	}
	if opts.NatsPort != 0 {
		args = append(args, "--nats-port", strconv.Itoa(opts.NatsPort))
	}

	// When ctx ends, nvcf up is killed and Close below runs nvcf down,
	// which stops whatever it had started from the pid files.
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = s.readEnv()
	}
	if err != nil {
		logs := s.LogsText(2000)
		_ = s.Close()
		return nil, fmt.Errorf("nvcf: nvcf up --state-dir %s failed: "+
			"%w\n%s%s", s.StateDir, err, out, logs)
	}
	s.API = NewAPIClient(s.APIURL, s.AdminKey)
	s.Gateway = NewGatewayClient(s.InvokeURL, s.AdminKey)
	runtime.SetFinalizer(s, (*LocalStack).Close)
	return s, nil
}

func (s *LocalStack) readEnv() error {
	f, err := os.Open(filepath.Join(s.StateDir, "env"))
	if err != nil {
		return err
	}
	defer f.Close()
	s.Env = map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(sc.Text()),
			"export ")
		if k, v, ok := strings.Cut(line, "="); ok {
			s.Env[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	s.APIURL, s.InvokeURL = s.Env["NVCF_API_URL"], s.Env["NVCF_INVOKE_URL"]
	s.NatsURL, s.AdminKey = s.Env["NATS_URL"], s.Env["NVCF_API_KEY"]
	if s.APIURL == "" || s.InvokeURL == "" || s.AdminKey == "" {
		return errors.New("the env file lacks NVCF_API_URL, " +
			"NVCF_INVOKE_URL or NVCF_API_KEY")
	}
	return nil
}

// Close runs `nvcf down` and removes the temporary state directory. Later
// calls return the first call's result.
func (s *LocalStack) Close() error {
	s.closeOnce.Do(func() {
		runtime.SetFinalizer(s, nil)
		ctx, cancel := context.WithTimeout(context.Background(),
			60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, s.CLI, "down",
			"--state-dir", s.StateDir).CombinedOutput()
		if err != nil {
			s.closeErr = fmt.Errorf("nvcf: nvcf down --state-dir %s "+
				"failed: %w\n%s", s.StateDir, err, out)
		}
		if s.removeDir {
			_ = os.RemoveAll(s.StateDir)
		}
	})
	return s.closeErr
}

// PID returns the pid of one of LocalProcesses, or 0.
func (s *LocalStack) PID(name string) int {
	b, err := os.ReadFile(filepath.Join(s.StateDir, name+".pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// Log returns the log of one of LocalProcesses ("" when there is none).
func (s *LocalStack) Log(name string) string {
	b, _ := os.ReadFile(filepath.Join(s.StateDir, "logs", name+".log"))
	return string(b)
}

// LogsText returns the last tail bytes of every process's log.
func (s *LocalStack) LogsText(tail int) string {
	var b strings.Builder
	for _, name := range LocalProcesses {
		text := s.Log(name)
		if text == "" {
			continue
		}
		if len(text) > tail {
			text = text[len(text)-tail:]
		}
		fmt.Fprintf(&b, "--- %s ---\n%s\n", name, text)
	}
	return b.String()
}

// CreateKey creates an API key of account ncaID with scopes ("all" or a
// comma-separated list) through `nvcf key create`, and returns it.
func (s *LocalStack) CreateKey(ctx context.Context, ncaID, scopes string) (string, error) {
	if scopes == "" {
		scopes = "all"
	}
	cmd := exec.CommandContext(ctx, s.CLI, "key", "create", "--nca-id",
		ncaID, "--scopes", scopes, "--nats", s.NatsURL)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("nvcf: nvcf key create failed: %w: %s",
			err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// Clients returns API and gateway clients that present key.
func (s *LocalStack) Clients(key string) (*APIClient, *GatewayClient) {
	return NewAPIClient(s.APIURL, key), NewGatewayClient(s.InvokeURL, key)
}

// ConnectBus connects a Bus to the stack's nats-server.
func (s *LocalStack) ConnectBus(name string) (*Bus, error) {
	return ConnectBus(BusOptions{URL: s.NatsURL, Name: name})
}

package chaos

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Replica is one `iamjit run` process, restarted after every kill.
type Replica struct {
	Index int
	bin   string
	env   []string
	log   string

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	expected bool // the current process is being killed or stopped by us
	stopping bool
	starts   int
	kills    int
	exits    []string // exits nobody asked for
	lastCode int
}

// NewReplica prepares replica i; its output goes to dir/replica-i.log.
func NewReplica(i int, bin, dir string, env []string) *Replica {
	return &Replica{Index: i, bin: bin, env: env, log: filepath.Join(dir, fmt.Sprintf("replica-%d.log", i))}
}

// LogPath is where the replica's JSON logs go, across restarts.
func (r *Replica) LogPath() string { return r.log }

// Start runs a new process.
func (r *Replica) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.startLocked()
}

func (r *Replica) startLocked() error {
	f, err := os.OpenFile(r.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("replica %d log: %w", r.Index, err)
	}
	r.starts++
	fmt.Fprintf(f, `{"chaos":"start","replica":%d,"start":%d,"time":%q}`+"\n", r.Index, r.starts, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(r.bin, "run")
	cmd.Env = r.env
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start replica %d: %w", r.Index, err)
	}
	done := make(chan struct{})
	r.cmd, r.done, r.expected = cmd, done, false
	go func() {
		err := cmd.Wait()
		f.Close()
		r.exited(cmd, err)
		close(done)
	}()
	return nil
}

// exited records how a process ended; one that nobody stopped is restarted.
func (r *Replica) exited(cmd *exec.Cmd, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	r.lastCode = code
	if r.cmd != cmd || r.expected {
		return
	}
	r.exits = append(r.exits, fmt.Sprintf("replica %d (start %d) exited on its own: %v", r.Index, r.starts, err))
	if !r.stopping {
		_ = r.startLocked()
	}
}

// Kill SIGKILLs the running process, waits for it and starts a new one.
func (r *Replica) Kill() error {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.expected = true
	r.kills++
	r.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping {
		return nil
	}
	return r.startLocked()
}

// Stop sends SIGTERM and returns the exit code, or an error when the
// process did not exit within timeout (it is then killed).
func (r *Replica) Stop(timeout time.Duration) (int, error) {
	r.mu.Lock()
	r.stopping, r.expected = true, true
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(timeout):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		return -1, fmt.Errorf("replica %d did not exit within %s of SIGTERM", r.Index, timeout)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastCode, nil
}

// Figures: processes started, kills, and exits nobody asked for.
func (r *Replica) Figures() (starts, kills int, exits []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.starts, r.kills, append([]string(nil), r.exits...)
}

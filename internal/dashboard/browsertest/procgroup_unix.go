//go:build unix

package browsertest

import (
	"os/exec"
	"syscall"
)

// ownGroup starts the browser as the leader of a new process group, and
// makes cancellation kill the whole group.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// killGroup kills what remains of the browser's process group. The group id
// is the leader's pid, which the kernel does not reuse while the group has
// members.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

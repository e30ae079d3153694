// Package childproc ties a test's helper processes (redis-server,
// pgbouncer) to the test process, so that they end with it even when it
// ends without running its cleanup (a panic, a timeout, a closed pipe).
package childproc

import (
	"os/exec"
	"syscall"
)

// DieWithParent makes cmd, before it starts, receive SIGKILL when the
// process that started it ends. (Linux sends it when the starting thread
// ends; the Go runtime keeps its threads for the life of the process.)
func DieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}

//go:build !linux

package childproc

import "os/exec"

// DieWithParent does nothing here: only Linux ties a child's life to its
// parent's; cleanup alone stops the child.
func DieWithParent(*exec.Cmd) {}

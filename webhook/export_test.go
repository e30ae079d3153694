package webhook

import "testing"

// SetHostsFile makes CheckURL read path as the hosts file until t ends.
func SetHostsFile(t *testing.T, path string) {
	old := hostsFile
	hostsFile = path
	t.Cleanup(func() { hostsFile = old })
}

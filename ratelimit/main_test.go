package ratelimit_test

import (
	"os"
	"testing"

	"userapi/cache/cachetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	cachetest.StopSharedCluster()
	os.Exit(code)
}

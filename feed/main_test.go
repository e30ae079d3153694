package feed_test

import (
	"testing"

	"userapi/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

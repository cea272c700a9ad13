package guard

import (
	"os"
	"testing"

	"github.com/tocsin/tocsin/internal/pgtest"
)

// TestMain stops the PostgreSQL server that the store's tests share, if one was started.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

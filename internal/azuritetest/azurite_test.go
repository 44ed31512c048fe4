package azuritetest_test

import (
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/azuritetest"
)

func TestMain(m *testing.M) { os.Exit(azuritetest.Main(m)) }

func up(port int) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}

func TestShared(t *testing.T) {
	cs := azuritetest.Start(t)
	if cs != azuritetest.Start(t) {
		t.Fatal("Start returned two different accounts")
	}
	srv := azuritetest.Shared(t)
	if srv.External() {
		t.Skip("external account")
	}
	if !strings.Contains(cs, "TableEndpoint=http://127.0.0.1:"+strconv.Itoa(srv.Port())+"/devstoreaccount1;") {
		t.Fatalf("connection string %q", strings.ReplaceAll(cs, azuritetest.AccountKey, "<key>"))
	}
	if !up(srv.Port()) {
		t.Fatal("shared Azurite not listening")
	}
}

func TestDedicatedStopStart(t *testing.T) {
	srv := azuritetest.New(t)
	port := srv.Port()
	if !up(port) {
		t.Fatal("not listening")
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if up(port) || srv.Running() {
		t.Fatal("still listening after Stop")
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if !up(port) || srv.Port() != port {
		t.Fatal("not back on the same port")
	}
	if err := srv.Restart(); err != nil || !up(port) {
		t.Fatalf("Restart: %v", err)
	}
}

func TestPrefix(t *testing.T) {
	valid := regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]{2,52}$`)
	seen := map[string]bool{}
	for range 100 {
		p := azuritetest.Prefix(t)
		if !valid.MatchString(p) || seen[p] {
			t.Fatalf("prefix %q invalid or repeated", p)
		}
		seen[p] = true
	}
}

func TestRepoRootAndBinary(t *testing.T) {
	root, err := azuritetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root + "/go.mod"); err != nil {
		t.Fatal(err)
	}
	if os.Getenv(azuritetest.EnvSkip) == "1" || os.Getenv(azuritetest.EnvConnString) != "" {
		return
	}
	bin, err := azuritetest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(bin, "azurite-table") {
		t.Fatalf("binary %q", bin)
	}
}

// Package trilliantest runs a real Trillian 1.8 log server and log signer,
// as processes on loopback, against a fresh MariaDB database, for tests of
// the Trillian backend.
//
// MariaDB must listen on 127.0.0.1:3306 with a root user that has an empty
// password (`.ci/trillian-setup.sh --mariadb` provides it). When
// it is unreachable a test is skipped with a message, except with CI=true,
// where it fails. The two Trillian binaries are taken from
// $KEYCOMMIT_TRILLIAN_BIN (default $HOME/.cache/keycommit/trillian-v1.8.0/bin)
// and built there from the Go module proxy when missing, as
// .ci/trillian-setup.sh does.
package trilliantest

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/trillian"
	"github.com/keycommit/keycommit/log/trillianstore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Version is the Trillian release the harness runs.
const Version = "v1.8.0"

// DefaultMySQLAddr is where the harness expects MariaDB.
const DefaultMySQLAddr = "127.0.0.1:3306"

// BinDir returns the directory holding trillian_log_server and
// trillian_log_signer.
func BinDir() string {
	if d := os.Getenv("KEYCOMMIT_TRILLIAN_BIN"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	return filepath.Join(home, ".cache", "keycommit", "trillian-"+Version, "bin")
}

var buildMu sync.Mutex

// Binaries returns the paths of trillian_log_server and
// trillian_log_signer, building them into BinDir when either is missing.
// Builds from several test processes are serialized by a file lock.
func Binaries() (server, signer string, err error) {
	dir := BinDir()
	server, signer = filepath.Join(dir, "trillian_log_server"), filepath.Join(dir, "trillian_log_signer")
	have := func() bool {
		for _, p := range []string{server, signer} {
			if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	if have() {
		return server, signer, nil
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("couldn't create %s: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".build.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", "", fmt.Errorf("couldn't open the build lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", "", fmt.Errorf("couldn't take the build lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if have() {
		return server, signer, nil
	}
	// Outside any module, so that Trillian's own go.mod pins its
	// dependencies.
	cmd := exec.Command("go", "install",
		"github.com/google/trillian/cmd/trillian_log_server@"+Version,
		"github.com/google/trillian/cmd/trillian_log_signer@"+Version)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("couldn't build the Trillian binaries: %v\n%s", err, out)
	}
	if !have() {
		return "", "", fmt.Errorf("go install did not leave the Trillian binaries in %s", dir)
	}
	return server, signer, nil
}

// RootDSN is the DSN of MariaDB's root user, with no database selected.
func RootDSN() string {
	addr := os.Getenv("KEYCOMMIT_MYSQL_ADDR")
	if addr == "" {
		addr = DefaultMySQLAddr
	}
	return "root@tcp(" + addr + ")/"
}

// RequireMariaDB returns a connection to MariaDB as root. When MariaDB is
// unreachable it skips the test with a message, or fails it if CI=true.
func RequireMariaDB(t testing.TB) *sql.DB {
	t.Helper()
	db, err := openRoot()
	if err != nil {
		msg := fmt.Sprintf("MariaDB is not reachable at %s (%v); start it with .ci/trillian-setup.sh --mariadb", RootDSN(), err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func openRoot() (*sql.DB, error) {
	db, err := sql.Open("mysql", RootDSN()+"?multiStatements=true")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// SchemaPath returns the path of Trillian's MySQL schema in the module
// cache.
func SchemaPath() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/google/trillian").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		// Not inside the module (or not downloaded): ask for the release.
		cmd := exec.Command("go", "mod", "download", "-json", "github.com/google/trillian@"+Version)
		cmd.Dir = os.TempDir()
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
		out, err2 := cmd.Output()
		if err2 != nil {
			return "", fmt.Errorf("couldn't locate the Trillian module: %v; %v", err, err2)
		}
		for _, l := range strings.Split(string(out), "\n") {
			l = strings.TrimSpace(l)
			if v, ok := strings.CutPrefix(l, `"Dir": "`); ok {
				dir = strings.TrimSuffix(v, `",`)
			}
		}
	}
	p := filepath.Join(dir, "storage", "mysql", "schema", "storage.sql")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("couldn't find Trillian's MySQL schema: %w", err)
	}
	return p, nil
}

// CreateDatabase creates a database with a random name holding Trillian's
// schema and returns its name. The caller drops it (DropDatabase).
func CreateDatabase(ctx context.Context, root *sql.DB, prefix string) (string, error) {
	schemaPath, err := SchemaPath()
	if err != nil {
		return "", err
	}
	schema, err := os.ReadFile(schemaPath)
	if err != nil {
		return "", fmt.Errorf("couldn't read Trillian's schema: %w", err)
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	name := prefix + "_" + hex.EncodeToString(rnd[:])
	if _, err := root.ExecContext(ctx, "CREATE DATABASE `"+name+"`"); err != nil {
		return "", fmt.Errorf("couldn't create database %s: %w", name, err)
	}
	conn, err := root.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "USE `"+name+"`"); err != nil {
		return "", fmt.Errorf("couldn't select database %s: %w", name, err)
	}
	if _, err := conn.ExecContext(ctx, string(schema)); err != nil {
		return "", fmt.Errorf("couldn't load Trillian's schema into %s: %w", name, err)
	}
	return name, nil
}

// Options configure Start.
type Options struct {
	// SequencerInterval is the signer's --sequencer_interval (default 10ms).
	SequencerInterval time.Duration
	// BatchSize is the signer's --batch_size (default 1000).
	BatchSize int
}

// Env is a running Trillian: a log server and a log signer over one fresh
// database.
type Env struct {
	// RPCAddr is the log server's gRPC address (log and admin APIs).
	RPCAddr string
	// Database is the MariaDB database name; MySQLURI the DSN the
	// Trillian processes use.
	Database, MySQLURI string
	// Conn is a gRPC connection to the log server.
	Conn  *grpc.ClientConn
	Admin trillian.TrillianAdminClient
	Log   trillian.TrillianLogClient

	t          testing.TB
	dir        string
	opts       Options
	serverBin  string
	signerBin  string
	mu         sync.Mutex
	procs      map[string]*exec.Cmd
	signerRuns int
}

// Start starts a log server and a signer (--force_master) on loopback
// over a fresh database, and stops them and drops the database when the
// test ends. It skips or fails the test as RequireMariaDB does.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	root := RequireMariaDB(t)
	if opts.SequencerInterval == 0 {
		opts.SequencerInterval = 10 * time.Millisecond
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = 1000
	}
	serverBin, signerBin, err := Binaries()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	name, err := CreateDatabase(ctx, root, "kctest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A fresh connection: the test's may be closed by now.
		if db, err := openRoot(); err == nil {
			db.Exec("DROP DATABASE `" + name + "`")
			db.Close()
		}
	})
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.DBName = "root", "tcp", name
	cfg.Addr = strings.TrimSuffix(strings.TrimPrefix(RootDSN(), "root@tcp("), ")/")
	e := &Env{
		Database: name, MySQLURI: cfg.FormatDSN(), t: t, dir: t.TempDir(), opts: opts,
		serverBin: serverBin, signerBin: signerBin, procs: map[string]*exec.Cmd{},
	}
	t.Cleanup(e.stopAll)
	if err := e.startServer(); err != nil {
		t.Fatal(err)
	}
	if err := e.StartSigner(); err != nil {
		t.Fatal(err)
	}
	return e
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (e *Env) start(name, bin string, args ...string) error {
	logPath := filepath.Join(e.dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("couldn't start %s: %w", name, err)
	}
	f.Close()
	e.mu.Lock()
	e.procs[name] = cmd
	e.mu.Unlock()
	return nil
}

func (e *Env) commonFlags() []string {
	return []string{
		"--storage_system=mysql", "--quota_system=noop",
		"--mysql_uri=" + e.MySQLURI, "--http_endpoint=",
	}
}

func (e *Env) startServer() error {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		addr, err := freePort()
		if err != nil {
			return err
		}
		args := append(e.commonFlags(), "--rpc_endpoint="+addr, "--tree_gc=false")
		if err := e.start("trillian_log_server", e.serverBin, args...); err != nil {
			return err
		}
		if lastErr = e.waitServer(addr); lastErr == nil {
			e.RPCAddr = addr
			return nil
		}
		e.kill("trillian_log_server")
	}
	return fmt.Errorf("trillian_log_server did not come up: %v\n%s", lastErr, e.logTail("trillian_log_server"))
}

func (e *Env) waitServer(addr string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	admin := trillian.NewTrillianAdminClient(conn)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = admin.ListTrees(ctx, &trillian.ListTreesRequest{})
		cancel()
		if err == nil {
			e.Conn, e.Admin, e.Log = conn, admin, trillian.NewTrillianLogClient(conn)
			return nil
		}
		if !e.running("trillian_log_server") || time.Now().After(deadline) {
			conn.Close()
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StartSigner starts a log signer (again, after KillSigner).
func (e *Env) StartSigner() error {
	addr, err := freePort()
	if err != nil {
		return err
	}
	args := append(e.commonFlags(), "--rpc_endpoint="+addr, "--force_master",
		"--sequencer_interval="+e.opts.SequencerInterval.String(),
		fmt.Sprintf("--batch_size=%d", e.opts.BatchSize),
		"--num_sequencers=1", "--pre_election_pause=1ms")
	e.mu.Lock()
	e.signerRuns++
	e.mu.Unlock()
	return e.start("trillian_log_signer", e.signerBin, args...)
}

// CPU returns the CPU time (user and system) that the running log server
// and signer have used since they started, read from /proc (Linux only):
// benchmarks report it per operation beside their own process's.
func (e *Env) CPU() (time.Duration, error) {
	e.mu.Lock()
	var pids []int
	for _, cmd := range e.procs {
		pids = append(pids, cmd.Process.Pid)
	}
	e.mu.Unlock()
	var total time.Duration
	for _, pid := range pids {
		d, err := procCPU(pid)
		if err != nil {
			return 0, err
		}
		total += d
	}
	return total, nil
}

// procCPU reads utime+stime of pid from /proc/PID/stat (in clock ticks,
// which are 1/100 s on Linux whatever the kernel's HZ).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("couldn't read the CPU time of Trillian process %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// utime and stime are fields 14 and 15, the 12th and 13th after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("couldn't parse /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("couldn't parse /proc/%d/stat", pid)
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("couldn't parse /proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// KillSigner kills the signer with SIGKILL and waits for it to exit.
func (e *Env) KillSigner() { e.kill("trillian_log_signer") }

func (e *Env) running(name string) bool {
	e.mu.Lock()
	cmd := e.procs[name]
	e.mu.Unlock()
	return cmd != nil && cmd.Process.Signal(syscall.Signal(0)) == nil && (cmd.ProcessState == nil)
}

func (e *Env) kill(name string) {
	e.mu.Lock()
	cmd := e.procs[name]
	delete(e.procs, name)
	e.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	cmd.Wait()
}

func (e *Env) stopAll() {
	if e.Conn != nil {
		e.Conn.Close()
	}
	e.kill("trillian_log_signer")
	e.kill("trillian_log_server")
}

func (e *Env) logTail(name string) string {
	b, _ := os.ReadFile(filepath.Join(e.dir, name+".log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Logs returns the tail of the log server's and signer's output, for
// failure messages.
func (e *Env) Logs() string {
	return "--- trillian_log_server:\n" + e.logTail("trillian_log_server") +
		"\n--- trillian_log_signer:\n" + e.logTail("trillian_log_signer")
}

// CreateTree creates and initializes a PREORDERED_LOG tree (the kind the
// keycommit backend uses) and returns its ID.
func (e *Env) CreateTree(ctx context.Context) (int64, error) {
	return trillianstore.CreateTree(ctx, e.Admin, e.Log, "keycommit test")
}

package tablestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// DefaultPrefix is the table name prefix when none is configured.
const DefaultPrefix = "jit"

// Table name suffixes.
const (
	tableRequests   = "requests"
	tableIndex      = "index"
	tableRejections = "rejections"
	tableLedgers    = "ledgers"
)

var tableSuffixes = []string{tableRequests, tableIndex, tableRejections, tableLedgers}

// Options configure a Store.
type Options struct {
	// Prefix of the table names (default "jit"): letters and digits,
	// starting with a letter, at most 53 characters.
	Prefix string
	// Transport sends the HTTP requests (default: a plain net/http client).
	Transport policy.Transporter
	// TryTimeout bounds each HTTP request (default 15s).
	TryTimeout time.Duration
	// MaxRetries is how often the SDK itself retries a failed request
	// (default 0: none; the broker retries).
	MaxRetries int32
	// Now is the store's clock (default time.Now): it decides which days
	// RecentRejections reads and how old a disagreeing index entry must be
	// before it is deleted.
	Now func() time.Time
	// StaleAfter is how old an index entry that disagrees with its request
	// must be before it is deleted (default 10 minutes).
	StaleAfter time.Duration
	// Logger receives a warning for each stored row a listing leaves out
	// because it cannot be decoded (ids and the kind of problem only, never
	// the row's data). Default: nowhere.
	Logger *slog.Logger
}

// Store is the Table Storage implementation of broker.Store and
// broker.Lister. It is safe for concurrent use.
type Store struct {
	prefix     string
	now        func() time.Time
	staleAfter time.Duration
	log        *slog.Logger

	svc        *aztables.ServiceClient
	requests   *aztables.Client
	index      *aztables.Client
	rejections *aztables.Client
	ledgers    *aztables.Client

	ready    atomic.Bool
	deployed atomic.Pointer[time.Time] // DeployedAt's answer, once known
	ensureMu sync.Mutex
}

var (
	_ broker.Store      = (*Store)(nil)
	_ broker.Lister     = (*Store)(nil)
	_ broker.Deployment = (*Store)(nil)
)

var prefixPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]{0,52}$`)

// ValidatePrefix checks a table name prefix.
func ValidatePrefix(p string) error {
	if !prefixPattern.MatchString(p) {
		return fmt.Errorf("table prefix %q must be 1 to 53 letters or digits, starting with a letter", p)
	}
	return nil
}

// NewFromConnectionString opens the store on a storage account given by a
// connection string (shared key or SAS; Azurite's development account
// works). Errors never repeat the connection string.
func NewFromConnectionString(connString string, opts Options) (*Store, error) {
	s, co, err := prepare(opts)
	if err != nil {
		return nil, err
	}
	svc, err := aztables.NewServiceClientFromConnectionString(connString, co)
	if err != nil {
		return nil, fmt.Errorf("invalid table storage connection string: %s", redact(err.Error(), connString))
	}
	s.init(svc)
	return s, nil
}

// New opens the store on a table endpoint (e.g.
// https://acct.table.core.windows.net) with an Entra credential (the app's
// managed identity).
func New(endpoint string, cred azcore.TokenCredential, opts Options) (*Store, error) {
	if endpoint == "" {
		return nil, errors.New("table storage endpoint is empty")
	}
	if cred == nil {
		return nil, errors.New("no credential for table storage")
	}
	s, co, err := prepare(opts)
	if err != nil {
		return nil, err
	}
	svc, err := aztables.NewServiceClient(endpoint, cred, co)
	if err != nil {
		return nil, fmt.Errorf("table storage endpoint %q: %w", endpoint, err)
	}
	s.init(svc)
	return s, nil
}

func prepare(opts Options) (*Store, *aztables.ClientOptions, error) {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if err := ValidatePrefix(opts.Prefix); err != nil {
		return nil, nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = 10 * time.Minute
	}
	if opts.TryTimeout <= 0 {
		opts.TryTimeout = 15 * time.Second
	}
	retries := opts.MaxRetries
	if retries <= 0 {
		retries = -1 // azcore: negative = no retries
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Store{prefix: opts.Prefix, now: opts.Now, staleAfter: opts.StaleAfter, log: opts.Logger}
	co := &aztables.ClientOptions{}
	co.Transport = opts.Transport
	if co.Transport == nil {
		co.Transport = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	co.Retry = policy.RetryOptions{MaxRetries: retries, TryTimeout: opts.TryTimeout,
		RetryDelay: 200 * time.Millisecond, MaxRetryDelay: 2 * time.Second}
	co.PerCallPolicies = []policy.Policy{asciiBody{}, batchCapture{}}
	co.Telemetry.Disabled = true
	return s, co, nil
}

func (s *Store) init(svc *aztables.ServiceClient) {
	s.svc = svc
	s.requests = svc.NewClient(s.prefix + tableRequests)
	s.index = svc.NewClient(s.prefix + tableIndex)
	s.rejections = svc.NewClient(s.prefix + tableRejections)
	s.ledgers = svc.NewClient(s.prefix + tableLedgers)
}

// Prefix returns the table name prefix in use.
func (s *Store) Prefix() string { return s.prefix }

// TableNames returns the names of the store's tables.
func (s *Store) TableNames() []string {
	out := make([]string, len(tableSuffixes))
	for i, t := range tableSuffixes {
		out[i] = s.prefix + t
	}
	return out
}

// EnsureTables creates the tables that do not exist yet.
func (s *Store) EnsureTables(ctx context.Context) error {
	s.ensureMu.Lock()
	defer s.ensureMu.Unlock()
	for _, name := range s.TableNames() {
		_, err := s.svc.CreateTable(ctx, name, nil)
		if err != nil && !isCode(err, string(aztables.TableAlreadyExists)) {
			return translate("create table "+name, err)
		}
	}
	s.ready.Store(true)
	return nil
}

// DeleteTables removes the store's tables (tests clean up with it).
func (s *Store) DeleteTables(ctx context.Context) error {
	var errs []error
	for _, name := range s.TableNames() {
		if _, err := s.svc.DeleteTable(ctx, name, nil); err != nil && !isStatus(err, http.StatusNotFound) {
			errs = append(errs, translate("delete table "+name, err))
		}
	}
	s.ready.Store(false)
	s.deployed.Store(nil)
	return errors.Join(errs...)
}

// ensure creates the tables on first use (or after a TableNotFound), so a
// store opened while storage was down starts working once it is back.
func (s *Store) ensure(ctx context.Context) error {
	if s.ready.Load() {
		return nil
	}
	return s.EnsureTables(ctx)
}

// Ping checks that storage answers and the tables exist: one point read of
// an entity that never exists.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	_, err := s.requests.GetEntity(ctx, "~ping", "~ping", nil)
	if err == nil || entityMissing(err) {
		return nil
	}
	return s.fail("ping", err)
}

// unreadable logs a stored row a listing leaves out because it cannot be
// decoded: the error names the record and the kind of problem, never its
// data.
func (s *Store) unreadable(ctx context.Context, op string, err error) {
	var u *fault.UnreadableError
	if errors.As(err, &u) {
		s.log.WarnContext(ctx, "stored row cannot be read; left out", "op", op, "id", u.ID, "problem", u.Problem)
	}
}

// fail translates an error and notices vanished tables.
func (s *Store) fail(op string, err error) error {
	if isCode(err, string(aztables.TableNotFound)) {
		s.ready.Store(false)
	}
	return translate(op, err)
}

// redact removes the secret parts of a connection string from a message.
func redact(msg, connString string) string {
	for _, kv := range strings.Split(connString, ";") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "accountkey", "sharedaccesssignature":
			msg = strings.ReplaceAll(msg, v, "<redacted>")
		}
	}
	if strings.Contains(msg, connString) {
		msg = strings.ReplaceAll(msg, connString, "<connection string>")
	}
	return msg
}

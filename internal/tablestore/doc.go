// Package tablestore is the Azure Table Storage adapter: it implements
// broker.Store and broker.Lister with
// github.com/Azure/azure-sdk-for-go/sdk/data/aztables. It is the only place
// that sees storage errors; it translates them once into the kinds of
// package fault (404 → ErrNotFound; 409/412 → ErrConflict; refused or reset
// connections, timeouts, 408, 429 and 5xx → ErrTransient; anything else →
// ErrPermanent). It does not retry (the SDK's retry policy is off by
// default): bounded retries are the broker's job.
//
// # Tables
//
// Four tables, named <prefix><name> (prefix default "jit"; letters and digits,
// starting with a letter, so that names stay valid Azure table names):
//
//	<prefix>requests    one partition per request
//	<prefix>index       the due index and the state index (partition "idx"),
//	                    and when the deployment first ran (partition "meta")
//	<prefix>rejections  rejected events without usable request id
//	<prefix>ledgers     membership ledgers
//
// # Requests (<prefix>requests)
//
// PartitionKey = request id. Row "state" holds the request: the
// access.Request as JSON in string properties Body, Body1, … (BodyParts of
// them; each at most 30,000 UTF-16 code units, under the 64 KiB property
// limit; a request needing more than 15 parts, ~900 KB, is refused with
// fault.ErrPermanent rather than truncated), plus queryable columns State,
// Profile, Requester, Source, RequestedAt, DueAt, HistoryLen, HistoryRows,
// HistorySig and the bookkeeping of the indexes (DueKey, DueETag, Idx,
// IdxSig, IdxETag).
//
// The history is inline: the JSON's "history" holds entries HistoryRows+1 …
// HistoryLen. While the row stays under 120,000 bytes of JSON (thousands of
// ordinary entries) HistoryRows is 0, and a request is ONE entity:
// GetRequest is one point read (the cheapest and steadiest Table Storage
// operation; a partition query is a table scan in Azurite), and a save is one
// single-entity write — an insert (Version "": a create, EntityAlreadyExists
// → fault.ErrConflict) or a replace with If-Match on its ETag
// (UpdateConditionNotSatisfied, or the row gone → fault.ErrConflict). When a
// save would grow the row past that size, the oldest inline entries (up to
// 99 a save) move to rows "h-000001", "h-000002", … (JSON in Body…, plus At
// and Type columns for people browsing the table), inserted in ONE
// entity-group transaction with the state row, so state and history still
// change together; GetRequest then also reads rows h-000001 … h-<HistoryRows>
// with one range query of the partition. State rows written before history
// went inline have no HistoryRows: all HistoryLen entries are history rows,
// read the same way, and later entries go inline.
//
// Stored history is append-only. HistorySig signs the inline entries as
// stored; a save whose stored entries differ from it (the caller changed
// what it read) re-reads the row and writes them back as they were.
//
// A save may append at most 99 history entries (MaxHistoryPerSave); more is
// refused with fault.ErrPermanent. The new ETag comes from the write's answer
// (for a transaction, its own response, which the SDK drops; a small
// pipeline policy keeps it), so a save costs no extra read.
//
// Request bodies are sent as ASCII JSON (non-ASCII as \uXXXX escapes):
// Azurite decodes each chunk of a large body on its own and would store a
// character split between two chunks as U+FFFD (Azure/Azurite#2670).
//
// Version is opaque to callers. It carries the state row's ETag and what the
// store needs to maintain the indexes on the next save (the due and state
// index keys of the version read, with their ETags, and the history length),
// so saves need no extra reads. It changes on every save.
//
// # Due index (<prefix>index, PartitionKey "idx", RowKeys "d…")
//
// RowKey = "d" + 19-digit zero-padded UnixNano of DueAt + "_" + request id,
// so that RowKey order is due order. DueRequests is one range query
// ("d" ≤ RowKey < "d" + key(now+1ns), Top = limit): its cost is proportional
// to what is due, not to the number of stored requests.
//
// Due and state entries share the partition "idx", so that a save writes its
// new entries (due and state) in ONE entity-group transaction before the
// request's transaction, and deletes the superseded ones (known from the
// Version) in ONE transaction after it, with If-Match on the ETags those
// entries had when they were written (if one of them changed meanwhile, the
// other is deleted alone). A save that changes state and due time therefore
// costs 3 round trips (was 5 with one partition per index), one that changes
// neither costs 1. One partition carries every index write: Azure's target of
// about 2,000 entity operations per second per partition is far above what a
// JIT access system sees (a few events per second; see BENCHMARKS.md).
// Table Storage cannot transact across tables or partitions, so the index is
// kept beside the request as follows. An entry can thus
// be stale (a save that lost its compare-and-swap, a crash between the steps)
// but an entry the current state needs is never deleted: whoever writes an
// entry again changes its ETag, so an older delete no longer matches.
// DueRequests returns entries as they are, except those more than
// StaleAfter overdue: a healthy sweep moves an entry within a minute or two,
// so such an entry is suspect and is checked against its state row (a point
// read). It is returned only if the state row still names it; if not, it is
// deleted (If-Match) once it was written more than StaleAfter ago (a younger
// one may belong to a save in progress and is only skipped). So lost saves
// cannot pile up stale entries at the head of the index and starve real
// work, and in the steady state DueRequests stays one round trip. Callers
// re-read every request anyway (broker.Store says entries may be stale).
//
// # State index (<prefix>index, PartitionKey "idx", RowKeys "s-<state>_<id>")
//
// For the non-final states (pending, active, awaiting, activating, ending)
// a row per request (RowKey = "s-" + state + "_" + request id, with Profile
// and Requester columns) is maintained the same way (new before, old after,
// If-Match). Listing by such a state is a range query over that prefix
// (filtered by Profile/Requester in the query) and then point-reads the
// state rows of the ids found (in parallel; an OR of PartitionKeys would be a
// table scan in Azure): the cost follows what is open now, not everything
// that ever ended.
// Items whose state row disagrees are left out (and deleted from the index
// once older than StaleAfter).
//
// Listing without a state or by a final state queries the state rows of the
// requests table (RowKey eq 'state' and State/Profile/Requester eq …), paged
// with the service's continuation (NextPartitionKey/NextRowKey), which
// ListPage.Next carries (the caller makes it opaque and tamper-evident).
// Both ways list in request id order. List items carry no history (History
// nil) to keep lists cheap; StoredHistory says how long it is, so a list
// item cannot be saved by mistake (saving it is refused): load the request
// to change it.
//
// # Rejections (<prefix>rejections)
//
// PartitionKey "rej-YYYYMMDD" (UTC day of At), RowKey = 19-digit
// (MaxInt64 − UnixNano) + "_" + 16 hex digits of SHA-256(event id, reason,
// time) so that the newest come first; the same rejection recorded twice
// (same content and time) is stored once. RecentRejections reads today's
// partition and, when it needs more, yesterday's (by the store's clock).
//
// # Ledgers (<prefix>ledgers)
//
// PartitionKey "ledger", RowKey = group id + "_" + user id; the ledger as
// JSON in Body; insert for Version "", replace with If-Match otherwise, and
// delete with If-Match when the ledger becomes empty (access.Ledger.Empty: no
// grant, no claim, not jitaccess's member, not pre-existing, nothing in the
// bounded lists Released, Ended and Revoked). The claim's request id is also
// kept in column Busy (its name from before the field was ClaimedBy), for
// people browsing the table. A missing ledger is returned empty with Version "".
//
// # When the deployment first ran (<prefix>index, PartitionKey "meta", RowKey "deployment")
//
// DeployedAt (broker.Deployment) reads the entity's At (Edm.DateTime) and,
// when it is missing, inserts it with the caller's now (UTC, to the
// microsecond). Instances starting together both insert; the service keeps
// the first, the other gets EntityAlreadyExists and reads it, so all return
// the same time. The Store remembers the answer: one point read per process,
// then none. Index queries name the partition "idx", so they never see it.
//
// # Rows it cannot read
//
// A row the store cannot decode — a damaged body, a value out of range, a
// layout written by a newer version — fails no listing (docs/design.md, real directory rule 4).
// ListRequests leaves such a state row out of Items and names its request id
// in ListPage.Skipped; DueRequests leaves out a checked entry (one more than
// StaleAfter overdue) whose state row cannot be decoded, so that it does not
// take a slot of every sweep; RecentRejections leaves such a rejection out.
// Each is logged (Options.Logger: the id and the kind of problem, never the
// data). GetRequest of such a request, or of one whose history rows cannot
// be decoded, fails with fault.ErrUnreadable inside fault.ErrPermanent (an
// *fault.UnreadableError names it); a list item carries no history, so a
// request whose history rows are damaged is still listed.
//
// Due index keys clamp UnixNano to [0, MaxInt64]: a request due after
// 2262 (an observed end in 9999) is due at the end of the key space rather
// than, UnixNano wrapping, at once.
//
// # Keys
//
// Request ids, group ids and user ids become keys; a key may not contain
// '/', '\', '#', '?' or control characters, and is at most 512 characters.
// An id that cannot be a key cannot exist: GetRequest answers
// fault.ErrNotFound, a save fault.ErrPermanent.
//
// # Counting round trips
//
// Options.Transport sends the HTTP requests; benchmarks and tests give it
// tablestoretest.Count, which counts every request sent, to check what each
// operation costs.
//
// # Where things are
//
// A request's entities (state row, history rows, Body parts) in codec.go;
// the Version's bookkeeping in version.go; reading a request in
// requests.go, saving it in save.go (SaveRequest's steps in order); index
// keys in indexkeys.go, index writes in indexwrite.go, index queries
// (DueRequests, ListRequests) in index.go; ledgers, rejections and the
// deployment entity in files of their names; storage errors and
// transaction answers in errors.go; key rules in keys.go; the ASCII body
// policy (Azurite) in ascii.go; opening the store in store.go.
package tablestore

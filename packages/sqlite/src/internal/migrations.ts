/**
 * The schema, as `effect/sql` migrations: each runs once per file, in order, in the migrator's one
 * `BEGIN IMMEDIATE` transaction. A new version of the schema is a new entry; an entry never changes.
 */
import { Effect } from "effect"
import { Migrator, SqlClient } from "effect/sql"

const statements = (...sqls: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    for (const text of sqls) yield* sql.unsafe(text)
  })

/**
 * Times are ms since the epoch (INTEGER) where they are compared, ISO 8601 text where a job's
 * model has them. A job is its summary (every field but the payload, JSON) and its payload (JSON),
 * plus the columns its indexes read.
 */
const initial = statements(
  `CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    vendor TEXT NOT NULL,
    status TEXT NOT NULL,
    owner TEXT,
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL,
    overdue_at INTEGER,
    expires_at INTEGER,
    summary TEXT NOT NULL,
    payload TEXT NOT NULL
  ) STRICT`,
  // The listings: newest first within a status, by vendor, by owner, by owner and vendor.
  `CREATE INDEX jobs_by_status ON jobs (status, updated_at, id)`,
  `CREATE INDEX jobs_by_vendor ON jobs (status, vendor, updated_at, id)`,
  `CREATE INDEX jobs_by_owner ON jobs (status, owner, updated_at, id) WHERE owner IS NOT NULL`,
  `CREATE INDEX jobs_by_owner_vendor ON jobs (status, owner, vendor, updated_at, id) WHERE owner IS NOT NULL`,
  `CREATE INDEX jobs_overdue ON jobs (overdue_at) WHERE overdue_at IS NOT NULL`,
  `CREATE INDEX jobs_expiring ON jobs (expires_at) WHERE expires_at IS NOT NULL`,
  // One row per delivery: waiting (no holder, visible_at in the past), delayed (visible_at ahead),
  // or held (holder set, visible_at the end of its lease). AUTOINCREMENT: an id is never reused,
  // so a late acknowledgement can never match a newer delivery.
  `CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    vendor TEXT NOT NULL,
    job_id TEXT NOT NULL,
    deliveries INTEGER NOT NULL,
    visible_at INTEGER NOT NULL,
    holder TEXT
  ) STRICT`,
  `CREATE INDEX deliveries_due ON deliveries (vendor, visible_at)`,
  `CREATE TABLE dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    vendor TEXT NOT NULL,
    job_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL,
    deliveries INTEGER NOT NULL
  ) STRICT`,
  `CREATE INDEX dead_letters_by_vendor ON dead_letters (vendor, id)`,
  `CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    stamp REAL NOT NULL,
    expires_at INTEGER NOT NULL
  ) STRICT`,
  `CREATE TABLE replay_guard (key TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) STRICT`,
  `CREATE TABLE workers (id TEXT PRIMARY KEY, beat TEXT NOT NULL, seen_at INTEGER NOT NULL) STRICT`,
  `CREATE INDEX workers_seen ON workers (seen_at)`,
  `CREATE TABLE stats (
    vendor TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    field TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (vendor, bucket, field)
  ) STRICT, WITHOUT ROWID`,
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT`
)

/** Circuit breakers shared by the processes: one row per circuit, its state as JSON. */
const circuits = statements(
  `CREATE TABLE circuits (key TEXT PRIMARY KEY, entry TEXT NOT NULL, expires_at INTEGER NOT NULL) STRICT`
)

/** The vendors' shared pacing (core's `RateLimitStore`): a state per vendor, a row per lease. */
const rateLimitStore = statements(
  `CREATE TABLE rate_state (vendor TEXT PRIMARY KEY, state TEXT NOT NULL) STRICT`,
  `CREATE TABLE rate_slots (
    vendor TEXT NOT NULL,
    holder TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (vendor, holder)
  ) STRICT, WITHOUT ROWID`
)

/** Runs the migrations this file has not had yet. */
export const run = Migrator.make({})({
  loader: Migrator.fromRecord({ "1_initial": initial, "2_circuits": circuits, "3_rate_limit_store": rateLimitStore }),
  table: "vendorflow_migrations"
})

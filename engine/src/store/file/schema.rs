//! The on-disk layout: opening the database, recognising it as a Switchyard store, the
//! schema migrations, and reading it back at start-up.
//!
//! Invariant: a file is used only when it is recognisably ours and not newer than this
//! build — `PRAGMA application_id` says "Switchyard", `PRAGMA user_version` is the schema
//! version. Anything else (not SQLite at all, another program's database, a newer schema)
//! is [`StoreError::Corrupt`] at start-up, never a silent empty start.
//!
//! Protocol of [`open_writer`]:
//! 1. open (creating the file if missing), read the header: not SQLite → `Corrupt`;
//! 2. an empty database (no tables, version 0) gets the schema, in one transaction;
//! 3. a database with our id and an older version is migrated step by step, in one
//!    transaction (version 1, the store that kept every state in SQL, becomes the journal
//!    layout of version 2 with nothing lost); a newer version or a foreign id → `Corrupt`;
//! 4. WAL mode, `synchronous=NORMAL`: a commit writes the WAL without flushing it; the
//!    store's writer fsyncs the WAL itself (`fdatasync`) before acknowledging anything
//!    (`writer.rs`) — SQLite's own flush, as bundled, is a full `fsync`.

use crate::store::StoreError;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::path::Path;
use std::time::Duration;

/// `PRAGMA application_id`: "SwYd" in ASCII, so `file(1)` and a reader of the header can
/// tell a Switchyard store from any other SQLite file.
pub const APPLICATION_ID: i32 = 0x5377_5964;

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i32 = 6;

/// Job states as stored in `jobs.state`. The numbers are part of the file format (version
/// 1 also had 0 waiting and 3 in flight; both are pending in version 2).
pub mod state {
    /// Ready, waiting behind its FIFO group, or in flight: ready again after a restart.
    pub const PENDING: i64 = 1;
    pub const DELAYED: i64 = 2;
    pub const DEAD: i64 = 4;
    /// Succeeded on a queue that keeps results: kept with its result until `expires_at`.
    pub const COMPLETED: i64 = 5;
    /// Cancelled: kept until `expires_at`.
    pub const CANCELLED: i64 = 6;
}

/// `MIGRATIONS[n]` moves a database from version `n` to `n + 1`. Version 0 is the empty
/// database. Never edit a shipped entry: append a new one and bump [`SCHEMA_VERSION`].
///
/// Version 1 kept every state in SQL with an index per question; version 2 is a journal
/// nothing reads while the engine runs, so it has no index but the primary key; version 3
/// is version 2 with a state check SQLite evaluates without a temporary table; version 4
/// keys the rows by their order number instead of their id; version 5 adds a delayed
/// enqueue's `not_before` and the idempotency claims (`dedup`, one row per live key of a
/// queue, with its expiry); version 6 adds the job lifecycle — a job's `priority`, the
/// finished states completed (5, with its `result`) and cancelled (6) with `finished_at`
/// and `expires_at`, and `cancel_requested` of a job in flight (a table rebuild: the state
/// check changes).
pub(super) const MIGRATIONS: &[&str] = &[
    // 0 → 1
    "CREATE TABLE jobs (
        id            TEXT    NOT NULL UNIQUE,  -- message_receipt_id
        queue         TEXT    NOT NULL,
        function_id   TEXT    NOT NULL,
        payload       BLOB    NOT NULL,         -- encoded google.protobuf.Value
        grp           TEXT,                     -- FIFO message group; NULL on standard queues
        state         INTEGER NOT NULL CHECK (state BETWEEN 0 AND 4), -- 0 waiting 1 ready 2 delayed 3 in flight 4 dead
        seq           INTEGER NOT NULL,         -- enqueue order; a redrive gives a new one
        attempts      INTEGER NOT NULL,
        enqueued_at   INTEGER NOT NULL,         -- ms since the Unix epoch
        due_at        INTEGER NOT NULL,         -- absolute: a restart keeps the schedule
        lease_id      INTEGER NOT NULL DEFAULT 0,
        error_message TEXT,
        error_code    TEXT,
        error_stack   TEXT,
        dead_at       INTEGER,
        dead_seq      INTEGER                   -- DLQ order and page cursor
    );
    CREATE INDEX jobs_ready     ON jobs (queue, function_id, seq) WHERE state = 1;
    CREATE INDEX jobs_delayed   ON jobs (queue, due_at)           WHERE state = 2;
    CREATE INDEX jobs_groups    ON jobs (queue, grp, seq)         WHERE grp IS NOT NULL AND state <> 4;
    CREATE INDEX jobs_dead      ON jobs (queue, dead_seq)         WHERE state = 4;
    CREATE INDEX jobs_in_flight ON jobs (queue)                   WHERE state = 3;
    CREATE INDEX jobs_states    ON jobs (queue, state);
    CREATE TABLE counters (
        queue         TEXT    NOT NULL PRIMARY KEY,
        enqueued      INTEGER NOT NULL DEFAULT 0,
        completed     INTEGER NOT NULL DEFAULT 0,
        failed        INTEGER NOT NULL DEFAULT 0,
        dead_lettered INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    CREATE TABLE meta (
        key   TEXT    NOT NULL PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO meta (key, value) VALUES ('next_seq', 0), ('next_lease', 0);",
    // 1 → 2: one row per job, keyed by id; waiting and in-flight jobs become pending (an
    // in-flight attempt is not counted, as version 1's recover did); the sequences are
    // re-derived from the rows at start-up.
    "CREATE TABLE jobs_v2 (
        id            TEXT    NOT NULL PRIMARY KEY, -- message_receipt_id
        queue         TEXT    NOT NULL,
        function_id   TEXT    NOT NULL,
        payload       BLOB    NOT NULL,             -- encoded google.protobuf.Value
        grp           TEXT,                         -- FIFO message group; NULL on standard queues
        state         INTEGER NOT NULL CHECK (state IN (1, 2, 4)), -- 1 pending 2 delayed 4 dead
        seq           INTEGER NOT NULL,             -- enqueue order; for dead jobs, dead-letter order
        attempts      INTEGER NOT NULL,             -- attempts finished (retried or dead-lettered)
        enqueued_at   INTEGER NOT NULL,             -- ms since the Unix epoch
        due_at        INTEGER NOT NULL,             -- absolute: a restart keeps the schedule
        error_message TEXT,
        error_code    TEXT,
        error_stack   TEXT,
        dead_at       INTEGER
    ) WITHOUT ROWID;
    INSERT INTO jobs_v2
        SELECT id, queue, function_id, payload, grp,
               CASE state WHEN 2 THEN 2 WHEN 4 THEN 4 ELSE 1 END,
               CASE state WHEN 4 THEN dead_seq ELSE seq END,
               CASE state WHEN 3 THEN attempts - 1 ELSE attempts END,
               enqueued_at, due_at, error_message, error_code, error_stack, dead_at
        FROM jobs;
    DROP TABLE jobs;
    ALTER TABLE jobs_v2 RENAME TO jobs;
    DROP TABLE meta;",
    // 2 → 3: the same table with the state check spelled without `IN (…)`, which SQLite
    // evaluates by building a temporary table on every insert (a tenth of the writer's time).
    "CREATE TABLE jobs_v3 (
        id            TEXT    NOT NULL PRIMARY KEY, -- message_receipt_id
        queue         TEXT    NOT NULL,
        function_id   TEXT    NOT NULL,
        payload       BLOB    NOT NULL,             -- encoded google.protobuf.Value
        grp           TEXT,                         -- FIFO message group; NULL on standard queues
        state         INTEGER NOT NULL CHECK (state = 1 OR state = 2 OR state = 4), -- pending, delayed, dead
        seq           INTEGER NOT NULL,             -- enqueue order; for dead jobs, dead-letter order
        attempts      INTEGER NOT NULL,             -- attempts finished (retried or dead-lettered)
        enqueued_at   INTEGER NOT NULL,             -- ms since the Unix epoch
        due_at        INTEGER NOT NULL,             -- absolute: a restart keeps the schedule
        error_message TEXT,
        error_code    TEXT,
        error_stack   TEXT,
        dead_at       INTEGER
    ) WITHOUT ROWID;
    INSERT INTO jobs_v3 SELECT * FROM jobs;
    DROP TABLE jobs;
    ALTER TABLE jobs_v3 RENAME TO jobs;",
    // 3 → 4: rows keyed by their order number, an integer (the table's rowid), instead of
    // by id text. New jobs then append at the end of the table (SQLite splits its last page
    // cheaply), where random-looking text keys made every insert search, compare and
    // rebalance pages; the writer spent ~11,000 instructions per insert, about half of them
    // there. Order numbers are unique in a store (one counter; a new run starts above every
    // kept number), so the copy cannot collide; if a damaged file had a duplicate, the
    // migration fails and the file stays at version 3.
    "CREATE TABLE jobs_v4 (
        seq           INTEGER PRIMARY KEY,          -- enqueue order; for dead jobs, dead-letter order
        id            TEXT    NOT NULL,             -- message_receipt_id
        queue         TEXT    NOT NULL,
        function_id   TEXT    NOT NULL,
        payload       BLOB    NOT NULL,             -- encoded google.protobuf.Value
        grp           TEXT,                         -- FIFO message group; NULL on standard queues
        state         INTEGER NOT NULL CHECK (state = 1 OR state = 2 OR state = 4), -- pending, delayed, dead
        attempts      INTEGER NOT NULL,             -- attempts finished (retried or dead-lettered)
        enqueued_at   INTEGER NOT NULL,             -- ms since the Unix epoch
        due_at        INTEGER NOT NULL,             -- absolute: a restart keeps the schedule
        error_message TEXT,
        error_code    TEXT,
        error_stack   TEXT,
        dead_at       INTEGER
    );
    INSERT INTO jobs_v4 (seq, id, queue, function_id, payload, grp, state, attempts, enqueued_at, due_at,
                         error_message, error_code, error_stack, dead_at)
        SELECT seq, id, queue, function_id, payload, grp, state, attempts, enqueued_at, due_at,
               error_message, error_code, error_stack, dead_at
        FROM jobs;
    DROP TABLE jobs;
    ALTER TABLE jobs_v4 RENAME TO jobs;",
    // 4 → 5
    "ALTER TABLE jobs ADD COLUMN not_before INTEGER;  -- a delayed enqueue's due time, until first ready
    CREATE TABLE dedup (
        queue      TEXT    NOT NULL,
        key        TEXT    NOT NULL,               -- the enqueue's idempotency_key
        job_id     TEXT    NOT NULL,               -- the first job's message_receipt_id
        expires_at INTEGER NOT NULL,               -- ms since the Unix epoch (engine clock)
        PRIMARY KEY (queue, key)
    );
    CREATE INDEX dedup_expiry ON dedup (expires_at);",
    // 5 → 6: the job lifecycle. Existing rows keep everything; they have priority 0, no
    // cancel request and no result.
    "CREATE TABLE jobs_v6 (
        seq              INTEGER PRIMARY KEY,       -- enqueue order; for dead jobs, dead-letter order
        id               TEXT    NOT NULL,          -- message_receipt_id
        queue            TEXT    NOT NULL,
        function_id      TEXT    NOT NULL,
        payload          BLOB    NOT NULL,          -- encoded google.protobuf.Value
        grp              TEXT,                      -- FIFO message group; NULL on standard queues
        state            INTEGER NOT NULL
                         CHECK (state = 1 OR state = 2 OR state = 4 OR state = 5 OR state = 6),
                                                    -- pending, delayed, dead, completed, cancelled
        attempts         INTEGER NOT NULL,          -- attempts finished (retried or dead-lettered)
        enqueued_at      INTEGER NOT NULL,          -- ms since the Unix epoch
        due_at           INTEGER NOT NULL,          -- absolute: a restart keeps the schedule
        error_message    TEXT,
        error_code       TEXT,
        error_stack      TEXT,
        dead_at          INTEGER,
        not_before       INTEGER,                   -- a delayed enqueue's due time, until first ready
        priority         INTEGER NOT NULL DEFAULT 0, -- 0..9, higher first
        cancel_requested INTEGER NOT NULL DEFAULT 0, -- pending (it was in flight) with a cancel request
        finished_at      INTEGER,                   -- completed / cancelled: when it ended;
                                                    -- cancel_requested: when the cancel was asked
        expires_at       INTEGER,                   -- completed / cancelled: kept until then;
                                                    -- cancel_requested: kept until then once cancelled
        result           BLOB                       -- completed: the handler's value (google.protobuf.Value)
    );
    INSERT INTO jobs_v6 (seq, id, queue, function_id, payload, grp, state, attempts, enqueued_at, due_at,
                         error_message, error_code, error_stack, dead_at, not_before)
        SELECT seq, id, queue, function_id, payload, grp, state, attempts, enqueued_at, due_at,
               error_message, error_code, error_stack, dead_at, not_before
        FROM jobs;
    DROP TABLE jobs;
    ALTER TABLE jobs_v6 RENAME TO jobs;",
];

/// The file inside `file_path` that holds the store.
pub const DB_FILE: &str = "switchyard.sqlite3";

/// Opens the WAL of the open database `db` for the writer (SQLite creates it with the first
/// transaction and keeps that same file, rewriting it after checkpoints, while a connection
/// is open), and flushes the directory so the WAL's name is on disk too.
pub fn open_wal(db: &Path) -> Result<std::fs::File, StoreError> {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    let wal = std::fs::File::open(&name)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", Path::new(&name).display())))?;
    if let Some(dir) = db.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::Unavailable(format!("cannot flush {}: {e}", dir.display())))?;
    }
    Ok(wal)
}

/// Opens (creating or migrating as needed) the write connection of the store at `db`.
pub fn open_writer(db: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(db, flags).map_err(|e| classify(db, e))?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(|e| classify(db, e))?;
    let (app_id, version, tables) = identify(&conn).map_err(|e| classify(db, e))?;
    let ours = app_id == APPLICATION_ID;
    if !ours && (app_id != 0 || version != 0 || tables != 0) {
        return Err(StoreError::Corrupt(format!(
            "{} is an SQLite database but not a Switchyard store (application_id {app_id:#x}, user_version \
             {version}, {tables} tables); point file_path at an empty or Switchyard directory",
            db.display()
        )));
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "{} has schema version {version}, newer than this build understands ({SCHEMA_VERSION}); \
             run a newer switchyard",
            db.display()
        )));
    }
    // WAL before the first write, so the schema itself is written through the WAL.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(|e| classify(db, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!("{}: cannot switch to WAL mode (got {mode})", db.display())));
    }
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = OFF;").map_err(|e| classify(db, e))?;
    if version < SCHEMA_VERSION {
        migrate(&mut conn, version).map_err(|e| classify(db, e))?;
    }
    check_tables(&conn).map_err(|e| classify(db, e))?.map_or(Ok(()), |missing| {
        Err(StoreError::Corrupt(format!("{}: table '{missing}' is missing", db.display())))
    })?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// `(application_id, user_version, number of tables)`; fails with `NotADatabase` when the
/// file is not SQLite.
fn identify(conn: &Connection) -> rusqlite::Result<(i32, i32, i64)> {
    let app_id = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let version = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let tables = conn.query_row("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table'", [], |r| r.get(0))?;
    Ok((app_id, version, tables))
}

fn migrate(conn: &mut Connection, from: i32) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)?;
    for (version, script) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        tx.execute_batch(script)?;
        tracing::info!(from = version, to = version + 1, "store schema migrated");
    }
    tx.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"))?;
    tx.commit()
}

/// The first table of the current schema that is missing, if any.
fn check_tables(conn: &Connection) -> rusqlite::Result<Option<&'static str>> {
    for table in ["jobs", "counters", "dedup"] {
        let n: i64 =
            conn.query_row("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1", [table], |r| {
                r.get(0)
            })?;
        if n == 0 {
            return Ok(Some(table));
        }
    }
    Ok(None)
}

/// Damage and foreign files are `Corrupt`; everything else (permissions, disk full, I/O)
/// is `Unavailable`.
pub fn classify(db: &Path, e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            StoreError::Corrupt(format!("{} is not a valid Switchyard store: {e}", db.display()))
        }
        _ => StoreError::Unavailable(format!("{}: {e}", db.display())),
    }
}

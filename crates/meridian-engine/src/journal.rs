//! The execution journal: one SQLite database (WAL) per data directory.
//!
//! Every state change is one committed transaction, written *before* its effect is carried out
//! (an action is recorded `InProgress` before its process starts), so a process killed at any
//! instant leaves a journal that says exactly what may have happened. Several `meridian` processes
//! share the journal; SQLite's locking serialises their transactions.
//!
//! Fault injection: `MERIDIAN_FAULT_KILL_AFTER_WRITES=N` makes the process SIGKILL itself right
//! after its Nth committed write, which is how the tests kill it at every state transition.

use crate::state::{ActionEvent, ActionStatus, ExecutionEvent, ExecutionStatus, IllegalTransition};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    #[error("no execution `{0}` in this data directory")]
    NoSuchExecution(String),
    #[error("execution `{0}` has no action `{1}`")]
    NoSuchAction(String, String),
    #[error("execution {id} has already ended ({status}): there is nothing to {what}")]
    Ended {
        id: String,
        status: String,
        what: &'static str,
    },
    #[error("{0}")]
    Corrupt(String),
    /// The journal file exists but is not a readable SQLite database (empty, truncated,
    /// overwritten). Meridian never overwrites it: the way forward is to move it aside
    /// ([`Journal::quarantine`]), which starts a fresh journal and keeps the old file.
    #[error(
        "the journal `{}` is damaged: {why}. Meridian left it untouched; to start a fresh journal (this data directory's execution history and release ledger then start empty), move it aside, keeping the old file: `mv {} {}`",
        path.display(),
        shell_quote(path),
        shell_quote(aside)
    )]
    Damaged {
        path: PathBuf,
        why: String,
        /// Where moving it aside would put it (`journal.db.corrupt-<time>`).
        aside: PathBuf,
    },
    /// The data directory (or its journal) cannot be written: reading works, recording does not.
    #[error(
        "the data directory `{}` is read-only ({reason}): Meridian can read its journal but cannot record anything in it; make the directory writable, or use a writable data directory (`--data-dir`)",
        dir.display()
    )]
    ReadOnly { dir: PathBuf, reason: String },
}

/// `p` quoted for a POSIX shell when it needs to be.
fn shell_quote(p: &Path) -> String {
    let s = p.to_string_lossy();
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:,@%=".contains(c)) {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The name of the journal file in a data directory.
pub const JOURNAL_FILE: &str = "journal.db";

/// The first 16 bytes of every SQLite database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Where a damaged journal would be moved aside: `journal.db.corrupt-<UTC time>`, with `-N`
/// added when that name is taken.
fn aside_path(path: &Path) -> PathBuf {
    let secs = now_millis() / 1000;
    let stamp: String = meridian_core::clock::format_rfc3339(secs)
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    let base = format!("{}.corrupt-{stamp}", path.display());
    let mut candidate = PathBuf::from(&base);
    let mut n = 1;
    while std::fs::symlink_metadata(&candidate).is_ok() {
        n += 1;
        candidate = PathBuf::from(format!("{base}-{n}"));
    }
    candidate
}

fn damaged(path: &Path, why: impl Into<String>) -> JournalError {
    JournalError::Damaged {
        path: path.to_path_buf(),
        why: why.into(),
        aside: aside_path(path),
    }
}

/// The file next to the database that SQLite names `<db><suffix>` (`-wal`, `-shm`).
fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Why an existing database file of the data directory cannot be used.
#[derive(Debug)]
pub enum FileCheck {
    /// It is not a SQLite database, or a truncated one: the reason, in words.
    Damaged(String),
    /// It cannot be read at all (permissions, I/O).
    Unreadable(std::io::Error),
}

/// Checks an existing journal file before SQLite opens it: SQLite would silently turn an empty
/// file into a new, empty database (the history gone), and reports a truncated one only as
/// "malformed" at some later query. Returns whether the file exists.
fn check_existing(path: &Path) -> Result<bool> {
    check_database_file(path).map_err(|e| match e {
        FileCheck::Damaged(why) => damaged(path, why),
        FileCheck::Unreadable(e) => JournalError::Corrupt(format!("cannot read the journal `{}`: {e}", path.display())),
    })
}

/// Checks an existing SQLite file of the data directory (the journal or any other store) before
/// SQLite opens it; see [`check_existing`]. Returns whether the file exists.
pub fn check_database_file(path: &Path) -> std::result::Result<bool, FileCheck> {
    use std::io::Read;
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(FileCheck::Unreadable(e)),
    };
    let damaged = |_: &Path, why: String| FileCheck::Damaged(why);
    if !meta.is_file() {
        return Err(damaged(path, "it is not a regular file".into()));
    }
    let wal_len = std::fs::metadata(sidecar(path, "-wal")).map(|m| m.len()).unwrap_or(0);
    let len = meta.len();
    if len == 0 {
        if wal_len > 0 {
            // Everything may still be in the write-ahead log: let SQLite read it.
            return Ok(true);
        }
        return Err(damaged(
            path,
            "it is empty (0 bytes) and has no write-ahead log, so it holds no database; Meridian creates its journal complete, so an empty one was cut short by something else (a full disk, a copy, a restore)".into(),
        ));
    }
    let mut header = [0u8; 100];
    let mut f = std::fs::File::open(path).map_err(FileCheck::Unreadable)?;
    let mut got = 0;
    while got < header.len() {
        match f.read(&mut header[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(damaged(path, format!("it cannot be read: {e}"))),
        }
    }
    if got < 16 || &header[..16] != SQLITE_MAGIC {
        return Err(damaged(
            path,
            format!("it is {len} bytes that do not start with SQLite's header (`SQLite format 3`): it is not a SQLite database"),
        ));
    }
    if got < 100 {
        return Err(damaged(
            path,
            format!("it is truncated: {len} bytes, shorter than SQLite's 100-byte header"),
        ));
    }
    if wal_len == 0 {
        // Without a write-ahead log, the file holds the whole database: its size must be the one
        // its header gives (when the header's size is valid: change counter = version-valid-for).
        let be32 = |at: usize| u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]);
        let page_size = match u16::from_be_bytes([header[16], header[17]]) {
            1 => 65536u64,
            n => n as u64,
        };
        let pages = be32(28) as u64;
        if be32(24) == be32(92) && pages > 0 && len < pages * page_size {
            return Err(damaged(
                path,
                format!(
                    "it is truncated: its header says {pages} pages of {page_size} bytes ({} bytes) but the file has {len} bytes",
                    pages * page_size
                ),
            ));
        }
    }
    Ok(true)
}

/// Creates a new journal complete or not at all: the database is built under a temporary name
/// and linked into place, so `journal.db` never exists half made (an empty `journal.db` is then
/// always damage, never a journal being created). Another process creating it at the same time
/// is no error: the first link wins.
fn create_fresh(data_dir: &Path, path: &Path) -> Result<()> {
    let mut b = [0u8; 6];
    meridian_core::random::fill(&mut b);
    let tmp = data_dir.join(format!(".{JOURNAL_FILE}.new-{}-{}", std::process::id(), hex::encode(b)));
    let built = open_sqlite(&tmp, Duration::from_secs(30), SCHEMA).map(drop);
    let linked = built
        .map_err(JournalError::from)
        .and_then(|()| match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(JournalError::Corrupt(format!(
                "cannot create the journal `{}`: {e}",
                path.display()
            ))),
        });
    for f in [tmp.clone(), sidecar(&tmp, "-wal"), sidecar(&tmp, "-shm")] {
        let _ = std::fs::remove_file(f);
    }
    linked
}

/// Is `dir` writable (`access(2)`, which also sees a read-only file system)?
fn writable(dir: &Path) -> std::result::Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return Err("its path holds a NUL byte".into());
    };
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().to_string())
    }
}

fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

fn is_read_only(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::PermissionDenied)
    )
}

pub type Result<T> = std::result::Result<T, JournalError>;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS executions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    pipeline TEXT NOT NULL,
    mode TEXT NOT NULL,
    status TEXT NOT NULL,
    status_reason TEXT,
    definition TEXT NOT NULL,
    context TEXT NOT NULL,
    trigger TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    owner_pid INTEGER,
    owner_start INTEGER,
    waiting TEXT,
    stop_mode TEXT
);
CREATE INDEX IF NOT EXISTS executions_by_pipeline ON executions (pipeline, seq);
CREATE TABLE IF NOT EXISTS stages (
    execution_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    started_at INTEGER,
    ended_at INTEGER,
    PRIMARY KEY (execution_id, idx)
);
CREATE TABLE IF NOT EXISTS actions (
    execution_id TEXT NOT NULL,
    stage_idx INTEGER NOT NULL,
    name TEXT NOT NULL,
    region TEXT NOT NULL,
    run_order INTEGER NOT NULL,
    provider TEXT NOT NULL,
    namespace TEXT,
    status TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    started_at INTEGER,
    ended_at INTEGER,
    error TEXT,
    output_variables TEXT NOT NULL DEFAULT '{}',
    resolved_configuration TEXT,
    log_path TEXT,
    PRIMARY KEY (execution_id, stage_idx, name)
);
CREATE TABLE IF NOT EXISTS artifacts (
    execution_id TEXT NOT NULL,
    name TEXT NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    region TEXT NOT NULL,
    PRIMARY KEY (execution_id, name)
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    stage TEXT,
    action TEXT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS events_by_execution ON events (execution_id, seq);
CREATE TABLE IF NOT EXISTS approvals (
    execution_id TEXT NOT NULL,
    stage_idx INTEGER NOT NULL,
    action TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    approved INTEGER NOT NULL,
    comment TEXT,
    decided_at INTEGER NOT NULL,
    PRIMARY KEY (execution_id, stage_idx, action, attempt)
);
CREATE TABLE IF NOT EXISTS releases (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline TEXT NOT NULL,
    region TEXT NOT NULL,
    stack TEXT NOT NULL,
    release_id TEXT NOT NULL,
    execution_id TEXT,
    artifact_digest TEXT,
    template_digest TEXT NOT NULL,
    functions TEXT NOT NULL,
    template TEXT NOT NULL,
    parameters TEXT NOT NULL,
    capabilities TEXT NOT NULL,
    artifact_root TEXT,
    status TEXT NOT NULL,
    detail TEXT,
    at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS releases_by_region ON releases (pipeline, region, seq);
CREATE TABLE IF NOT EXISTS stage_locks (
    pipeline TEXT NOT NULL,
    stage TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    PRIMARY KEY (pipeline, stage)
);
"#;

/// Opens a SQLite database shared by processes: WAL, the busy timeout, then `schema`.
/// Switching a new database to WAL and creating its schema can meet another process doing the
/// same on a fresh data directory; SQLite answers BUSY at once there, without the busy timeout,
/// so both steps are retried (for up to about six seconds).
pub fn open_sqlite(path: &Path, busy_timeout: Duration, schema: &str) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(busy_timeout)?;
    let mut tries = 0;
    loop {
        // WAL with synchronous NORMAL, as the journal: a commit survives a killed process (what
        // crash safety needs here); only a power cut may lose the last commits, never consistency.
        let setup = conn
            .pragma_update(None, "journal_mode", "WAL")
            .and_then(|_| conn.pragma_update(None, "synchronous", "NORMAL"))
            .and_then(|_| conn.execute_batch(schema));
        match setup {
            Ok(()) => return Ok(conn),
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::DatabaseBusy && tries < 300 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Opens one of the data directory's other SQLite stores (local stacks, local Lambda, delivery),
/// creating it when it is missing. As with the journal, a file that is not a readable database
/// is never overwritten: the error names it, says what is wrong, and gives the command that moves
/// it aside (`loses` says what starting afresh loses). Errors are text for the user.
pub fn open_store(
    path: &Path,
    busy_timeout: Duration,
    schema: &str,
    loses: &str,
) -> std::result::Result<Connection, String> {
    let damaged = |why: String| {
        format!(
            "`{}` is damaged: {why}. Meridian left it untouched; to start it afresh ({loses}), move it aside, keeping the old file: `mv {} {}`",
            path.display(),
            shell_quote(path),
            shell_quote(&aside_path(path))
        )
    };
    let open = || match open_sqlite(path, busy_timeout, schema) {
        Ok(conn) => Ok(conn),
        Err(e) if is_damage(&e) => Err(damaged(format!("SQLite cannot read it ({e})"))),
        Err(e) => Err(format!("cannot open `{}`: {e}", path.display())),
    };
    // The file's header is read directly only the first time this process opens the store:
    // closing a descriptor of a file releases every POSIX lock the process holds on it, so
    // reading it beside a live connection (another driver's, the endpoint's) would drop that
    // connection's locks and let SQLite fail with "disk I/O error". Later opens rely on SQLite's
    // own checks. First opens are serialized, so no connection of this process is open meanwhile.
    static CHECKED: std::sync::Mutex<std::collections::BTreeSet<std::path::PathBuf>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut checked = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
    if checked.contains(path) {
        drop(checked);
        return open();
    }
    // These stores are created by SQLite in place: an empty file is one being created right now
    // by another process (SQLite writes its schema next), not damage.
    let empty = std::fs::metadata(path)
        .map(|m| m.is_file() && m.len() == 0)
        .unwrap_or(false);
    match if empty { Ok(true) } else { check_database_file(path) } {
        Ok(_) => {}
        Err(FileCheck::Damaged(why)) => return Err(damaged(why)),
        Err(FileCheck::Unreadable(e)) => return Err(format!("cannot read `{}`: {e}", path.display())),
    }
    let conn = open()?;
    checked.insert(path.to_path_buf());
    Ok(conn)
}

/// Opens an existing journal for reading only, for a data directory that cannot be written. A
/// journal without a write-ahead log is opened `immutable` (SQLite then needs no `-shm` file,
/// which it could not create); one with a log is opened read-only through it.
fn open_read_only(path: &Path) -> Result<Connection> {
    use rusqlite::OpenFlags;
    let has_wal = std::fs::metadata(sidecar(path, "-wal"))
        .map(|m| m.len() > 0)
        .unwrap_or(false);
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let conn = if has_wal {
        Connection::open_with_flags(path, flags)?
    } else {
        let mut uri = String::from("file:");
        for b in path.to_string_lossy().bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'.' | b'-' | b'_' | b'~' => uri.push(b as char),
                _ => uri.push_str(&format!("%{b:02X}")),
            }
        }
        uri.push_str("?immutable=1");
        Connection::open_with_flags(uri, flags)?
    };
    conn.busy_timeout(Duration::from_secs(30))?;
    // A damaged file shows here rather than at the first query.
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)) {
        Ok(_) => Ok(conn),
        Err(e) if is_damage(&e) => Err(damaged(path, format!("SQLite cannot read it ({e})"))),
        Err(e) => Err(e.into()),
    }
}

pub fn now_millis() -> i64 {
    use meridian_core::Clock;
    meridian_core::SystemClock.now_millis()
}

/// The start time of a process (clock ticks since boot), to tell a live owner from a reused pid.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: count fields after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

pub fn owner_alive(pid: Option<i64>, start: Option<i64>) -> bool {
    match (pid, start) {
        (Some(pid), Some(start)) => process_start_time(pid as u32) == Some(start as u64),
        _ => false,
    }
}

pub struct Journal {
    /// Where the journal's timestamps come from (the machine's clock unless injected).
    clock: std::sync::Arc<dyn meridian_core::Clock>,
    conn: Mutex<Connection>,
    path: PathBuf,
    /// Why the journal cannot be written, when it was opened read-only.
    read_only: Option<String>,
    writes: AtomicU64,
    kill_after: Option<u64>,
    pid: u32,
    start: u64,
    /// How long each committed write took (microseconds), for the benchmark's transition cost.
    timings: Mutex<Vec<u32>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionRow {
    pub seq: i64,
    pub id: String,
    pub pipeline: String,
    pub mode: String,
    pub status: ExecutionStatus,
    pub status_reason: Option<String>,
    pub trigger: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub waiting: Option<String>,
    #[serde(skip)]
    pub definition: String,
    #[serde(skip)]
    pub context: String,
    #[serde(skip)]
    pub owner_pid: Option<i64>,
    #[serde(skip)]
    pub owner_start: Option<i64>,
    #[serde(skip)]
    pub stop_mode: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StageRow {
    pub idx: i64,
    pub name: String,
    pub status: ActionStatus,
    pub attempt: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionRow {
    pub stage_idx: i64,
    pub name: String,
    pub region: String,
    pub run_order: i64,
    pub provider: String,
    pub namespace: Option<String>,
    pub status: ActionStatus,
    pub attempt: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub error: Option<String>,
    pub output_variables: serde_json::Map<String, serde_json::Value>,
    pub log_path: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRow {
    pub seq: i64,
    pub at: i64,
    pub kind: String,
    pub stage: Option<String>,
    pub action: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactRow {
    pub name: String,
    pub digest: String,
    pub size: i64,
    pub region: String,
}

/// A new action row, written when its execution is created.
pub struct NewAction<'a> {
    pub stage_idx: usize,
    pub name: &'a str,
    pub region: &'a str,
    pub run_order: i64,
    pub provider: &'a str,
    pub namespace: Option<&'a str>,
}

fn exec_from_row(r: &rusqlite::Row) -> rusqlite::Result<ExecutionRow> {
    let status: String = r.get("status")?;
    Ok(ExecutionRow {
        seq: r.get("seq")?,
        id: r.get("id")?,
        pipeline: r.get("pipeline")?,
        mode: r.get("mode")?,
        status: status
            .parse()
            .map_err(|e: String| rusqlite::Error::InvalidColumnName(e))?,
        status_reason: r.get("status_reason")?,
        trigger: r.get("trigger")?,
        started_at: r.get("started_at")?,
        ended_at: r.get("ended_at")?,
        waiting: r.get("waiting")?,
        definition: r.get("definition")?,
        context: r.get("context")?,
        owner_pid: r.get("owner_pid")?,
        owner_start: r.get("owner_start")?,
        stop_mode: r.get("stop_mode")?,
    })
}

fn action_from_row(r: &rusqlite::Row) -> rusqlite::Result<ActionRow> {
    let status: String = r.get("status")?;
    let vars: String = r.get("output_variables")?;
    Ok(ActionRow {
        stage_idx: r.get("stage_idx")?,
        name: r.get("name")?,
        region: r.get("region")?,
        run_order: r.get("run_order")?,
        provider: r.get("provider")?,
        namespace: r.get("namespace")?,
        status: status
            .parse()
            .map_err(|e: String| rusqlite::Error::InvalidColumnName(e))?,
        attempt: r.get("attempt")?,
        started_at: r.get("started_at")?,
        ended_at: r.get("ended_at")?,
        error: r.get("error")?,
        output_variables: serde_json::from_str(&vars).unwrap_or_default(),
        log_path: r.get("log_path")?,
    })
}

impl Journal {
    /// Opens (or creates) the journal of a data directory. An existing file that is not a valid
    /// database is never overwritten: [`JournalError::Damaged`] says what is wrong and how to
    /// move it aside. A data directory that cannot be written is opened read-only: reading works,
    /// and every write answers [`JournalError::ReadOnly`] naming the directory.
    pub fn open(data_dir: &Path) -> Result<Journal> {
        if let Err(e) = std::fs::create_dir_all(data_dir) {
            let reason = e.to_string();
            return Err(match e.kind() {
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                    JournalError::ReadOnly {
                        dir: data_dir.to_path_buf(),
                        reason: format!("cannot create it: {reason}"),
                    }
                }
                _ => JournalError::Corrupt(format!(
                    "cannot create the data directory `{}`: {reason}",
                    data_dir.display()
                )),
            });
        }
        let path = data_dir.join(JOURNAL_FILE);
        let exists = check_existing(&path)?;
        let dir_writable = writable(data_dir);
        if !exists {
            if let Err(reason) = dir_writable {
                return Err(JournalError::ReadOnly {
                    dir: data_dir.to_path_buf(),
                    reason: format!("it has no journal yet and one cannot be created: {reason}"),
                });
            }
            create_fresh(data_dir, &path)?;
        }
        let (conn, read_only) = match open_sqlite(&path, Duration::from_secs(30), SCHEMA) {
            Ok(conn) if dir_writable.is_ok() => (conn, None),
            Ok(conn) => {
                // The file is writable but its directory is not: SQLite could not create its
                // write-ahead log for a write, so say so before any write is tried.
                drop(conn);
                let reason = dir_writable.err().unwrap_or_default();
                (open_read_only(&path)?, Some(reason))
            }
            Err(e) if is_damage(&e) => return Err(damaged(&path, format!("SQLite cannot read it ({e})"))),
            Err(e) if is_read_only(&e) || dir_writable.is_err() => {
                let reason = match dir_writable {
                    Err(r) => r,
                    Ok(()) => e.to_string(),
                };
                (open_read_only(&path)?, Some(reason))
            }
            Err(e) => return Err(e.into()),
        };
        if read_only.is_none() {
            conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        let pid = std::process::id();
        Ok(Journal {
            clock: std::sync::Arc::new(meridian_core::SystemClock),
            conn: Mutex::new(conn),
            path,
            read_only,
            writes: AtomicU64::new(0),
            kill_after: std::env::var("MERIDIAN_FAULT_KILL_AFTER_WRITES")
                .ok()
                .and_then(|v| v.parse().ok()),
            pid,
            start: process_start_time(pid).unwrap_or(0),
            timings: Mutex::new(Vec::new()),
        })
    }

    /// The same journal with its timestamps from `clock`.
    pub fn with_clock(mut self, clock: std::sync::Arc<dyn meridian_core::Clock>) -> Journal {
        self.clock = clock;
        self
    }

    /// The engine's clock.
    pub fn clock(&self) -> std::sync::Arc<dyn meridian_core::Clock> {
        self.clock.clone()
    }

    /// The time now, on the journal's clock (what it records in every row).
    pub fn now(&self) -> i64 {
        self.clock.now_millis()
    }

    /// Moves a data directory's journal aside (`journal.db` to `journal.db.corrupt-<time>`, its
    /// write-ahead log and shared-memory files with it) so that the next [`Journal::open`]
    /// starts a fresh one; returns where it now is. Each move is one `rename(2)`: the file is
    /// never copied, never half moved and never deleted. Nothing is checked about the file
    /// itself: this is the way forward from [`JournalError::Damaged`], and no process may be
    /// using the journal meanwhile.
    pub fn quarantine(data_dir: &Path) -> Result<PathBuf> {
        let path = data_dir.join(JOURNAL_FILE);
        if std::fs::symlink_metadata(&path).is_err() {
            return Err(JournalError::Corrupt(format!(
                "there is no journal to move aside: `{}` does not exist",
                path.display()
            )));
        }
        let aside = aside_path(&path);
        // The log first: were the move interrupted, the database is then the file still in place.
        for suffix in ["-wal", "-shm"] {
            let from = sidecar(&path, suffix);
            if std::fs::symlink_metadata(&from).is_ok() {
                std::fs::rename(&from, sidecar(&aside, suffix)).map_err(|e| {
                    JournalError::Corrupt(format!(
                        "cannot move `{}` aside to `{}`: {e}",
                        from.display(),
                        sidecar(&aside, suffix).display()
                    ))
                })?;
            }
        }
        std::fs::rename(&path, &aside).map_err(|e| {
            JournalError::Corrupt(format!(
                "cannot move `{}` aside to `{}`: {e}",
                path.display(),
                aside.display()
            ))
        })?;
        Ok(aside)
    }

    /// Whether the journal was opened read-only (its data directory cannot be written).
    pub fn is_read_only(&self) -> bool {
        self.read_only.is_some()
    }

    /// A SQLite error in the words of this journal: damage names the file and the way forward,
    /// a refused write names the read-only directory.
    fn explain(&self, e: JournalError) -> JournalError {
        match e {
            JournalError::Sql(e) if is_damage(&e) => damaged(&self.path, format!("SQLite cannot read it ({e})")),
            JournalError::Sql(e) if is_read_only(&e) => JournalError::ReadOnly {
                dir: self.path.parent().unwrap_or(Path::new(".")).to_path_buf(),
                reason: e.to_string(),
            },
            other => other,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Runs `f` in one IMMEDIATE transaction and commits it; counts the write for fault injection.
    pub fn write<T>(&self, f: impl FnOnce(&rusqlite::Transaction) -> Result<T>) -> Result<T> {
        if let Some(reason) = &self.read_only {
            return Err(JournalError::ReadOnly {
                dir: self.path.parent().unwrap_or(Path::new(".")).to_path_buf(),
                reason: reason.clone(),
            });
        }
        let started = std::time::Instant::now();
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let out = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })()
        .map_err(|e| self.explain(e))?;
        drop(conn);
        if let Ok(mut t) = self.timings.lock() {
            t.push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
        }
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if self.kill_after == Some(n) {
            // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
        Ok(out)
    }

    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        f(&conn).map_err(|e| self.explain(e))
    }

    /// The duration of every write so far, in microseconds.
    pub fn write_timings(&self) -> Vec<u32> {
        self.timings.lock().map(|t| t.clone()).unwrap_or_default()
    }

    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    pub(crate) fn event(
        &self,
        tx: &rusqlite::Transaction,
        exec: &str,
        kind: &str,
        stage: Option<&str>,
        action: Option<&str>,
        detail: Option<&str>,
    ) -> Result<()> {
        tx.execute(
            "INSERT INTO events (execution_id, at, kind, stage, action, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![exec, self.now(), kind, stage, action, detail],
        )?;
        Ok(())
    }

    /// Records a new execution with all its stages and actions `Pending`, owned by this process.
    #[allow(clippy::too_many_arguments)]
    pub fn create_execution(
        &self,
        id: &str,
        pipeline: &str,
        mode: &str,
        definition: &str,
        context: &str,
        trigger: &str,
        stages: &[String],
        actions: &[NewAction],
    ) -> Result<i64> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO executions (id, pipeline, mode, status, definition, context, trigger, started_at, owner_pid, owner_start)
                 VALUES (?1, ?2, ?3, 'InProgress', ?4, ?5, ?6, ?7, ?8, ?9)",
                params![id, pipeline, mode, definition, context, trigger, self.now(), self.pid, self.start as i64],
            )?;
            let seq = tx.last_insert_rowid();
            for (i, s) in stages.iter().enumerate() {
                tx.execute("INSERT INTO stages (execution_id, idx, name, status) VALUES (?1, ?2, ?3, 'Pending')", params![id, i as i64, s])?;
            }
            for a in actions {
                tx.execute(
                    "INSERT INTO actions (execution_id, stage_idx, name, region, run_order, provider, namespace, status)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'Pending')",
                    params![id, a.stage_idx as i64, a.name, a.region, a.run_order, a.provider, a.namespace],
                )?;
            }
            self.event(tx, id, "ExecutionStarted", None, None, Some(trigger))?;
            Ok(seq)
        })
    }

    fn exec_status(tx: &Connection, id: &str) -> Result<ExecutionStatus> {
        let s: Option<String> = tx
            .query_row("SELECT status FROM executions WHERE id = ?1", [id], |r| r.get(0))
            .optional()?;
        let s = s.ok_or_else(|| JournalError::NoSuchExecution(id.to_string()))?;
        s.parse().map_err(JournalError::Corrupt)
    }

    /// Applies an execution event; terminal statuses release the execution's stage locks.
    pub fn execution_event(&self, id: &str, ev: ExecutionEvent, reason: Option<&str>) -> Result<ExecutionStatus> {
        self.write(|tx| {
            let next = Self::exec_status(tx, id)?.apply(ev)?;
            let ended = next.is_terminal().then(|| self.now());
            tx.execute(
                "UPDATE executions SET status = ?2, status_reason = COALESCE(?3, status_reason), ended_at = ?4, waiting = NULL,
                 stop_mode = CASE WHEN ?2 = 'InProgress' THEN NULL ELSE stop_mode END WHERE id = ?1",
                params![id, next.to_string(), reason, ended],
            )?;
            if next.is_terminal() {
                tx.execute("DELETE FROM stage_locks WHERE execution_id = ?1", [id])?;
            }
            if ev == ExecutionEvent::Retry {
                tx.execute("UPDATE executions SET status_reason = NULL, owner_pid = ?2, owner_start = ?3 WHERE id = ?1", params![id, self.pid, self.start as i64])?;
            }
            self.event(tx, id, &format!("Execution{next}"), None, None, reason)?;
            Ok(next)
        })
    }

    pub fn request_stop(&self, id: &str, abandon: bool, reason: &str) -> Result<ExecutionStatus> {
        self.write(|tx| {
            let cur = Self::exec_status(tx, id)?;
            if cur.is_terminal() {
                return Err(JournalError::Ended {
                    id: id.to_string(),
                    status: cur.to_string(),
                    what: "stop",
                });
            }
            let next = if cur == ExecutionStatus::Stopping {
                cur
            } else {
                cur.apply(ExecutionEvent::StopRequested)?
            };
            let mode = if abandon { "abandon" } else { "wait" };
            tx.execute(
                "UPDATE executions SET status = ?2, stop_mode = ?3, status_reason = ?4 WHERE id = ?1",
                params![id, next.to_string(), mode, reason],
            )?;
            self.event(tx, id, "StopRequested", None, None, Some(&format!("{mode}: {reason}")))?;
            Ok(next)
        })
    }

    pub fn set_waiting(&self, id: &str, waiting: Option<&str>) -> Result<()> {
        self.write(|tx| {
            tx.execute("UPDATE executions SET waiting = ?2 WHERE id = ?1", params![id, waiting])?;
            if let Some(w) = waiting {
                self.event(tx, id, "Waiting", None, None, Some(w))?;
            }
            Ok(())
        })
    }

    pub fn stage_event(&self, id: &str, idx: usize, name: &str, status: ActionStatus) -> Result<()> {
        self.write(|tx| {
            let now = self.now();
            match status {
                ActionStatus::InProgress => tx.execute(
                    "UPDATE stages SET status = 'InProgress', attempt = attempt + 1, started_at = ?3, ended_at = NULL WHERE execution_id = ?1 AND idx = ?2",
                    params![id, idx as i64, now],
                )?,
                other => tx.execute(
                    "UPDATE stages SET status = ?3, ended_at = ?4 WHERE execution_id = ?1 AND idx = ?2",
                    params![id, idx as i64, other.to_string(), now],
                )?,
            };
            self.event(tx, id, &format!("Stage{status}"), Some(name), None, None)?;
            Ok(())
        })
    }

    fn action_status(tx: &Connection, id: &str, stage: usize, name: &str) -> Result<ActionStatus> {
        let s: Option<String> = tx
            .query_row(
                "SELECT status FROM actions WHERE execution_id = ?1 AND stage_idx = ?2 AND name = ?3",
                params![id, stage as i64, name],
                |r| r.get(0),
            )
            .optional()?;
        s.ok_or_else(|| JournalError::NoSuchAction(id.to_string(), name.to_string()))?
            .parse()
            .map_err(JournalError::Corrupt)
    }

    /// Records that an action starts, with its resolved configuration and log file: written
    /// before the action's process exists.
    pub fn action_started(
        &self,
        id: &str,
        stage: usize,
        stage_name: &str,
        name: &str,
        resolved: &str,
        log_path: &str,
    ) -> Result<i64> {
        self.write(|tx| {
            let next = Self::action_status(tx, id, stage, name)?.apply(ActionEvent::Start)?;
            tx.execute(
                "UPDATE actions SET status = ?4, attempt = attempt + 1, started_at = ?5, ended_at = NULL, error = NULL,
                 resolved_configuration = ?6, log_path = ?7 WHERE execution_id = ?1 AND stage_idx = ?2 AND name = ?3",
                params![id, stage as i64, name, next.to_string(), self.now(), resolved, log_path],
            )?;
            let attempt: i64 = tx.query_row(
                "SELECT attempt FROM actions WHERE execution_id = ?1 AND stage_idx = ?2 AND name = ?3",
                params![id, stage as i64, name],
                |r| r.get(0),
            )?;
            self.event(tx, id, "ActionInProgress", Some(stage_name), Some(name), None)?;
            Ok(attempt)
        })
    }

    /// Records an action's end, with its output artifacts and variables, in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub fn action_finished(
        &self,
        id: &str,
        stage: usize,
        stage_name: &str,
        name: &str,
        ev: ActionEvent,
        error: Option<&str>,
        outputs: &[ArtifactRow],
        variables: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<ActionStatus> {
        self.write(|tx| {
            let next = Self::action_status(tx, id, stage, name)?.apply(ev)?;
            tx.execute(
                "UPDATE actions SET status = ?4, ended_at = ?5, error = ?6, output_variables = ?7
                 WHERE execution_id = ?1 AND stage_idx = ?2 AND name = ?3",
                params![id, stage as i64, name, next.to_string(), self.now(), error, serde_json::Value::Object(variables.clone()).to_string()],
            )?;
            for o in outputs {
                tx.execute(
                    "INSERT OR REPLACE INTO artifacts (execution_id, name, digest, size, region) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![id, o.name, o.digest, o.size, o.region],
                )?;
            }
            self.event(tx, id, &format!("Action{next}"), Some(stage_name), Some(name), error)?;
            Ok(next)
        })
    }

    /// Moves actions back to `Pending` (retry, resume), recording why.
    pub fn reset_action(
        &self,
        id: &str,
        stage: usize,
        stage_name: &str,
        name: &str,
        ev: ActionEvent,
        why: &str,
    ) -> Result<()> {
        self.write(|tx| {
            let next = Self::action_status(tx, id, stage, name)?.apply(ev)?;
            tx.execute(
                "UPDATE actions SET status = ?4 WHERE execution_id = ?1 AND stage_idx = ?2 AND name = ?3",
                params![id, stage as i64, name, next.to_string()],
            )?;
            self.event(
                tx,
                id,
                &format!("Action{ev:?}"),
                Some(stage_name),
                Some(name),
                Some(why),
            )?;
            Ok(())
        })
    }

    pub fn execution(&self, id: &str) -> Result<ExecutionRow> {
        self.read(|c| {
            c.query_row("SELECT * FROM executions WHERE id = ?1", [id], exec_from_row)
                .optional()?
                .ok_or_else(|| JournalError::NoSuchExecution(id.to_string()))
        })
    }

    /// Finds an execution by its id or a unique prefix of it.
    pub fn resolve_id(&self, prefix: &str) -> Result<String> {
        self.read(|c| {
            let mut st = c.prepare("SELECT id FROM executions WHERE id LIKE ?1 || '%' ORDER BY seq")?;
            let ids: Vec<String> = st.query_map([prefix], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
            match ids.len() {
                1 => Ok(ids.into_iter().next().unwrap_or_default()),
                0 => Err(JournalError::NoSuchExecution(prefix.to_string())),
                n => Err(JournalError::Corrupt(format!(
                    "`{prefix}` matches {n} executions: give more of the id"
                ))),
            }
        })
    }

    pub fn executions(&self, pipeline: Option<&str>) -> Result<Vec<ExecutionRow>> {
        self.read(|c| {
            let mut st = c.prepare("SELECT * FROM executions WHERE (?1 IS NULL OR pipeline = ?1) ORDER BY seq")?;
            let rows = st
                .query_map([pipeline], exec_from_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    pub fn stages(&self, id: &str) -> Result<Vec<StageRow>> {
        self.read(|c| {
            let mut st = c.prepare("SELECT * FROM stages WHERE execution_id = ?1 ORDER BY idx")?;
            let rows = st
                .query_map([id], |r| {
                    let status: String = r.get("status")?;
                    Ok(StageRow {
                        idx: r.get("idx")?,
                        name: r.get("name")?,
                        status: status
                            .parse()
                            .map_err(|e: String| rusqlite::Error::InvalidColumnName(e))?,
                        attempt: r.get("attempt")?,
                        started_at: r.get("started_at")?,
                        ended_at: r.get("ended_at")?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    pub fn actions(&self, id: &str) -> Result<Vec<ActionRow>> {
        self.read(|c| {
            let mut st =
                c.prepare("SELECT * FROM actions WHERE execution_id = ?1 ORDER BY stage_idx, run_order, rowid")?;
            let rows = st.query_map([id], action_from_row)?.collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    pub fn events(&self, id: &str) -> Result<Vec<EventRow>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT seq, at, kind, stage, action, detail FROM events WHERE execution_id = ?1 ORDER BY seq",
            )?;
            let rows = st
                .query_map([id], |r| {
                    Ok(EventRow {
                        seq: r.get(0)?,
                        at: r.get(1)?,
                        kind: r.get(2)?,
                        stage: r.get(3)?,
                        action: r.get(4)?,
                        detail: r.get(5)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    pub fn artifacts(&self, id: &str) -> Result<Vec<ArtifactRow>> {
        self.read(|c| {
            let mut st =
                c.prepare("SELECT name, digest, size, region FROM artifacts WHERE execution_id = ?1 ORDER BY name")?;
            let rows = st
                .query_map([id], |r| {
                    Ok(ArtifactRow {
                        name: r.get(0)?,
                        digest: r.get(1)?,
                        size: r.get(2)?,
                        region: r.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    /// Digests referenced by the newest `keep` executions of every pipeline.
    pub fn retained_digests(&self, keep: usize) -> Result<std::collections::BTreeSet<String>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT a.digest FROM artifacts a JOIN executions e ON e.id = a.execution_id
                 WHERE e.seq IN (SELECT seq FROM executions e2 WHERE e2.pipeline = e.pipeline ORDER BY seq DESC LIMIT ?1)
                    OR e.status IN ('InProgress', 'Stopping')",
            )?;
            let rows = st.query_map([keep as i64], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    pub fn record_approval(
        &self,
        id: &str,
        stage: usize,
        action: &str,
        attempt: i64,
        approved: bool,
        comment: Option<&str>,
    ) -> Result<()> {
        self.write(|tx| {
            let status = Self::action_status(tx, id, stage, action)?;
            if status != ActionStatus::InProgress {
                return Err(JournalError::Corrupt(format!("action `{action}` is {status}, not waiting for approval")));
            }
            tx.execute(
                "INSERT OR REPLACE INTO approvals (execution_id, stage_idx, action, attempt, approved, comment, decided_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id, stage as i64, action, attempt, approved, comment, self.now()],
            )?;
            let detail = format!("{}{}", if approved { "approved" } else { "rejected" }, comment.map(|c| format!(": {c}")).unwrap_or_default());
            self.event(tx, id, "ApprovalRecorded", None, Some(action), Some(&detail))?;
            Ok(())
        })
    }

    pub fn approval(
        &self,
        id: &str,
        stage: usize,
        action: &str,
        attempt: i64,
    ) -> Result<Option<(bool, Option<String>)>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT approved, comment FROM approvals WHERE execution_id = ?1 AND stage_idx = ?2 AND action = ?3 AND attempt = ?4",
                params![id, stage as i64, action, attempt],
                |r| Ok((r.get::<_, bool>(0)?, r.get::<_, Option<String>>(1)?)),
            )
            .optional()?)
        })
    }

    /// SUPERSEDED mode: tries to move `id` into `stage` of its pipeline. Returns `Entered`, or
    /// `Wait(holder)` while another execution holds the stage, or `Superseded(by)` when a newer
    /// execution waits at the same boundary.
    pub fn try_enter_stage(&self, pipeline: &str, seq: i64, id: &str, stage: &str) -> Result<StageEntry> {
        self.write(|tx| {
            let holder: Option<(String, String, Option<i64>, Option<i64>)> = tx
                .query_row(
                    "SELECT l.execution_id, e.status, e.owner_pid, e.owner_start FROM stage_locks l JOIN executions e ON e.id = l.execution_id
                     WHERE l.pipeline = ?1 AND l.stage = ?2",
                    params![pipeline, stage],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let newer: Option<String> = tx
                .query_row(
                    "SELECT id FROM executions WHERE pipeline = ?1 AND seq > ?2 AND waiting = ?3 AND status = 'InProgress' ORDER BY seq DESC LIMIT 1",
                    params![pipeline, seq, format!("stage {stage}")],
                    |r| r.get(0),
                )
                .optional()?;
            let free = match &holder {
                None => true,
                Some((h, status, _, _)) => h == id || status != "InProgress" && status != "Stopping",
            };
            if free {
                tx.execute("DELETE FROM stage_locks WHERE execution_id = ?1", [id])?;
                tx.execute("INSERT OR REPLACE INTO stage_locks (pipeline, stage, execution_id) VALUES (?1, ?2, ?3)", params![pipeline, stage, id])?;
                tx.execute("UPDATE executions SET waiting = NULL WHERE id = ?1", [id])?;
                return Ok(StageEntry::Entered);
            }
            if let Some(newer) = newer {
                return Ok(StageEntry::Superseded(newer));
            }
            let (h, _, pid, start) = holder.unwrap_or_default();
            tx.execute("UPDATE executions SET waiting = ?2 WHERE id = ?1", params![id, format!("stage {stage}")])?;
            Ok(StageEntry::Wait { holder: h, holder_alive: owner_alive(pid, start) })
        })
    }

    /// Records an object an action stored besides its output artifacts (packaged code), so that
    /// artifact retention keeps it as long as the execution is retained.
    pub fn record_object(&self, id: &str, name: &str, digest: &str, size: i64, region: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO artifacts (execution_id, name, digest, size, region) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, name, digest, size, region],
            )?;
            Ok(())
        })
    }

    pub fn release_stage_locks(&self, id: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM stage_locks WHERE execution_id = ?1", [id])?;
            Ok(())
        })
    }

    /// QUEUED mode: the oldest unfinished execution of the pipeline that is older than `seq`.
    pub fn queued_ahead(&self, pipeline: &str, seq: i64) -> Result<Option<ExecutionRow>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT * FROM executions WHERE pipeline = ?1 AND seq < ?2 AND status IN ('InProgress', 'Stopping') ORDER BY seq LIMIT 1",
                params![pipeline, seq],
                exec_from_row,
            )
            .optional()?)
        })
    }

    /// Executions left in progress by processes that no longer exist.
    pub fn orphans(&self) -> Result<Vec<ExecutionRow>> {
        let rows = self.read(|c| {
            let mut st =
                c.prepare("SELECT * FROM executions WHERE status IN ('InProgress', 'Stopping') ORDER BY seq")?;
            let rows: Vec<ExecutionRow> = st.query_map([], exec_from_row)?.collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })?;
        Ok(rows
            .into_iter()
            .filter(|r| !owner_alive(r.owner_pid, r.owner_start))
            .collect())
    }

    /// Takes over an orphaned execution; false when another process took it first.
    pub fn claim(&self, id: &str, old_pid: Option<i64>, new_pid: u32, new_start: u64) -> Result<bool> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE executions SET owner_pid = ?3, owner_start = ?4 WHERE id = ?1 AND owner_pid IS ?2 AND status IN ('InProgress', 'Stopping')",
                params![id, old_pid, new_pid as i64, new_start as i64],
            )?;
            if n == 1 {
                self.event(tx, id, "Recovered", None, None, Some(&format!("taken over by pid {new_pid} from pid {}", old_pid.unwrap_or(0))))?;
            }
            Ok(n == 1)
        })
    }

    /// Makes this process the owner of an execution (before `meridian retry` drives it).
    pub fn own(&self, id: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE executions SET owner_pid = ?2, owner_start = ?3 WHERE id = ?1",
                params![id, self.pid, self.start as i64],
            )?;
            Ok(())
        })
    }

    pub fn self_start(&self) -> u64 {
        self.start
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageEntry {
    Entered,
    Wait { holder: String, holder_alive: bool },
    Superseded(String),
}

//! A damaged journal is kept and explained, never silently replaced; a read-only data directory
//! can still be read.

use meridian_engine::journal::{Journal, JournalError, NewAction};
use std::path::{Path, PathBuf};

fn one_execution(j: &Journal, id: &str) {
    j.create_execution(
        id,
        "pipe",
        "SUPERSEDED",
        "{}",
        "{}",
        "manual",
        &["Source".to_string()],
        &[NewAction {
            stage_idx: 0,
            name: "Src",
            region: "us-east-1",
            run_order: 1,
            provider: "LocalGit",
            namespace: None,
        }],
    )
    .unwrap();
}

/// A journal with one execution and enough rows to span many pages, closed cleanly (no `-wal`).
fn journal_with_history(dir: &Path) -> PathBuf {
    let j = Journal::open(dir).unwrap();
    one_execution(&j, "e-1");
    j.write(|tx| {
        tx.execute_batch(
            "CREATE TABLE filler (x BLOB); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) INSERT INTO filler SELECT randomblob(1000) FROM n;",
        )?;
        Ok(())
    })
    .unwrap();
    let path = j.path().to_path_buf();
    drop(j);
    assert!(!dir.join("journal.db-wal").exists(), "a clean close leaves no log");
    path
}

fn damaged(e: JournalError) -> (PathBuf, String, PathBuf, String) {
    let msg = e.to_string();
    match e {
        JournalError::Damaged { path, why, aside } => (path, why, aside, msg),
        other => panic!("expected a damaged journal, got: {other}"),
    }
}

#[test]
fn an_empty_journal_is_kept_and_explained_then_moved_aside() {
    let t = tempfile::tempdir().unwrap();
    let db = t.path().join("journal.db");
    std::fs::write(&db, b"").unwrap();
    let (path, why, aside, msg) = damaged(Journal::open(t.path()).err().unwrap());
    assert_eq!(path, db);
    assert!(
        why.starts_with("it is empty (0 bytes) and has no write-ahead log"),
        "{why}"
    );
    let name = aside.file_name().unwrap().to_str().unwrap().to_string();
    assert!(name.starts_with("journal.db.corrupt-"), "{name}");
    assert_eq!(
        msg,
        format!(
            "the journal `{}` is damaged: {why}. Meridian left it untouched; to start a fresh journal (this data directory's execution history and release ledger then start empty), move it aside, keeping the old file: `mv {} {}`",
            db.display(),
            db.display(),
            aside.display()
        )
    );
    // untouched: still there, still empty, and a second open says the same
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0);
    assert!(matches!(Journal::open(t.path()), Err(JournalError::Damaged { .. })));
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0);

    let moved = Journal::quarantine(t.path()).unwrap();
    assert!(moved
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("journal.db.corrupt-"));
    assert_eq!(std::fs::metadata(&moved).unwrap().len(), 0, "the old file is kept");
    assert!(!db.exists());
    let j = Journal::open(t.path()).unwrap();
    assert!(j.executions(None).unwrap().is_empty());
    one_execution(&j, "e-2");
    assert!(moved.exists());
}

#[test]
fn a_truncated_journal_is_kept_and_explained() {
    let t = tempfile::tempdir().unwrap();
    let db = journal_with_history(t.path());
    let len = std::fs::metadata(&db).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    let (path, why, _, msg) = damaged(Journal::open(t.path()).err().unwrap());
    assert_eq!(path, db);
    assert!(why.starts_with("it is truncated: its header says "), "{why}");
    assert!(why.ends_with(&format!("but the file has {} bytes", len / 2)), "{why}");
    assert!(msg.contains(&format!("`mv {} {}", db.display(), db.display())), "{msg}");
    assert_eq!(std::fs::metadata(&db).unwrap().len(), len / 2, "left as it was");

    // shorter than the header
    std::fs::write(&db, &b"SQLite format 3\0abc"[..]).unwrap();
    let (_, why, _, _) = damaged(Journal::open(t.path()).err().unwrap());
    assert_eq!(why, "it is truncated: 19 bytes, shorter than SQLite's 100-byte header");

    // not a database at all
    std::fs::write(&db, b"{\"executions\": []}").unwrap();
    let (_, why, _, _) = damaged(Journal::open(t.path()).err().unwrap());
    assert_eq!(
        why,
        "it is 18 bytes that do not start with SQLite's header (`SQLite format 3`): it is not a SQLite database"
    );
    assert_eq!(std::fs::read(&db).unwrap(), b"{\"executions\": []}");
}

#[test]
fn damage_found_by_a_query_names_the_file_and_the_way_forward() {
    let t = tempfile::tempdir().unwrap();
    let db = journal_with_history(t.path());
    // keep the size and the first page (the schema); overwrite every other page
    let mut bytes = std::fs::read(&db).unwrap();
    let page = u16::from_be_bytes([bytes[16], bytes[17]]) as usize;
    for b in &mut bytes[page..] {
        *b = 0xA5;
    }
    std::fs::write(&db, &bytes).unwrap();
    let j = Journal::open(t.path()).unwrap();
    let e = j.executions(None).unwrap_err();
    let (path, why, _, msg) = damaged(e);
    assert_eq!(path, db);
    assert!(why.starts_with("SQLite cannot read it ("), "{why}");
    assert!(msg.contains("move it aside, keeping the old file: `mv "), "{msg}");
}

/// Makes `dir` read-only for this process: by its mode for a normal user, by a read-only bind
/// mount for root (which ignores modes). `None` when neither is possible here.
struct ReadOnly {
    dir: PathBuf,
    mounted: bool,
}

impl ReadOnly {
    fn make(dir: &Path) -> Option<ReadOnly> {
        use std::os::unix::fs::PermissionsExt;
        let root = unsafe { libc::geteuid() } == 0;
        if !root {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).ok()?;
            return Some(ReadOnly {
                dir: dir.to_path_buf(),
                mounted: false,
            });
        }
        let run = |args: &[&str]| {
            std::process::Command::new("mount")
                .args(args)
                .stderr(std::process::Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        let d = dir.to_str()?;
        if !run(&["--bind", d, d]) {
            return None;
        }
        let guard = ReadOnly {
            dir: dir.to_path_buf(),
            mounted: true,
        };
        if !run(&["-o", "remount,ro,bind", d]) {
            return None;
        }
        Some(guard)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        if self.mounted {
            // lazy: the mount goes even if something still has a file open in it
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.dir).status();
        } else {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o755));
        }
    }
}

#[test]
fn a_read_only_data_directory_can_be_read_and_writes_name_it() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    journal_with_history(&data);
    let Some(_ro) = ReadOnly::make(&data) else {
        eprintln!("skipped: cannot make a read-only directory here");
        return;
    };
    if std::fs::write(data.join("probe"), b"x").is_ok() {
        eprintln!("skipped: the directory is still writable");
        return;
    }
    let j = Journal::open(&data).unwrap();
    assert!(j.is_read_only());
    let ids: Vec<String> = j.executions(None).unwrap().into_iter().map(|e| e.id).collect();
    assert_eq!(ids, ["e-1"]);
    assert_eq!(j.actions("e-1").unwrap().len(), 1);
    let e = j
        .request_stop("e-1", false, "test")
        .expect_err("a write to a read-only directory fails");
    let msg = e.to_string();
    assert!(matches!(e, JournalError::ReadOnly { .. }), "{msg}");
    assert!(
        msg.starts_with(&format!("the data directory `{}` is read-only (", data.display())),
        "{msg}"
    );
    assert!(
        msg.ends_with("): Meridian can read its journal but cannot record anything in it; make the directory writable, or use a writable data directory (`--data-dir`)"),
        "{msg}"
    );

    // a read-only data directory without a journal: the error names it, nothing is created
    drop(j);
    drop(_ro);
    let empty = t.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let Some(_ro) = ReadOnly::make(&empty) else { return };
    let e = Journal::open(&empty).err().unwrap();
    assert!(
        e.to_string().starts_with(&format!(
            "the data directory `{}` is read-only (it has no journal yet and one cannot be created: ",
            empty.display()
        )),
        "{e}"
    );
}

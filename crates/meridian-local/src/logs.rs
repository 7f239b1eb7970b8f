//! Function logs on disk: `<data-dir>/regions/<region>/lambda/logs/<function>.log`, the local
//! stand-in for a function's CloudWatch log group. Invocations only queue their log; one writer
//! thread writes the queue every 100 ms (or sooner when it grows, or on [`LogWriter::flush`]), with
//! files kept open, so that an invocation never waits for the disk nor wakes a thread.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

#[derive(Default)]
struct State {
    pending: Vec<(PathBuf, Vec<u8>)>,
    flush_requested: u64,
    flushed: u64,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    work: Condvar,
    done: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) struct LogWriter {
    shared: Arc<Shared>,
}

/// Files kept open at once; beyond it they are closed and reopened on demand.
const OPEN_FILES: usize = 64;
/// Queued logs that make the writer start at once instead of at its next tick.
const BATCH: usize = 512;
const TICK: Duration = Duration::from_millis(100);

impl LogWriter {
    pub(crate) fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let worker = shared.clone();
        std::thread::Builder::new()
            .name("meridian-lambda-logs".into())
            .spawn(move || write_loop(&worker))
            .expect("failed to start the log writer thread");
        LogWriter { shared }
    }

    pub(crate) fn append(&self, path: PathBuf, bytes: Vec<u8>) {
        let mut st = self.shared.lock();
        st.pending.push((path, bytes));
        if st.pending.len() >= BATCH {
            self.shared.work.notify_one();
        }
    }

    /// Returns once everything appended before the call is written.
    pub(crate) fn flush(&self) {
        let mut st = self.shared.lock();
        st.flush_requested += 1;
        let want = st.flush_requested;
        self.shared.work.notify_one();
        while st.flushed < want && !st.closed {
            st = self.shared.done.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        // The thread writes what is queued, then ends.
        self.shared.lock().closed = true;
        self.shared.work.notify_one();
    }
}

fn write_loop(shared: &Shared) {
    let mut files: HashMap<PathBuf, File> = HashMap::new();
    loop {
        let (batch, target, closed) = {
            let mut st = shared.lock();
            if st.pending.len() < BATCH && st.flush_requested == st.flushed && !st.closed {
                st = shared.work.wait_timeout(st, TICK).unwrap_or_else(|e| e.into_inner()).0;
            }
            (std::mem::take(&mut st.pending), st.flush_requested, st.closed)
        };
        for (path, bytes) in batch {
            write_one(&mut files, path, &bytes);
        }
        let mut st = shared.lock();
        st.flushed = target;
        shared.done.notify_all();
        if closed && st.pending.is_empty() {
            return;
        }
    }
}

fn write_one(files: &mut HashMap<PathBuf, File>, path: PathBuf, bytes: &[u8]) {
    if !files.contains_key(&path) {
        if files.len() >= OPEN_FILES {
            files.clear();
        }
        let opened = path
            .parent()
            .map(std::fs::create_dir_all)
            .unwrap_or(Ok(()))
            .and_then(|_| std::fs::OpenOptions::new().create(true).append(true).open(&path));
        match opened {
            Ok(f) => {
                files.insert(path.clone(), f);
            }
            Err(e) => {
                eprintln!("warning: failed to open the function log {}: {e}", path.display());
                return;
            }
        }
    }
    if let Some(f) = files.get_mut(&path) {
        if let Err(e) = f.write_all(bytes) {
            eprintln!("warning: failed to append to the function log {}: {e}", path.display());
            files.remove(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_writes_everything_queued_before_it() {
        let dir = std::env::temp_dir().join(format!("meridian-logs-test-{}", std::process::id()));
        let w = LogWriter::start();
        for i in 0..1000 {
            w.append(dir.join("f.log"), format!("line {i}\n").into_bytes());
        }
        w.flush();
        let text = std::fs::read_to_string(dir.join("f.log")).unwrap();
        assert_eq!(text.lines().count(), 1000);
        assert_eq!(text.lines().last(), Some("line 999"));
        drop(w);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! Function logs on disk: `<data-dir>/regions/<region>/lambda/logs/<function>.log`, the local
//! stand-in for a function's CloudWatch log group. Appends go through one writer thread that
//! keeps files open, so that an invocation never waits for the disk.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Mutex;

enum Msg {
    Append(PathBuf, Vec<u8>),
    Flush(mpsc::SyncSender<()>),
}

pub(crate) struct LogWriter {
    tx: Mutex<mpsc::Sender<Msg>>,
}

/// Files kept open at once; beyond it they are closed and reopened on demand.
const OPEN_FILES: usize = 64;

impl LogWriter {
    pub(crate) fn start() -> Self {
        let (tx, rx) = mpsc::channel::<Msg>();
        std::thread::Builder::new()
            .name("meridian-lambda-logs".into())
            .spawn(move || {
                let mut files: HashMap<PathBuf, File> = HashMap::new();
                // Ends when the host, and so the sender, is dropped.
                for msg in rx {
                    match msg {
                        Msg::Append(path, bytes) => {
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
                                        continue;
                                    }
                                }
                            }
                            if let Some(f) = files.get_mut(&path) {
                                if let Err(e) = f.write_all(&bytes) {
                                    eprintln!("warning: failed to append to the function log {}: {e}", path.display());
                                    files.remove(&path);
                                }
                            }
                        }
                        Msg::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })
            .expect("failed to start the log writer thread");
        LogWriter { tx: Mutex::new(tx) }
    }

    pub(crate) fn append(&self, path: PathBuf, bytes: Vec<u8>) {
        let _ = self
            .tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(Msg::Append(path, bytes));
    }

    /// Returns once everything appended before the call is written.
    pub(crate) fn flush(&self) {
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        let sent = self
            .tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(Msg::Flush(done_tx));
        if sent.is_ok() {
            let _ = done_rx.recv();
        }
    }
}

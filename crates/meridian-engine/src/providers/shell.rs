//! Running a shell script as a process group whose output goes to the action's log, and which is
//! killed whole (every child too) on cancel.

use super::Log;
use std::path::Path;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};

pub enum ShellEnd {
    Exited(i32),
    Killed,
}

/// Runs `script` with `bash` in `cwd`; returns how it ended.
pub async fn run(
    script: &str,
    cwd: &Path,
    env: &[(String, String)],
    log: &Log,
    cancel: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<ShellEnd, String> {
    let mut cmd = tokio::process::Command::new("bash");
    cmd.arg("-c")
        .arg(script)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.process_group(0).kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("failed to start bash in `{}`: {e}", cwd.display()))?;
    let pgid = child.id().map(|p| p as i32);
    let out = child.stdout.take().map(|s| pump(BufReader::new(s), log.clone()));
    let err = child.stderr.take().map(|s| pump(BufReader::new(s), log.clone()));
    let status = tokio::select! {
        s = child.wait() => Some(s.map_err(|e| format!("failed to wait for bash: {e}"))?),
        _ = cancel.wait_for(|c| *c) => None,
    };
    if status.is_none() {
        if let Some(pgid) = pgid {
            // SAFETY: killpg(2) has no memory-safety preconditions.
            unsafe {
                libc::killpg(pgid, libc::SIGKILL);
            }
        }
        let _ = child.wait().await;
    }
    for t in [out, err].into_iter().flatten() {
        let _ = t.await;
    }
    Ok(match status {
        None => ShellEnd::Killed,
        Some(s) => ShellEnd::Exited(s.code().unwrap_or(-1)),
    })
}

/// Copies a process's output to the log line by line; a line longer than
/// [`meridian_buildspec::MAX_LINE_BYTES`] reaches it in pieces, never held whole.
fn pump<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    mut r: BufReader<R>,
    log: Log,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let cap = meridian_buildspec::MAX_LINE_BYTES;
        let mut buf: Vec<u8> = Vec::new();
        while let Ok(avail) = r.fill_buf().await {
            if avail.is_empty() {
                break;
            }
            let take = avail.len().min(cap - buf.len());
            let newline = avail[..take].iter().position(|b| *b == b'\n');
            let used = newline.map_or(take, |i| i + 1);
            buf.extend_from_slice(&avail[..used]);
            r.consume(used);
            if newline.is_some() {
                let line = String::from_utf8_lossy(&buf);
                log.line(line.trim_end_matches(['\n', '\r']));
                buf.clear();
            } else if buf.len() >= cap {
                // the end is passed on with the next piece, so a secret across the cut is masked
                let carry = meridian_buildspec::cut_piece(&mut buf);
                log.line(&String::from_utf8_lossy(&buf));
                buf = carry;
            }
        }
        if !buf.is_empty() {
            log.line(&String::from_utf8_lossy(&buf));
        }
    })
}

/// Quotes a value for bash.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

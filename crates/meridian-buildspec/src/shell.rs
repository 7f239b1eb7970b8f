//! One long-lived shell that runs a build's commands one at a time, so that `cd` and `export`
//! carry over from one command to the next (buildspec 0.2).
//!
//! Each command is sent on the shell's standard input as an `eval` of a single-quoted string,
//! with its own standard input from /dev/null (so a command can never read the commands that
//! follow it), followed by a `printf` of a marker line holding a random nonce and `$?`. The shell's
//! stdout and stderr share one pipe, read by a thread that turns it into lines and exit statuses.
//! The shell leads a new process group, so a timeout or a stop kills everything it started.
//!
//! The build dies with the process running it, even a SIGKILLed one (which runs no cleanup):
//! on Linux the shell gets `PR_SET_PDEATHSIG(SIGKILL)`, and since that reaches only the shell
//! itself, a small guard (`sh`, in its own process group) holds a pipe from this process and
//! kills the shell's whole group when the pipe closes, that is when this process has died.
//! `PR_SET_PDEATHSIG` fires when the *thread* that started the shell ends: a [`Shell`] must be
//! used and dropped on the thread that started it (the build runner does; from async code it
//! runs in one `spawn_blocking` call).

use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

enum Event {
    Line(String),
    Status(i32),
    Eof,
}

/// How one command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ran {
    Exit(i32),
    /// The shell itself exited (an `exit` in the command, or a kill): its status.
    ShellExited(i32),
    TimedOut,
    Stopped,
}

impl Ran {
    pub fn ok(self) -> bool {
        self == Ran::Exit(0)
    }
}

pub struct Shell {
    child: Child,
    /// Kills the shell's process group if this process dies (see the module documentation).
    guard: Option<Child>,
    stdin: Option<ChildStdin>,
    rx: Receiver<Event>,
    reader: Option<std::thread::JoinHandle<()>>,
    nonce: String,
    alive: bool,
}

/// Starts the guard of the process group `pgid`: an `sh` that waits for end of file on a pipe
/// whose other end only this process holds, then kills the group. It ends at once when this
/// process dies however it dies; [`Shell::kill`] ends it first when the build ends normally.
/// `None` (the build then runs unguarded) when no `sh` can be started.
fn spawn_guard(pgid: u32) -> Option<Child> {
    let mut cmd = Command::new("/bin/sh");
    cmd.args([
        "-c",
        "read _ignored; kill -s KILL -- -\"$1\" 2>/dev/null",
        "meridian-build-guard",
    ])
    .arg(pgid.to_string())
    .stdin(Stdio::piped())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    // Its own group: a Ctrl-C to the terminal's group must not end the guard before the build.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.spawn().ok()
}

/// Quotes a string for the shell in single quotes (which keep every byte as written).
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Shell {
    /// Starts `program` (bash or sh) reading commands from a pipe, in `cwd`, with `env` added to
    /// the inherited environment.
    pub fn start(program: &str, cwd: &Path, env: &[(String, String)]) -> io::Result<Shell> {
        let mut cmd = Command::new(program);
        if program.ends_with("bash") {
            cmd.args(["--noprofile", "--norc"]);
        }
        cmd.arg("-s")
            .current_dir(cwd)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        #[cfg(target_os = "linux")]
        {
            let parent = std::process::id() as libc::pid_t;
            // SAFETY: between fork and exec only async-signal-safe calls are made (prctl,
            // getppid, kill), and no memory is allocated.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    // The parent died before the prctl: nothing will send the signal.
                    if libc::getppid() != parent {
                        libc::kill(libc::getpid(), libc::SIGKILL);
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn()?;
        let guard = spawn_guard(child.id());
        let stdout = child.stdout.take().ok_or_else(|| io::Error::other("no stdout pipe"))?;
        let mut nonce_bytes = [0u8; 8];
        getrandom::fill(&mut nonce_bytes).map_err(|e| io::Error::other(e.to_string()))?;
        let nonce = format!("MERIDIAN-{}", hex::encode(nonce_bytes));
        let marker = format!("\u{1e}{nonce} ");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut buf = Vec::new();
            // The end of a cut line, kept so that a status marker across the cut is still seen.
            let mut carry: Vec<u8> = Vec::new();
            loop {
                buf.clear();
                buf.append(&mut carry);
                match read_line_capped(&mut r, &mut buf, MAX_LINE_BYTES) {
                    Err(_) => {
                        let _ = tx.send(Event::Eof);
                        return;
                    }
                    Ok(_) if buf.is_empty() => {
                        let _ = tx.send(Event::Eof);
                        return;
                    }
                    Ok(false) => {
                        // A line longer than the cap is passed on in pieces, never held whole.
                        carry = cut_piece(&mut buf);
                        if !buf.is_empty() {
                            let _ = tx.send(Event::Line(String::from_utf8_lossy(&buf).into_owned()));
                        }
                    }
                    Ok(true) => {
                        let line = String::from_utf8_lossy(&buf);
                        let line = line.trim_end_matches(['\n', '\r']);
                        match line.find(&marker) {
                            Some(at) => {
                                if at > 0 {
                                    let _ = tx.send(Event::Line(line[..at].to_string()));
                                }
                                let code = line[at + marker.len()..].trim().parse().unwrap_or(1);
                                let _ = tx.send(Event::Status(code));
                            }
                            None => {
                                let _ = tx.send(Event::Line(line.to_string()));
                            }
                        }
                    }
                }
            }
        });
        let mut shell = Shell {
            stdin: child.stdin.take(),
            child,
            guard,
            rx,
            reader: Some(reader),
            nonce,
            alive: true,
        };
        shell.send("exec 2>&1\n")?;
        Ok(shell)
    }

    pub fn alive(&self) -> bool {
        self.alive
    }

    fn send(&mut self, text: &str) -> io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("the shell's input is closed"))?;
        stdin.write_all(text.as_bytes())?;
        stdin.flush()
    }

    /// Runs one command; every output line goes to `on_line` as it comes.
    pub fn run(
        &mut self,
        command: &str,
        deadline: Instant,
        stop: Option<&AtomicBool>,
        on_line: &mut dyn FnMut(&str),
    ) -> Ran {
        let script = format!(
            "__meridian_cmd={}\neval \"$__meridian_cmd\" </dev/null\nprintf '\\036%s %d\\n' {} \"$?\"\n",
            quote(command),
            self.nonce
        );
        if self.send(&script).is_err() {
            // The shell is gone; drain what it said and report its status.
            return self.wait_exit(deadline, stop, on_line);
        }
        loop {
            if stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
                self.kill();
                return Ran::Stopped;
            }
            let now = Instant::now();
            if now >= deadline {
                self.kill();
                return Ran::TimedOut;
            }
            let wait = (deadline - now).min(Duration::from_millis(50));
            match self.rx.recv_timeout(wait) {
                Ok(Event::Line(l)) => on_line(&l),
                Ok(Event::Status(code)) => return Ran::Exit(code),
                Ok(Event::Eof) | Err(RecvTimeoutError::Disconnected) => {
                    self.alive = false;
                    return Ran::ShellExited(self.reap(deadline));
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    fn wait_exit(&mut self, deadline: Instant, stop: Option<&AtomicBool>, on_line: &mut dyn FnMut(&str)) -> Ran {
        loop {
            if stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
                self.kill();
                return Ran::Stopped;
            }
            match self.rx.recv_timeout(Duration::from_millis(50)) {
                Ok(Event::Line(l)) => on_line(&l),
                Ok(Event::Status(_)) => {}
                Ok(Event::Eof) | Err(RecvTimeoutError::Disconnected) => {
                    self.alive = false;
                    return Ran::ShellExited(self.reap(deadline));
                }
                Err(RecvTimeoutError::Timeout) if Instant::now() >= deadline => {
                    self.kill();
                    return Ran::TimedOut;
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    fn reap(&mut self, deadline: Instant) -> i32 {
        loop {
            match self.child.try_wait() {
                Ok(Some(st)) => {
                    #[cfg(unix)]
                    if let Some(sig) = std::os::unix::process::ExitStatusExt::signal(&st) {
                        return 128 + sig;
                    }
                    return st.code().unwrap_or(1);
                }
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                _ => {
                    self.kill();
                    return 137;
                }
            }
        }
    }

    /// Kills the shell's whole process group (everything the build started that did not leave
    /// it), then reaps the shell.
    pub fn kill(&mut self) {
        #[cfg(unix)]
        {
            let pgid = self.child.id() as libc::pid_t;
            // SAFETY: killpg only sends a signal; the group is the one the shell leads.
            unsafe {
                libc::killpg(pgid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(mut g) = self.guard.take() {
            // The group is dead and its id may be reused: the guard must not kill it again.
            let _ = g.kill();
            let _ = g.wait();
        }
        self.stdin = None;
        self.alive = false;
        // Not joined: a process that left the group may still hold the pipe open; the reader ends
        // on its own when the pipe closes.
        self.reader.take();
    }

    /// Ends the shell: closes its input, lets it exit, then kills whatever it left running.
    pub fn finish(mut self) {
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        self.kill();
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        if self.reader.is_some() {
            self.kill();
        }
    }
}

/// Output lines longer than this reach the log in pieces: a build that prints 200 MB without a
/// newline is never held in memory whole.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// How much of a cut line's end is held back and passed on with its next piece: more than the
/// longest secret (Secrets Manager's limit is 65,536 bytes), so that a secret printed across the
/// cut lies whole in the next piece and is masked there, and a status marker is still seen.
pub const CUT_CARRY_BYTES: usize = 65_536 + 256;

/// Splits a piece of a long line cut at [`MAX_LINE_BYTES`]: `buf` keeps what is passed on now,
/// and the returned tail (at most [`CUT_CARRY_BYTES`], starting on a UTF-8 character boundary so
/// that no character is broken in two) goes in front of the next piece. Every byte reaches the
/// log exactly once.
pub fn cut_piece(buf: &mut Vec<u8>) -> Vec<u8> {
    let mut at = buf.len().saturating_sub(CUT_CARRY_BYTES);
    // back up over UTF-8 continuation bytes (10xxxxxx), at most 3
    let mut steps = 0;
    while at > 0 && steps < 3 && (buf[at] & 0b1100_0000) == 0b1000_0000 {
        at -= 1;
        steps += 1;
    }
    buf.split_off(at)
}

/// Reads into `buf` up to and including the next newline, or until `buf` holds `cap` bytes.
/// `Ok(true)`: a whole line (or the end of the stream); `Ok(false)`: cut at the cap.
pub fn read_line_capped(r: &mut impl BufRead, buf: &mut Vec<u8>, cap: usize) -> io::Result<bool> {
    loop {
        let avail = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(true);
        }
        let take = avail.len().min(cap.saturating_sub(buf.len()));
        if let Some(i) = avail[..take].iter().position(|b| *b == b'\n') {
            buf.extend_from_slice(&avail[..=i]);
            r.consume(i + 1);
            return Ok(true);
        }
        buf.extend_from_slice(&avail[..take]);
        r.consume(take);
        if buf.len() >= cap {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod capped_tests {
    use super::*;

    #[test]
    fn long_lines_come_in_pieces_and_short_ones_whole() {
        let text = format!("short\n{}\nend", "x".repeat(25));
        let mut r = io::BufReader::with_capacity(4, text.as_bytes());
        let mut pieces = Vec::new();
        loop {
            let mut buf = Vec::new();
            let whole = read_line_capped(&mut r, &mut buf, 10).unwrap();
            if buf.is_empty() {
                break;
            }
            pieces.push((String::from_utf8(buf).unwrap(), whole));
        }
        let expect = [
            ("short\n", true),
            ("xxxxxxxxxx", false),
            ("xxxxxxxxxx", false),
            ("xxxxx\n", true),
            ("end", true),
        ];
        let got: Vec<(&str, bool)> = pieces.iter().map(|(s, w)| (s.as_str(), *w)).collect();
        assert_eq!(got, expect);
    }
}

//! Hostile input through the real `meridian` binary (issue 13): pipeline definitions, buildspecs,
//! templates, code zips, the HTTP APIs and the data directory.
//!
//! Every case is a row of a table: the command, its input, the exit code and fragments of what it
//! must print. All rows run (a few at a time) and every broken row is reported at once, so one run
//! shows every defect. Besides its own expectations, every run is checked for what no hostile
//! input may cause:
//!
//! - an abort (a panic, a stack overflow) or a hang (killed after 20 s), or more than 10 s for an
//!   answer;
//! - peak resident memory over 256 MiB: the child's own `ru_maxrss`, from `wait4` (a run passing
//!   768 MiB is killed on the spot to protect the machine);
//! - raw NUL, ESC, U+202E (right-to-left override) or U+FEFF on stderr: they must be escaped;
//! - an unbounded stderr (64 KiB unless a case says otherwise).
//!
//! The HTTP cases talk to one `meridian serve` over raw TCP (status, `x-amzn-ErrorType`, body);
//! three connections that stall (nothing sent, half a head, half a body) run beside everything
//! else, and the server's 30 s header timeout sets the test's length (about 40 s).
//!
//! Fragments are compared with all white space removed (and miette's `│` continuation gutters), so
//! that the wrapping of long messages does not matter.
//!
//! `ru_maxrss` is the larger of the child's own peak and the test process's size when it spawned
//! the child (Linux keeps the high-water mark across `exec`), so a reading at or below the test
//! process's size (about 70 MiB) says "at most"; above it, it is the child's own peak.
#![cfg(target_os = "linux")]

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_meridian");
/// A run still going after this is killed and reported as a hang.
const DEADLINE: Duration = Duration::from_secs(20);
/// A hostile input must be answered within this: a clear error is cheap.
const SLOW: Duration = Duration::from_secs(10);
/// Peak resident memory allowed to one run (issue 13: inputs under 1 MB stay under 256 MB).
const MAX_RSS_KIB: u64 = 256 * 1024;
/// A run whose memory passes this is killed at once.
const KILL_RSS_KIB: u64 = 768 * 1024;
const MIB: usize = 1024 * 1024;
/// Runs at once (the machine may have two cores and another build going).
const WORKERS: usize = 3;

/// Cases that still fail, each a defect on record (docs/limits.md, issue 13's closing note). The
/// test fails when any other case fails, and also when one of these passes: then it is fixed,
/// and its name must leave this list.
const KNOWN_DEFECTS: &[&str] = &[];

/// The case a failure report is about (`✗ NAME` on its first line; `✗ HTTP NAME` for requests).
fn failed_case(report: &str) -> &str {
    report.lines().next().unwrap_or_default().trim_start_matches("✗ ")
}
/// The server closes a connection that sends no complete request head after 30 s.
const IDLE_LIMIT: Duration = Duration::from_secs(35);

// ---------------------------------------------------------------------------------------------
// Cases and their runner

type Check = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

struct Case {
    name: String,
    args: Vec<OsString>,
    cwd: PathBuf,
    stdin: Option<Vec<u8>>,
    codes: Vec<i32>,
    stderr_has: Vec<String>,
    stdout_has: Vec<String>,
    stderr_lacks: Vec<String>,
    max_stderr: usize,
    check: Option<Check>,
}

impl Case {
    fn new(name: impl Into<String>, cwd: &Path, args: &[&str]) -> Case {
        Case {
            name: name.into(),
            args: args.iter().map(OsString::from).collect(),
            cwd: cwd.to_path_buf(),
            stdin: None,
            codes: Vec::new(),
            stderr_has: Vec::new(),
            stdout_has: Vec::new(),
            stderr_lacks: Vec::new(),
            max_stderr: 64 * 1024,
            check: None,
        }
    }

    fn code(mut self, code: i32) -> Case {
        self.codes = vec![code];
        self
    }

    /// Any of these exit codes.
    fn codes(mut self, codes: &[i32]) -> Case {
        self.codes = codes.to_vec();
        self
    }

    /// Any exit code but 0.
    fn codes_any(mut self) -> Case {
        self.codes = (1..=255).collect();
        self
    }

    fn err(mut self, fragment: impl Into<String>) -> Case {
        self.stderr_has.push(fragment.into());
        self
    }

    fn out(mut self, fragment: impl Into<String>) -> Case {
        self.stdout_has.push(fragment.into());
        self
    }

    fn lacks(mut self, fragment: impl Into<String>) -> Case {
        self.stderr_lacks.push(fragment.into());
        self
    }

    fn max_stderr(mut self, bytes: usize) -> Case {
        self.max_stderr = bytes;
        self
    }

    fn stdin(mut self, bytes: &[u8]) -> Case {
        self.stdin = Some(bytes.to_vec());
        self
    }

    fn check(mut self, f: impl Fn() -> Result<(), String> + Send + Sync + 'static) -> Case {
        self.check = Some(Box::new(f));
        self
    }
}

struct Ran {
    code: Option<i32>,
    signal: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    stderr_len: usize,
    elapsed: Duration,
    rss_kib: u64,
    /// The test process's own peak when it spawned the child: `rss_kib` is at least this.
    floor_kib: u64,
    killed: Option<String>,
}

/// Reads a pipe to its end, keeping the first 16 MiB and counting the rest.
fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<(Vec<u8>, usize)> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut total = 0;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    total += n;
                    if kept.len() < 16 * MIB {
                        kept.extend_from_slice(&buf[..n]);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        (kept, total)
    })
}

/// A field of `/proc/<pid>/status` in KiB, such as `VmRSS:`.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn run(case: &Case) -> Result<Ran, String> {
    let mut cmd = Command::new(BIN);
    cmd.args(&case.args)
        .current_dir(&case.cwd)
        .env("NO_COLOR", "1")
        .env_remove("MERIDIAN_DATA_DIR")
        .env_remove("AWS_REGION")
        .stdin(if case.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let floor_kib = status_kib(std::process::id(), "VmHWM:").unwrap_or(0);
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("cannot start meridian: {e}"))?;
    let pid = child.id();
    if let (Some(input), Some(mut w)) = (case.stdin.clone(), child.stdin.take()) {
        std::thread::spawn(move || {
            let _ = w.write_all(&input);
        });
    }
    let out = drain(child.stdout.take().expect("stdout is piped"));
    let err = drain(child.stderr.take().expect("stderr is piped"));
    let mut killed = None;
    // Reaped here with wait4 (never by `child`), for the child's own peak memory.
    let (status, usage) = loop {
        let mut status = 0;
        // SAFETY: rusage is plain data; wait4 fills it in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid as libc::pid_t {
            break (status, usage);
        }
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("wait4: {e}"));
        }
        if killed.is_none() {
            if started.elapsed() > DEADLINE {
                killed = Some(format!("still running after {} s: killed", DEADLINE.as_secs()));
            } else if let Some(rss) = status_kib(pid, "VmRSS:").filter(|kib| *kib > KILL_RSS_KIB) {
                killed = Some(format!(
                    "resident memory reached {} MiB after {:.1} s: killed",
                    rss / 1024,
                    started.elapsed().as_secs_f64()
                ));
            }
            if killed.is_some() {
                // SAFETY: the child is not reaped yet, so the pid is still ours.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGKILL);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    drop(child);
    let (stdout, _) = out.join().map_err(|_| "stdout reader failed".to_string())?;
    let (stderr, stderr_len) = err.join().map_err(|_| "stderr reader failed".to_string())?;
    let (code, signal) = if libc::WIFEXITED(status) {
        (Some(libc::WEXITSTATUS(status)), None)
    } else if libc::WIFSIGNALED(status) {
        (None, Some(libc::WTERMSIG(status)))
    } else {
        (None, None)
    };
    Ok(Ran {
        code,
        signal,
        stdout,
        stderr,
        stderr_len,
        elapsed,
        rss_kib: usage.ru_maxrss.max(0) as u64,
        floor_kib,
        killed,
    })
}

/// Text without its white space and without miette's `│` continuation gutters.
fn squash(s: &str) -> String {
    s.lines()
        .map(|l| {
            let t = l.trim_start();
            t.strip_prefix('│').unwrap_or(t)
        })
        .flat_map(str::chars)
        .filter(|c| !c.is_whitespace())
        .collect()
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Characters no diagnostic may print raw.
const RAW: [(&str, &str); 4] = [
    ("NUL", "\u{0}"),
    ("ESC", "\u{1b}"),
    ("U+202E (right-to-left override)", "\u{202e}"),
    ("U+FEFF (byte order mark)", "\u{feff}"),
];

fn judge(c: &Case, r: &Ran) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(k) = &r.killed {
        problems.push(k.clone());
    } else if let Some(sig) = r.signal {
        let why = if sig == libc::SIGABRT {
            " (SIGABRT: a panic or a stack overflow)"
        } else {
            ""
        };
        problems.push(format!("ended by signal {sig}{why}"));
    } else if !c.codes.is_empty() && !r.code.is_some_and(|code| c.codes.contains(&code)) {
        problems.push(format!("exit code {:?}, expected {:?}", r.code, c.codes));
    }
    let err = String::from_utf8_lossy(&r.stderr);
    let flat = squash(&err);
    for f in &c.stderr_has {
        if !flat.contains(&squash(f)) {
            problems.push(format!("stderr lacks {f:?}"));
        }
    }
    let out = squash(&String::from_utf8_lossy(&r.stdout));
    for f in &c.stdout_has {
        if !out.contains(&squash(f)) {
            problems.push(format!("stdout lacks {f:?}"));
        }
    }
    for f in &c.stderr_lacks {
        if flat.contains(&squash(f)) {
            problems.push(format!("stderr holds {f:?}"));
        }
    }
    for (what, raw) in RAW {
        if find(&r.stderr, raw.as_bytes()) {
            problems.push(format!("stderr holds a raw {what}"));
        }
    }
    for w in ["panicked at", "stack overflow", "RUST_BACKTRACE"] {
        if err.contains(w) {
            problems.push(format!("stderr holds `{w}`"));
        }
    }
    if r.stderr_len > c.max_stderr {
        problems.push(format!(
            "stderr is {} bytes, over the {} expected",
            r.stderr_len, c.max_stderr
        ));
    }
    if r.killed.is_none() && r.elapsed > SLOW {
        problems.push(format!("took {:.1} s", r.elapsed.as_secs_f64()));
    }
    if r.rss_kib > MAX_RSS_KIB {
        problems.push(format!("peak memory {} MiB, over 256 MiB", r.rss_kib / 1024));
    }
    if let Some(check) = &c.check {
        if let Err(e) = check() {
            problems.push(e);
        }
    }
    problems
}

/// Text for a report: control and invisible characters shown as `⟦U+XXXX⟧`, long text cut.
fn excerpt(bytes: &[u8], total: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    for c in text.chars().take(1500) {
        match c {
            '\n' => out.push_str("\n      "),
            // raw characters are marked apart from the tool's own `\u{...}` escapes
            c if c.is_control() || RAW.iter().any(|(_, r)| r.starts_with(c)) => {
                out.push_str(&format!("⟦U+{:04X}⟧", c as u32))
            }
            c => out.push(c),
        }
    }
    if total > 1500 {
        out.push_str(&format!("\n      … ({total} bytes in all)"));
    }
    out
}

fn report(c: &Case, r: &Ran, problems: &[String]) -> String {
    let args: Vec<String> = c.args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let args = args.join(" ");
    let args: String = if args.chars().count() > 300 {
        args.chars().take(300).collect::<String>() + "…"
    } else {
        args
    };
    format!(
        "✗ {}\n    problems: {}\n    command: meridian {}\n    exit: {}, {:.2} s, peak memory {}{} MiB\n    stderr: {}\n    stdout: {}",
        c.name,
        problems.join("; "),
        args,
        match (r.code, r.signal) {
            (Some(code), _) => format!("code {code}"),
            (None, Some(sig)) => format!("signal {sig}"),
            _ => "unknown".to_string(),
        },
        r.elapsed.as_secs_f64(),
        if r.rss_kib <= r.floor_kib { "at most " } else { "" },
        r.rss_kib / 1024,
        excerpt(&r.stderr, r.stderr_len),
        excerpt(&r.stdout[..r.stdout.len().min(600)], r.stdout.len()),
    )
}

fn run_all(cases: &[Case], failures: &Mutex<Vec<String>>) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| {
                while let Some(case) = cases.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let failure = match run(case) {
                        Ok(ran) => {
                            let problems = judge(case, &ran);
                            (!problems.is_empty()).then(|| report(case, &ran, &problems))
                        }
                        Err(e) => Some(format!("✗ {}\n    {e}", case.name)),
                    };
                    if let Some(f) = failure {
                        failures.lock().unwrap().push(f);
                    }
                }
            });
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Inputs

/// Writes `bytes` to `dir/name` (making `dir`) and returns `name`.
fn put(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> String {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    name.to_string()
}

/// A sparse file of `len` bytes (zeros).
fn sparse(dir: &Path, name: &str, len: u64) -> String {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::File::create(dir.join(name)).unwrap().set_len(len).unwrap();
    name.to_string()
}

/// `base` with the first `from` replaced by `to`; `from` must be there.
fn edit(base: &str, from: &str, to: &str) -> String {
    assert!(base.contains(from), "`{from}` is not in the base text");
    base.replacen(from, to, 1)
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// The "billion laughs": nine levels of nine aliases each, `indent` spaces deep.
fn laughs(indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut s = format!("{pad}a: &a [x,x,x,x,x,x,x,x,x]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        let refs = vec![format!("*{}", w[0]); 9].join(",");
        s.push_str(&format!("{pad}{}: &{} [{refs}]\n", w[1], w[1]));
    }
    s
}

/// Ten levels of ten aliases (10^10 values) after ~900 KB of comments: under 1 MB, so the alias
/// budget is the document's 1,000,000-value limit.
fn big_laughs() -> String {
    let mut s = String::from("pipeline: app\n");
    let pad = format!("# {}\n", "p".repeat(98));
    s.push_str(&pad.repeat(9000));
    s.push_str(&format!("a0: &a0 [{}]\n", ["x"; 10].join(",")));
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(",");
        s.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    assert!(s.len() < 1_000_000);
    s
}

fn deep_flow(n: usize) -> String {
    "[".repeat(n) + &"]".repeat(n)
}

fn deep_map(n: usize) -> String {
    "{a: ".repeat(n) + "x" + &"}".repeat(n)
}

fn deep_block(n: usize) -> String {
    (0..n).map(|i| format!("{}a:\n", " ".repeat(i))).collect()
}

fn deep_json(n: usize) -> String {
    "{\"a\": ".repeat(n) + "1" + &"}".repeat(n)
}

/// An ELF header and zeros.
fn elf() -> Vec<u8> {
    let mut b = b"\x7fELF\x02\x01\x01\x00".to_vec();
    b.extend_from_slice(&[0; 64]);
    b
}

fn png() -> Vec<u8> {
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10".to_vec()
}

fn utf16(text: &str) -> Vec<u8> {
    let mut b = vec![0xff, 0xfe];
    for u in text.encode_utf16() {
        b.extend_from_slice(&u.to_le_bytes());
    }
    b
}

/// Deterministic bytes that are not a SQLite header.
fn garbage(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x2545_f491;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path_str(path)).unwrap();
    // SAFETY: a valid NUL-terminated path.
    let r = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
    assert_eq!(r, 0, "mkfifo {}", path.display());
}

// ---------------------------------------------------------------------------------------------
// Zip archives, written by hand (no compression crate among this crate's dependencies)

fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
            *e = c;
        }
        t
    });
    let mut crc = !0u32;
    for &b in data {
        crc = table[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

struct ZipEntry {
    name: String,
    method: u16,
    crc: u32,
    data: Vec<u8>,
    /// The uncompressed size the headers claim.
    size: u32,
}

fn stored(name: &str, data: &[u8]) -> ZipEntry {
    ZipEntry {
        name: name.to_string(),
        method: 0,
        crc: crc32(data),
        data: data.to_vec(),
        size: data.len() as u32,
    }
}

fn zip(entries: &[ZipEntry]) -> Vec<u8> {
    fn u16le(v: &mut Vec<u8>, x: u16) {
        v.extend_from_slice(&x.to_le_bytes());
    }
    fn u32le(v: &mut Vec<u8>, x: u32) {
        v.extend_from_slice(&x.to_le_bytes());
    }
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = out.len() as u32;
        u32le(&mut out, 0x0403_4b50);
        for x in [20, 0, e.method, 0, 0x21] {
            u16le(&mut out, x);
        }
        u32le(&mut out, e.crc);
        u32le(&mut out, e.data.len() as u32);
        u32le(&mut out, e.size);
        u16le(&mut out, e.name.len() as u16);
        u16le(&mut out, 0);
        out.extend_from_slice(e.name.as_bytes());
        out.extend_from_slice(&e.data);

        u32le(&mut central, 0x0201_4b50);
        for x in [20, 20, 0, e.method, 0, 0x21] {
            u16le(&mut central, x);
        }
        u32le(&mut central, e.crc);
        u32le(&mut central, e.data.len() as u32);
        u32le(&mut central, e.size);
        for x in [e.name.len() as u16, 0, 0, 0, 0] {
            u16le(&mut central, x);
        }
        u32le(&mut central, 0);
        u32le(&mut central, offset);
        central.extend_from_slice(e.name.as_bytes());
    }
    let (cd_offset, cd_size) = (out.len() as u32, central.len() as u32);
    out.extend_from_slice(&central);
    u32le(&mut out, 0x0605_4b50);
    for x in [0, 0, entries.len() as u16, entries.len() as u16] {
        u16le(&mut out, x);
    }
    u32le(&mut out, cd_size);
    u32le(&mut out, cd_offset);
    u16le(&mut out, 0);
    out
}

/// Deflate bits, least significant first.
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn put(&mut self, value: u64, count: u32) {
        self.acc |= value << self.n;
        self.n += count;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// A Huffman code, sent most significant bit first.
    fn code(&mut self, code: u32, len: u32) {
        let rev = (0..len).fold(0, |r, i| r | (((code >> i) & 1) << (len - 1 - i)));
        self.put(rev as u64, len);
    }
}

/// One dynamic-Huffman deflate block: a zero byte, then `matches` copies of 258 bytes at
/// distance 1, each coded in 2 bits: `1 + 258 * matches` zeros from `matches / 4` bytes.
fn deflate_zeros(matches: usize) -> Vec<u8> {
    let mut b = Bits {
        out: Vec::new(),
        acc: 0,
        n: 0,
    };
    b.put(1, 1); // last block
    b.put(2, 2); // dynamic Huffman codes
    b.put(29, 5); // 286 literal/length codes
    b.put(1, 5); // 2 distance codes
    b.put(14, 4); // 18 code length codes
                  // code lengths 0, 1 and 2 get codes `0`, `10` and `11`
    for sym in [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1] {
        b.put(
            match sym {
                0 => 1,
                1 | 2 => 2,
                _ => 0,
            },
            3,
        );
    }
    let length_code = |b: &mut Bits, len: u32| match len {
        0 => b.code(0, 1),
        1 => b.code(2, 2),
        _ => b.code(3, 2),
    };
    // literal 0 and end of block: 2 bits (`10`, `11`); length 258 (285): 1 bit (`0`)
    for sym in 0..286 {
        length_code(
            &mut b,
            match sym {
                0 | 256 => 2,
                285 => 1,
                _ => 0,
            },
        );
    }
    length_code(&mut b, 1); // distance code 0 (distance 1): `0`
    length_code(&mut b, 1); // distance code 1: `1`
    b.code(2, 2); // the zero byte
    let mut bits = 2 * matches; // each match: `0` (length 258) and `0` (distance 1)
    while bits >= 32 {
        b.put(0, 32);
        bits -= 32;
    }
    b.put(0, bits as u32);
    b.code(3, 2); // end of block
    if b.n > 0 {
        b.out.push(b.acc as u8);
    }
    b.out
}

/// 283,800,001 zeros, over Lambda's 262,144,000 unzipped bytes.
const BOMB_MATCHES: usize = 1_100_000;
const BOMB_SIZE: u32 = 1 + 258 * BOMB_MATCHES as u32;
/// `zlib.crc32(bytes(283_800_001))`
const BOMB_CRC: u32 = 2_924_224_225;

/// The code packages the Lambda cases upload.
struct Zips {
    /// A zip under 300 KB that unpacks to 283,800,001 bytes.
    bomb: Vec<u8>,
    /// The same, with headers claiming 1,000 bytes.
    lying_bomb: Vec<u8>,
    /// An entry named `../../evil.py`.
    slip: Vec<u8>,
    /// 50,001 empty entries.
    many: Vec<u8>,
}

impl Zips {
    fn make() -> Zips {
        let data = deflate_zeros(BOMB_MATCHES);
        let entry = |size| {
            zip(&[ZipEntry {
                name: "index.py".into(),
                method: 8,
                crc: BOMB_CRC,
                data: data.clone(),
                size,
            }])
        };
        let bomb = entry(BOMB_SIZE);
        assert!(bomb.len() < MIB, "the bomb is {} bytes", bomb.len());
        let many: Vec<ZipEntry> = (0..50_001).map(|i| stored(&format!("f{i}"), b"")).collect();
        Zips {
            bomb,
            lying_bomb: entry(1000),
            slip: zip(&[stored("../../evil.py", b"print('escaped')\n")]),
            many: zip(&many),
        }
    }

    fn write(&self, dir: &Path) {
        put(dir, "bomb.zip", &self.bomb);
        put(dir, "lying-bomb.zip", &self.lying_bomb);
        put(dir, "slip.zip", &self.slip);
        put(dir, "many.zip", &self.many);
        put(dir, "not-a-zip.zip", b"PK? no, just text\n");
    }
}

// ---------------------------------------------------------------------------------------------
// Pipeline definitions: `meridian validate`

const NATIVE: &str = "pipeline: hello-regions
execution-mode: QUEUED

build:
  buildspec: buildspec.yml
  env:
    NODE_ENV: production

deploy:
  template: template.yaml
  stack: hello-regions
  preference: Canary10Percent5Minutes
  parameters:
    Greeting: hello

waves:
  - name: primary
    regions: [us-east-1]
  - name: rest
    regions: [eu-west-1, ap-southeast-2]

regions:
  eu-west-1:
    window:
      timezone: Europe/Dublin
      hours: \"08:00-18:00\"
      days: [mon-fri]
";

const API: &str = r#"{
  "pipeline": {
    "name": "orders-service",
    "roleArn": "arn:aws:iam::123456789012:role/pipeline",
    "artifactStores": {
      "us-east-1": {"type": "S3", "location": "orders-artifacts-us-east-1"},
      "eu-west-1": {"type": "S3", "location": "orders-artifacts-eu-west-1"}
    },
    "stages": [
      {
        "name": "Source",
        "actions": [
          {
            "name": "Source",
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
            "runOrder": 1,
            "configuration": {"RepositoryName": "orders", "BranchName": "main"},
            "outputArtifacts": [{"name": "SourceArtifact"}]
          }
        ]
      },
      {
        "name": "Build",
        "actions": [
          {
            "name": "Build",
            "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
            "runOrder": 1,
            "configuration": {"ProjectName": "orders-build"},
            "inputArtifacts": [{"name": "SourceArtifact"}],
            "outputArtifacts": [{"name": "BuildOutput"}]
          }
        ]
      },
      {
        "name": "Deploy",
        "actions": [
          {
            "name": "DeployUsEast1",
            "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "CloudFormation", "version": "1"},
            "runOrder": 1,
            "region": "us-east-1",
            "configuration": {"ActionMode": "CREATE_UPDATE", "StackName": "orders", "TemplatePath": "BuildOutput::packaged-us-east-1.yaml"},
            "inputArtifacts": [{"name": "BuildOutput"}]
          },
          {
            "name": "DeployEuWest1",
            "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "CloudFormation", "version": "1"},
            "runOrder": 1,
            "region": "eu-west-1",
            "configuration": {"ActionMode": "CREATE_UPDATE", "StackName": "orders", "TemplatePath": "BuildOutput::packaged-eu-west-1.yaml"},
            "inputArtifacts": [{"name": "BuildOutput"}]
          }
        ]
      }
    ]
  }
}
"#;

const CFN: &str = "AWSTemplateFormatVersion: '2010-09-09'
Parameters:
  BucketPrefix:
    Type: String
    Default: acme-artifacts
    AllowedPattern: \"[a-z0-9-]+\"
  StackName:
    Type: String
    Default: orders
Resources:
  Project:
    Type: AWS::CodeBuild::Project
    Properties:
      Source: {Type: CODEPIPELINE, BuildSpec: buildspec.yml}
  Pipeline:
    Type: AWS::CodePipeline::Pipeline
    Properties:
      RoleArn: !GetAtt Role.Arn
      ArtifactStores:
        - Region: us-east-1
          ArtifactStore: {Type: S3, Location: !Sub \"${BucketPrefix}-us-east-1\"}
        - Region: us-west-2
          ArtifactStore: {Type: S3, Location: !Sub \"${BucketPrefix}-us-west-2\"}
      Stages:
        - Name: Source
          Actions:
            - Name: Source
              ActionTypeId: {Category: Source, Owner: AWS, Provider: CodeCommit, Version: '1'}
              Configuration: {RepositoryName: orders, BranchName: main}
              OutputArtifacts: [{Name: SourceCode}]
        - Name: Build
          Actions:
            - Name: Build
              ActionTypeId: {Category: Build, Owner: AWS, Provider: CodeBuild, Version: '1'}
              Configuration:
                ProjectName: !Ref Project
              InputArtifacts: [{Name: SourceCode}]
              OutputArtifacts: [{Name: BuildOutput}]
        - Name: Deploy
          Actions:
            - Name: DeployToUsEast1
              Region: us-east-1
              RunOrder: 1
              ActionTypeId: {Category: Deploy, Owner: AWS, Provider: CloudFormation, Version: '1'}
              InputArtifacts: [{Name: BuildOutput}]
              Configuration:
                ActionMode: CREATE_UPDATE
                StackName: !Ref StackName
                TemplatePath: BuildOutput::packaged-template-us-east-1.yaml
            - Name: DeployToUsWest2
              Region: us-west-2
              RunOrder: 1
              ActionTypeId: {Category: Deploy, Owner: AWS, Provider: CloudFormation, Version: '1'}
              InputArtifacts: [{Name: BuildOutput}]
              Configuration:
                ActionMode: CREATE_UPDATE
                StackName: !Ref StackName
                TemplatePath: BuildOutput::packaged-template-us-west-2.yaml
  Role:
    Type: AWS::IAM::Role
    Properties: {AssumeRolePolicyDocument: {}}
";

const VALID: &str = "valid: 0 error(s), 0 warning(s)";
const TOO_DEEP: &str = "the YAML nests lists and mappings deeper than 128 levels";
const TOO_DEEP_HELP: &str = "help: Meridian reads at most 128 nested levels";
const LAUGHS: &str = "aliases expand this YAML to more than 10000 values (an alias bomb";
const LAUGHS_HELP: &str = "help: aliases may add at most 10 values per byte of the file (10000)";
const NOT_TEXT_HELP: &str = "help: definition files are UTF-8 text: check that this is the right file";
const TOO_LARGE_HELP: &str = "CloudFormation accepts templates of at most 1 MB";
const PATH_HELP: &str = "help: write a path inside the artifact, like `BuildOutput::template.yaml`";

fn validate_cases(dir: &Path) -> Vec<Case> {
    std::fs::create_dir_all(dir).unwrap();
    let v = |name: &str, file: &str, bytes: &[u8]| {
        let file = put(dir, file, bytes);
        Case::new(name, dir, &["validate", &file])
    };
    let n = |from: &str, to: &str| edit(NATIVE, from, to);
    let a = |from: &str, to: &str| edit(API, from, to);
    let c = |from: &str, to: &str| edit(CFN, from, to);
    let bad_name = "help: use at most 100 letters, digits and . @ - _";
    let cases = vec![
        // the three formats as written: the controls
        v("control: Meridian's format", "native.yaml", NATIVE.as_bytes())
            .code(0)
            .err("pipeline `hello-regions`: 5 stages")
            .err(VALID),
        v("control: CodePipeline JSON", "api.json", API.as_bytes())
            .code(0)
            .err("pipeline `orders-service`: 3 stages, 4 actions")
            .err(VALID),
        v("control: CloudFormation", "cfn.yaml", CFN.as_bytes())
            .code(0)
            .err("pipeline `Pipeline`: 3 stages, 4 actions")
            .err(VALID),
        // alias bombs and nesting
        v(
            "alias bomb in Meridian's format",
            "bomb.yaml",
            format!("pipeline: app\n{}", laughs(0)).as_bytes(),
        )
        .code(2)
        .err(LAUGHS)
        .err("[bomb.yaml:6:8]")
        .err("this alias passes the limit")
        .err(LAUGHS_HELP),
        v(
            "alias bomb in a CloudFormation template",
            "bomb-cfn.yaml",
            format!(
                "Resources:\n  X:\n    Type: AWS::SSM::Parameter\n    Properties:\n{}",
                laughs(6)
            )
            .as_bytes(),
        )
        .code(2)
        .err(LAUGHS)
        .err("[bomb-cfn.yaml:9:14]"),
        v(
            "alias bomb of 10^10 values in 900 KB (the 1,000,000-value limit)",
            "big-bomb.yaml",
            big_laughs().as_bytes(),
        )
        .code(2)
        .err("the YAML holds more than 1000000 values, aliases expanded")
        .err("[big-bomb.yaml:9007:34]")
        .err("help: Meridian reads documents of at most 1,000,000 values"),
        v(
            "20,000 nested YAML flow lists",
            "deep-flow.yaml",
            format!("pipeline: app\nwaves: {}\n", deep_flow(20_000)).as_bytes(),
        )
        .code(2)
        .err(TOO_DEEP)
        .err("[deep-flow.yaml:2:")
        .err("level 129 starts here")
        .err(TOO_DEEP_HELP),
        v(
            "20,000 nested YAML flow mappings",
            "deep-map.yaml",
            format!("pipeline: app\nx: {}\n", deep_map(20_000)).as_bytes(),
        )
        .code(2)
        .err(TOO_DEEP)
        .err("[deep-map.yaml:2:"),
        v(
            "450,000 nested YAML flow lists (900 KB)",
            "deep-900k.yaml",
            format!("pipeline: app\nwaves: {}\n", deep_flow(450_000)).as_bytes(),
        )
        .code(2)
        .err(TOO_DEEP)
        .err("[deep-900k.yaml:2:"),
        v("200 nested YAML block mappings", "deep-block.yaml", deep_block(200).as_bytes())
            .code(2)
            .err(TOO_DEEP)
            .err("[deep-block.yaml:129:130]"),
        v(
            "20,000 nested JSON objects",
            "deep.json",
            format!("{{\"pipeline\": {}}}", deep_json(20_000)).as_bytes(),
        )
        .code(2)
        .err("the JSON nests lists and mappings deeper than 128 levels")
        .err("[deep.json:1:")
        .err(TOO_DEEP_HELP),
        v("20,000 nested JSON arrays", "deep-list.json", deep_flow(20_000).as_bytes())
            .code(2)
            .err("the JSON nests lists and mappings deeper than 128 levels"),
        v(
            "20,000 nested mappings in a CloudFormation property",
            "deep-cfn.yaml",
            c("Properties: {AssumeRolePolicyDocument: {}}", &format!("Properties: {}", deep_map(20_000))).as_bytes(),
        )
        .code(2)
        .err(TOO_DEEP)
        .err("[deep-cfn.yaml:"),
        // size, devices, binaries, encodings
        Case::new("file of 11 MiB (sparse)", dir, &["validate", &sparse(dir, "big.yaml", 11 * MIB as u64)])
            .code(2)
            .err("`big.yaml` is 11534336 bytes, over Meridian's limit of 10485760 bytes for a definition file")
            .err(TOO_LARGE_HELP),
        v(
            "file of 11 MiB of real YAML",
            "big-real.yaml",
            format!("pipeline: app\n{}", format!("# {}\n", "x".repeat(1021)).repeat(11 * 1024)).as_bytes(),
        )
        .code(2)
        .err("`big-real.yaml` is 11534350 bytes, over Meridian's limit of 10485760 bytes"),
        Case::new("/dev/zero", dir, &["validate", "/dev/zero"])
            .code(2)
            .err("`/dev/zero` holds more than 10485760 bytes, Meridian's limit for a definition file")
            .err(TOO_LARGE_HELP),
        Case::new("/dev/zero beside a valid file: both reported", dir, &["validate", "/dev/zero", "native.yaml"])
            .code(2)
            .err("`/dev/zero` holds more than 10485760 bytes")
            .err("pipeline `hello-regions`: 5 stages"),
        Case::new("/dev/null", dir, &["validate", "/dev/null"])
            .code(2)
            .err("`/dev/null` is not a pipeline definition: it holds nothing (null)"),
        v("ELF binary", "elf.yaml", &elf())
            .code(2)
            .err("`elf.yaml` is not UTF-8 text at byte offset 7 (line 1): it holds a NUL byte")
            .err("[elf.yaml:1:8]")
            .err("\\u{7f}ELF\\u{2}\\u{1}\\u{1}\\u{0}")
            .err(NOT_TEXT_HELP),
        v("PNG image", "png.yaml", &png())
            .code(2)
            .err("`png.yaml` is not UTF-8 text at byte offset 0 (line 1)")
            .err(NOT_TEXT_HELP),
        v("UTF-16 with a byte order mark", "utf16.yaml", &utf16("pipeline: app\n"))
            .code(2)
            .err("`utf16.yaml` is not UTF-8 text at byte offset 0 (line 1)")
            .err("(`iconv -t UTF-8`)"),
        v("Latin-1 text", "latin1.yaml", b"pipeline: caf\xe9\nwaves:\n  - regions: [us-east-1]\n")
            .code(2)
            .err("`latin1.yaml` is not UTF-8 text at byte offset 13 (line 1)")
            .err("[latin1.yaml:1:14]"),
        v(
            "UTF-8 byte order mark before a valid definition",
            "bom.yaml",
            &[b"\xef\xbb\xbf".as_slice(), NATIVE.as_bytes()].concat(),
        )
        .code(0)
        .err(VALID),
        v("raw NUL byte in the pipeline name", "nul-raw.yaml", n("hello-regions", "hello\0regions").as_bytes())
            .code(2)
            .err("`nul-raw.yaml` is not UTF-8 text at byte offset 15 (line 1): it holds a NUL byte")
            .err("hello\\u{0}regions"),
        // control and bidirectional characters in names and values
        v("escaped NUL in the pipeline name", "nul-name.yaml", n("pipeline: hello-regions", "pipeline: \"hello\\0regions\"").as_bytes())
            .code(1)
            .err("`hello\\u{0}regions` is not a valid pipeline name")
            .err(bad_name)
            .err("pipeline `hello\\u{0}regions`: 5 stages"),
        v("escaped NUL in a CodePipeline JSON name", "nul-name.json", a("\"orders-service\"", "\"orders\\u0000service\"").as_bytes())
            .code(1)
            .err("`orders\\u{0}service` is not a valid pipeline name")
            .err("pipeline `orders\\u{0}service`: 3 stages"),
        v("ESC sequence in the pipeline name", "esc-name.yaml", n("pipeline: hello-regions", "pipeline: \"hello\\e[31mred\"").as_bytes())
            .code(1)
            .err("`hello\\u{1b}[31mred` is not a valid pipeline name")
            .err("pipeline `hello\\u{1b}[31mred`: 5 stages"),
        v("U+202E in the pipeline name", "rlo-pipeline.yaml", n("pipeline: hello-regions", "pipeline: \"hello\u{202e}snoiger\"").as_bytes())
            .code(1)
            .err("`hello\\u{202e}snoiger` is not a valid pipeline name")
            .err("pipeline `hello\\u{202e}snoiger`: 5 stages"),
        v("U+202E in a wave name", "rlo-wave.yaml", n("- name: primary", "- name: \"prim\u{202e}yram\"").as_bytes())
            .code(1)
            .err("`Deploy-prim\\u{202e}yram` is not a valid stage name")
            .err("[rlo-wave.yaml:17:9]")
            .err(bad_name),
        v("U+202E in a region", "rlo-region.yaml", n("regions: [us-east-1]", "regions: [\"us-east-1\u{202e}\"]").as_bytes())
            .code(1)
            .err("`us-east-1\\u{202e}` is not an AWS region name (did you mean `us-east-1`?)")
            .err("regions: ap-southeast-2, eu-west-1, us-east-1\\u{202e}"),
        v("U+202E in an unknown field", "rlo-field.yaml", n("execution-mode: QUEUED", "execution-mode: QUEUED\n\"x\u{202e}y\": 1").as_bytes())
            .code(0)
            .err("unknown field `x\\u{202e}y` in the pipeline definition; it is ignored"),
        v("U+202E in a CloudFormation stage name", "rlo-cfn.yaml", c("- Name: Build\n", "- Name: \"Bu\u{202e}ild\"\n").as_bytes())
            .code(1)
            .err("`Bu\\u{202e}ild` is not a valid stage name"),
        v("100,000-character pipeline name", "long-name.yaml", n("pipeline: hello-regions", &format!("pipeline: {}", "x".repeat(100_000))).as_bytes())
            .code(1)
            .err("is not a valid pipeline name")
            .max_stderr(16 * 1024),
        // long lines and floods of diagnostics
        v(
            "2 MB single-line JSON with one error",
            "long-line.json",
            format!("{{\"pipeline\": \"{}\", oops}}", "x".repeat(2 * MIB)).as_bytes(),
        )
        .code(2)
        .err("invalid JSON: key must be a string")
        .err("[long-line.json:1:2097170]")
        .err("…")
        .max_stderr(4000),
        v(
            "2 MB single-line YAML with one error",
            "long-line.yaml",
            format!(
                "{}x: [{}!Evil b]\n",
                NATIVE,
                "aaaaaaaaaa, ".repeat(2 * MIB / 12)
            )
            .as_bytes(),
        )
        .code(1)
        .err("unknown tag `!Evil`")
        .err("[long-line.yaml:28:")
        .max_stderr(8000),
        v(
            "190,000 wrongly typed waves on one 2 MB line",
            "many-waves.yaml",
            format!("pipeline: app\nwaves: [{}us-east-1]\n", "us-east-1, ".repeat(190_000)).as_bytes(),
        )
        .code(1)
        .err("wave 1 must be a mapping, found a scalar")
        .max_stderr(MIB),
        v(
            "20,000 unknown fields",
            "many-fields.yaml",
            (NATIVE.to_string() + &(0..20_000).map(|i| format!("field{i}: 1\n")).collect::<String>()).as_bytes(),
        )
        .code(0)
        .err("unknown field `field0` in the pipeline definition; it is ignored")
        .max_stderr(MIB),
        // duplicate keys
        v("duplicate key in Meridian's format", "dup.yaml", n("execution-mode: QUEUED", "execution-mode: QUEUED\nexecution-mode: PARALLEL").as_bytes())
            .code(1)
            .err("the key `execution-mode` appears twice in this mapping")
            .err("[dup.yaml:3:1]")
            .err("help: remove one of the two entries; only one value can be kept")
            .err("invalid: 1 error(s), 0 warning(s)")
            .lacks("did you mean `execution-mode`?"),
        // AWS's JSON parsers and CloudFormation keep the last value of a repeated key (issue 17)
        v("duplicate key in CodePipeline JSON", "dup.json", a("\"name\": \"orders-service\",", "\"name\": \"orders-service\",\n    \"name\": \"other\",").as_bytes())
            .code(0)
            .err("the key `name` appears twice in this mapping (lines 3 and 4); AWS's JSON parsers (the CLI's, the SDKs') keep the last value")
            .err("[dup.json:4:5]")
            .err("pipeline `other`: 3 stages")
            .err("valid: 0 error(s), 1 warning(s)")
            .lacks("did you mean `name`?"),
        v("duplicate key in CloudFormation", "dup-cfn.yaml", c("Region: us-east-1\n              RunOrder: 1", "Region: us-east-1\n              Region: us-west-2\n              RunOrder: 1").as_bytes())
            .code(0)
            .err("the key `Region` appears twice in this mapping (lines 42 and 43); CloudFormation keeps the last value")
            .err("help: remove the entry on line 42, which is ignored")
            .err("valid: 0 error(s), 1 warning(s)")
            .lacks("unknown field `Region`"),
        // wrong types everywhere
        v(
            "stages as a string",
            "stages-string.json",
            br#"{"pipeline": {"name": "p", "roleArn": "arn:aws:iam::123456789012:role/x", "artifactStore": {"type": "S3", "location": "b"}, "stages": "Source,Build"}}"#,
        )
        .code(1)
        .err("`stages` of the pipeline must be a list, found a scalar")
        .err("[stages-string.json:1:135]")
        .err("help: write `stages` as a list"),
        v("actions as a number", "actions-number.json", a("\"actions\": [", "\"actions\": 42, \"x\": [").as_bytes())
            .code(1)
            .err("`actions` of a stage must be a list, found a scalar")
            .err("[actions-number.json:12:20]"),
        v("waves as a string", "waves-string.yaml", n("waves:\n  - name: primary", "waves: \"us-east-1\"\nx:\n  - name: primary").as_bytes())
            .code(1)
            .err("`waves` of the pipeline definition must be a list, found a scalar"),
        v("waves as a number", "waves-number.yaml", b"pipeline: app\nwaves: 42\n")
            .code(1)
            .err("`waves` of the pipeline definition must be a list, found a scalar")
            .err("the definition has no `waves`"),
        v("pipeline name as a list", "name-list.yaml", n("pipeline: hello-regions", "pipeline: [1, 2]").as_bytes())
            .code(1)
            .err("`pipeline` of the pipeline definition must be a string, found a list"),
        v("region as a number", "region-number.yaml", n("regions: [us-east-1]", "regions: [1]").as_bytes())
            .code(1)
            .err("`1` is not an AWS region name"),
        v("deploy as a scalar", "deploy-scalar.yaml", n("deploy:\n  template: template.yaml", "deploy: yes\nx:\n  template: template.yaml").as_bytes())
            .code(1)
            .err("`deploy` must be a mapping, found a scalar"),
        v("build timeout as a string", "timeout-string.yaml", n("build:\n", "build:\n  timeout: abc\n").as_bytes())
            .code(1)
            .err("`timeout` of `build` must be a whole number, found `abc`"),
        v("build timeout of -1", "timeout-negative.yaml", n("build:\n", "build:\n  timeout: -1\n").as_bytes())
            .code(1)
            .err("build project `hello-regions-build` has a timeout of -1 minutes; CodeBuild allows 5 to 2160")
            .err("help: give a build timeout between 5 and 2160 minutes (36 hours)"),
        v("build timeout of 0", "timeout-zero.yaml", n("build:\n", "build:\n  timeout: 0\n").as_bytes())
            .code(1)
            .err("has a timeout of 0 minutes; CodeBuild allows 5 to 2160"),
        v("build timeout of 10^23", "timeout-huge.yaml", n("build:\n", "build:\n  timeout: 99999999999999999999999\n").as_bytes())
            .code(1)
            .err("`timeout` of `build` must be a whole number, found `99999999999999999999999`"),
        v("max-parallel-regions as a string", "maxpar-abc.yaml", n("execution-mode: QUEUED", "execution-mode: QUEUED\nmax-parallel-regions: abc").as_bytes())
            .code(1)
            .err("max-parallel-regions")
            .err("[maxpar-abc.yaml:3:23]"),
        v("max-parallel-regions of 0", "maxpar-zero.yaml", n("execution-mode: QUEUED", "execution-mode: QUEUED\nmax-parallel-regions: 0").as_bytes())
            .code(1)
            .err("max-parallel-regions")
            .err("[maxpar-zero.yaml:3:23]"),
        v("unknown execution mode", "mode.yaml", n("execution-mode: QUEUED", "execution-mode: FAST").as_bytes())
            .code(1)
            .err("`FAST` is not an execution mode")
            .err("help: use QUEUED, SUPERSEDED or PARALLEL"),
        v("runOrder 1e999", "runorder-inf.json", a("\"runOrder\": 1,", "\"runOrder\": 1e999,").as_bytes())
            .code(1)
            .err("`runOrder` of an action must be a whole number, found `1e999`"),
        v("runOrder of 30 digits", "runorder-huge.json", a("\"runOrder\": 1,", "\"runOrder\": 123456789012345678901234567890,").as_bytes())
            .code(1)
            .err("`runOrder` of an action must be a whole number, found `123456789012345678901234567890`"),
        v("runOrder -5", "runorder-negative.json", a("\"runOrder\": 1,", "\"runOrder\": -5,").as_bytes())
            .code(1)
            .err("action `Source` has run order -5; run orders go from 1 to 999"),
        v("Resources as a list", "resources-list.yaml", b"Resources:\n  - a\n  - b\n")
            .code(1)
            .err("`Resources`")
            .err("mapping")
            .lacks("the template has no `Resources`"),
        v("Stages as a mapping", "stages-map.yaml", c("Stages:\n        - Name: Source", "Stages:\n        Name: Source\n        X:\n        - Name: Source0").as_bytes())
            .code(1)
            .err("`stages` of the pipeline must be a list, found a mapping"),
        // paths and names that leave their place
        v("TemplatePath leaving the artifact (JSON)", "path-up.json", a("BuildOutput::packaged-us-east-1.yaml", "BuildOutput::../../x").as_bytes())
            .code(1)
            .err("TemplatePath of action `DeployUsEast1` names `../../x`, which leaves the artifact through `..`")
            .err("[path-up.json:43:101]")
            .err(PATH_HELP),
        v("absolute TemplatePath (JSON)", "path-abs.json", a("BuildOutput::packaged-us-east-1.yaml", "BuildOutput::/etc/passwd").as_bytes())
            .code(1)
            .err("TemplatePath of action `DeployUsEast1` names `/etc/passwd`, which is absolute")
            .err(PATH_HELP),
        v("TemplatePath leaving the artifact (CloudFormation)", "path-up-cfn.yaml", c("BuildOutput::packaged-template-us-east-1.yaml", "Src::../../x").as_bytes())
            .code(1)
            .err("TemplatePath of action `DeployToUsEast1` names `../../x`, which leaves the artifact through `..`"),
        v("template leaving the artifact (Meridian's format)", "template-up.yaml", n("template: template.yaml", "template: ../../etc/passwd").as_bytes())
            .code(1)
            .err("TemplatePath of action `Package` names `../../etc/passwd`, which leaves the artifact through `..`")
            .err("[template-up.yaml:10:13]"),
        v("absolute template (Meridian's format)", "template-abs.yaml", n("template: template.yaml", "template: /etc/passwd").as_bytes())
            .code(1)
            .err("TemplatePath of action `Package` names `/etc/passwd`, which is absolute"),
        v("absolute buildspec", "buildspec-abs.yaml", n("buildspec: buildspec.yml", "buildspec: /etc/passwd").as_bytes())
            .code(1)
            .err("the buildspec of build project `hello-regions-build` must be inside the source: `/etc/passwd`")
            .err("help: give a path inside the primary source, like `buildspec.yml`"),
        v("buildspec leaving the source", "buildspec-up.yaml", n("buildspec: buildspec.yml", "buildspec: ../../etc/buildspec.yml").as_bytes())
            .code(1)
            .err("leaves the directory through `..`")
            .err("[buildspec-up.yaml:5:14]"),
        v("stage named `..` (allowed by CodePipeline)", "stage-dotdot.json", a("\"name\": \"Build\",", "\"name\": \"..\",").as_bytes())
            .code(0)
            .err(VALID),
        v("wave named `..`", "wave-dotdot.yaml", n("- name: primary", "- name: '..'").as_bytes())
            .code(0)
            .err(VALID),
        v("stage named `../../etc`", "stage-slash.json", a("\"name\": \"Build\",", "\"name\": \"../../etc\",").as_bytes())
            .code(1)
            .err("`../../etc` is not a valid stage name")
            .err(bad_name),
        v("wave named `../../etc`", "wave-slash.yaml", n("- name: primary", "- name: '../../etc'").as_bytes())
            .code(1)
            .err("`Deploy-../../etc` is not a valid stage name"),
        // empty, missing, not a file
        v("empty file", "empty.yaml", b"")
            .code(2)
            .err("`empty.yaml` is not a pipeline definition: it holds nothing (null)")
            .err("help: give a meridian.yaml, a CodePipeline JSON"),
        v("white space only", "ws.yaml", b"   \n\t\n  \n")
            .code(2)
            .err("`ws.yaml` is not a pipeline definition: it holds nothing (null)"),
        v("comment only", "comment.yaml", b"# nothing here\n")
            .code(2)
            .err("`comment.yaml` is not a pipeline definition: it holds nothing (null)"),
        v("JSON array", "array.json", b"[1, 2, 3]")
            .code(2)
            .err("`array.json` is not a pipeline definition: it holds a list"),
        v("JSON string", "string.json", b"\"pipeline\"")
            .code(2)
            .err("`string.json` is not a pipeline definition: it holds a scalar"),
        Case::new("a directory", dir, &["validate", "."])
            .code(2)
            .err("cannot read `.`: Is a directory")
            .err("help: check the path and the file's permissions"),
        Case::new("a missing file", dir, &["validate", "missing.yaml"])
            .code(2)
            .err("cannot read `missing.yaml`: No such file or directory"),
        Case::new("a named pipe with no writer", dir, &["validate", "fifo.yaml"])
            .code(2)
            .err("fifo.yaml"),
        Case::new("a symbolic link to itself", dir, &["validate", "loop.yaml"])
            .code(2)
            .err("cannot read `loop.yaml`: Too many levels of symbolic links"),
        // regions and backends
        v("unknown region", "region-unknown.yaml", n("[eu-west-1, ap-southeast-2]", "[eu-west-1, mars-north-1]").as_bytes())
            .code(1)
            .err("`mars-north-1` is not an AWS region name")
            .err("[region-unknown.yaml:20:26]")
            .err("help: use an AWS region name such as us-east-1"),
        v("misspelt region", "region-typo.yaml", n("regions: [us-east-1]", "regions: [us-esat-1]").as_bytes())
            .code(1)
            .err("`us-esat-1` is not an AWS region name (did you mean `us-east-1`?)"),
        v("unknown backend", "backend.yaml", n("execution-mode: QUEUED", "execution-mode: QUEUED\nbackend: awz").as_bytes())
            .code(1)
            .err("`awz` is not a region backend")
            .err("[backend.yaml:3:10]")
            .err("help: did you mean `aws`? Backends: local, aws"),
        v("unknown backend of one region", "backend-region.yaml", n("  eu-west-1:\n    window:", "  eu-west-1:\n    backend: lcoal\n    window:").as_bytes())
            .code(1)
            .err("`lcoal` is not a region backend")
            .err("did you mean `local`?"),
        v("unknown backend in x-meridian", "backend.json", a("{\n  \"pipeline\": {", "{\n  \"x-meridian\": {\"backend\": \"awz\"},\n  \"pipeline\": {").as_bytes())
            .code(1)
            .err("`awz` is not a region backend"),
        v("unknown backend in Metadata: Meridian", "backend-cfn.yaml", c("Parameters:", "Metadata:\n  Meridian:\n    Backend: awz\nParameters:").as_bytes())
            .code(1)
            .err("`awz` is not a region backend"),
        v("unknown time zone", "timezone.yaml", n("timezone: Europe/Dublin", "timezone: Mars/Olympus_Mons").as_bytes())
            .code(1)
            .err("`Mars/Olympus_Mons` is not an IANA time zone"),
        v("hours out of range", "hours.yaml", n("\"08:00-18:00\"", "\"25:00-26:99\"").as_bytes())
            .code(1)
            .err("`25:00-26:99` is not a range of hours"),
        v("unknown deployment preference", "preference.yaml", n("Canary10Percent5Minutes", "Canary200Percent-5Minutes").as_bytes())
            .code(1)
            .err("`Canary200Percent-5Minutes` is not a deployment preference"),
        // YAML and JSON syntax
        v("unknown tag", "tag.yaml", n("Greeting: hello", "Greeting: !Evil hello").as_bytes())
            .code(1)
            .err("unknown tag `!Evil`")
            .err("[tag.yaml:14:15]"),
        v("alias of no anchor", "alias.yaml", n("Greeting: hello", "Greeting: *nowhere").as_bytes())
            .code(2)
            .err("invalid YAML: while parsing node, found unknown anchor")
            .err("[alias.yaml:14:15]"),
        v("tab indentation", "tabs.yaml", b"pipeline: app\nwaves:\n\t- regions: [us-east-1]\n")
            .code(2)
            .err("invalid YAML: tabs disallowed within this context")
            .err("[tabs.yaml:3:"),
        v("a list as a mapping key", "complex-key.yaml", b"pipeline: app\n? [a, b]\n: c\nwaves:\n  - regions: [us-east-1]\n")
            .code(1)
            .err("[complex-key.yaml:2:")
            .lacks("unknown field ``"),
        v("JSON trailing comma", "comma.json", br#"{"pipeline": {"name": "p", "stages": [],}}"#)
            .code(2)
            .err("invalid JSON: key must be a string")
            .err("[comma.json:1:41]"),
        v("JSON comment", "comment.json", b"// comment\n{\"pipeline\": {\"name\": \"p\"}}")
            .code(2)
            .err("invalid JSON: expected value")
            .err("[comment.json:1:1]"),
        v("JSON NaN", "nan.json", br#"{"pipeline": {"name": "p", "version": NaN}}"#)
            .code(2)
            .err("invalid JSON: expected value"),
        v("truncated JSON", "truncated.json", &API.as_bytes()[..API.len() / 2])
            .code(2)
            .err("invalid JSON: EOF while parsing"),
        v("JSON lone surrogate escape", "surrogate.json", a("\"orders-service\"", "\"orders\\ud800service\"").as_bytes())
            .code(2)
            .err("invalid JSON")
            .err("[surrogate.json:3:"),
        // CloudFormation intrinsics
        v("condition cycle", "condition-cycle.yaml", c("Resources:", "Conditions:\n  A: !Condition B\n  B: !Condition A\nResources:").as_bytes())
            .code(1)
            .err("condition `A` refers to itself")
            .err("[condition-cycle.yaml:11:"),
        v("condition negating itself", "condition-self.yaml", c("Resources:", "Conditions:\n  A: !Not [!Condition A]\nResources:").as_bytes())
            .code(1)
            .err("condition `A` refers to itself"),
        v("AllowedPattern that is no regular expression", "pattern.yaml", c("AllowedPattern: \"[a-z0-9-]+\"", "AllowedPattern: \"[a-z\"").as_bytes())
            .code(1)
            .err("AllowedPattern")
            .err("`[a-z`")
            .err("[pattern.yaml:6:"),
        v("GetAtt of four parts", "getatt.yaml", c("RoleArn: !GetAtt Role.Arn", "RoleArn: !GetAtt [1, 2, 3, 4]").as_bytes())
            .code(1)
            .err("`GetAtt 1.2.3.4` names no resource of the template"),
    ];
    mkfifo(&dir.join("fifo.yaml"));
    std::os::unix::fs::symlink("loop.yaml", dir.join("loop.yaml")).unwrap();
    cases
}

// ---------------------------------------------------------------------------------------------
// Templates: `meridian template transform`

const SAM: &str = "Transform: AWS::Serverless-2016-10-31\nResources:\n";

fn sam_function(i: usize) -> String {
    format!(
        "  Fn{i}:\n    Type: AWS::Serverless::Function\n    Properties:\n      Runtime: python3.12\n      Handler: app.handler\n      InlineCode: \"def handler(e, c): return 1\"\n"
    )
}

/// `n` nested `Fn::Base64` around "x", as one instance's UserData.
fn nested_base64(n: usize, sam: bool) -> String {
    let mut v = "\"x\"".to_string();
    for _ in 0..n {
        v = format!("{{\"Fn::Base64\": {v}}}");
    }
    let transform = if sam {
        "\"Transform\": \"AWS::Serverless-2016-10-31\", "
    } else {
        ""
    };
    format!(
        "{{{transform}\"Resources\": {{\"Inst\": {{\"Type\": \"AWS::EC2::Instance\", \"Properties\": {{\"UserData\": {v}}}}}}}}}"
    )
}

fn template_cases(dir: &Path) -> Vec<Case> {
    std::fs::create_dir_all(dir).unwrap();
    let t = |name: &str, file: &str, bytes: &[u8]| {
        let file = put(dir, file, bytes);
        Case::new(name, dir, &["template", "transform", &file])
    };
    let empty_help = "the template is empty (help: a template is a mapping with a `Resources` section: start the file with `Resources:`)";
    let sam_error = "Invalid Serverless Application Specification document. Number of errors found: 1.";
    let one = format!("{SAM}{}", sam_function(0));
    let cases = vec![
        t("control: one SAM function", "ok.yaml", one.as_bytes())
            .code(0)
            .out("\"AWS::Lambda::Function\"")
            .out("\"Fn0Role\""),
        t("empty template", "empty.yaml", b"")
            .code(2)
            .err(format!("error: empty.yaml:1: {empty_help}")),
        t("white space only", "ws.yaml", b"  \n\n\t\n")
            .code(2)
            .err(format!("error: ws.yaml:1: {empty_help}")),
        t("comment only", "comment.yaml", b"# nothing\n")
            .code(2)
            .err(format!("error: comment.yaml:1: {empty_help}")),
        t(
            "70 nested Fn::Base64 (evaluated at deploy, not by the transform)",
            "base64.json",
            nested_base64(70, true).as_bytes(),
        )
        .code(0)
        .out("\"Fn::Base64\""),
        t(
            "20,000 nested mappings",
            "deep.yaml",
            format!(
                "{SAM}  Q:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Value: {}\n",
                deep_map(20_000)
            )
            .as_bytes(),
        )
        .code(2)
        .err(format!("error: deep.yaml:6: {TOO_DEEP}"))
        .err("(help: Meridian reads at most 128 nested levels"),
        t(
            "20,000 nested JSON arrays",
            "deep.json",
            format!(
                "{{\"Transform\": \"AWS::Serverless-2016-10-31\", \"Resources\": {}}}",
                deep_flow(20_000)
            )
            .as_bytes(),
        )
        .code(2)
        .err("error: deep.json:1: the JSON nests lists and mappings deeper than 128 levels"),
        t(
            "alias bomb",
            "bomb.yaml",
            format!(
                "Transform: AWS::Serverless-2016-10-31\nMetadata:\n{}Resources:\n{}",
                laughs(2),
                sam_function(0)
            )
            .as_bytes(),
        )
        .code(2)
        .err(format!("error: bomb.yaml:7: {LAUGHS}")),
        t(
            "600 SAM functions (CloudFormation allows 500 resources)",
            "sam600.yaml",
            format!("{SAM}{}", (0..600).map(sam_function).collect::<String>()).as_bytes(),
        )
        // the translator's output is right; CloudFormation refuses it: an error or a warning
        .codes(&[0, 1])
        .err("Template format error: Number of resources, 1200, is greater than maximum allowed, 500"),
        t(
            "unknown tag",
            "tag.yaml",
            format!("{one}      Description: !Evil x\n").as_bytes(),
        )
        .code(2)
        .err("error: tag.yaml:9: unknown tag `!Evil`"),
        t(
            "unknown Transform version",
            "transform-version.yaml",
            format!("Transform: AWS::Serverless-2099-01-01\nResources:\n{}", sam_function(0)).as_bytes(),
        )
        .code(1)
        .err("AWS::Serverless-2099-01-01"),
        t(
            "unknown macro in a Transform list",
            "transform-list.yaml",
            format!(
                "Transform: [AWS::Serverless-2016-10-31, Evil::Macro]\nResources:\n{}",
                sam_function(0)
            )
            .as_bytes(),
        )
        .code(1)
        .err("Evil::Macro"),
        t(
            "Transform as a number",
            "transform-number.yaml",
            format!("Transform: 42\nResources:\n{}", sam_function(0)).as_bytes(),
        )
        .code(1)
        .err("Transform"),
        t("ELF binary", "elf.yaml", &elf())
            .code(2)
            .err("elf.yaml")
            .err("not UTF-8 text at byte offset 7 (line 1): it holds a NUL byte"),
        Case::new(
            "file of 11 MiB (sparse)",
            dir,
            &["template", "transform", &sparse(dir, "big.yaml", 11 * MIB as u64)],
        )
        .code(2)
        .err("is 11534336 bytes, over Meridian's limit of 10485760 bytes"),
        Case::new("/dev/zero", dir, &["template", "transform", "/dev/zero"])
            .code(2)
            .err("holds more than 10485760 bytes"),
        Case::new(
            "a named pipe with no writer",
            dir,
            &["template", "transform", "fifo.yaml"],
        )
        .code(2)
        .err("fifo.yaml"),
        t(
            "Latin-1 text",
            "latin1.yaml",
            b"Transform: AWS::Serverless-2016-10-31\nResources:\n  F\xe9:\n    Type: AWS::SSM::Parameter\n",
        )
        .code(2)
        .err("latin1.yaml")
        .err("not UTF-8 text at byte offset 52 (line 3)"),
        t("a plain sentence", "text.yaml", b"hello world\n")
            .code(2)
            .err("a template is a mapping with a `Resources` section"),
        t(
            "2 MB single-line JSON with one error",
            "long-line.json",
            format!(
                "{{\"Transform\": \"AWS::Serverless-2016-10-31\", \"Description\": \"{}\", oops}}",
                "x".repeat(2 * MIB)
            )
            .as_bytes(),
        )
        .code(2)
        .err("error: long-line.json:1: invalid JSON: key must be a string (help: fix the JSON syntax at this line)")
        .max_stderr(2000),
        t(
            "duplicate logical id",
            "dup.yaml",
            format!("{one}{}", sam_function(0)).as_bytes(),
        )
        .code(2)
        .err("error: dup.yaml:9: the key `Fn0` appears twice in this mapping"),
        t(
            "Resources as a string",
            "resources-string.yaml",
            SAM.replace("Resources:\n", "Resources: lots\n").as_bytes(),
        )
        .code(1)
        .err(format!(
            "{sam_error} Structure of the SAM template is invalid. 'Resources' section is required"
        )),
        t(
            "Properties as a list",
            "properties-list.yaml",
            format!("{SAM}  F:\n    Type: AWS::Serverless::Function\n    Properties: [1, 2]\n").as_bytes(),
        )
        .code(1)
        .err("Resource with id [F] is invalid. Attribute 'Properties' should be a map."),
        t(
            "event Properties as a number",
            "event.yaml",
            format!("{one}      Events:\n        Api:\n          Type: Api\n          Properties: 42\n").as_bytes(),
        )
        .code(1)
        .err("Resource with id [Fn0] is invalid. Event with id [Api] is invalid."),
        t(
            "nested lists as Policies",
            "policies.yaml",
            format!("{one}      Policies: {}\n", deep_flow(100)).as_bytes(),
        )
        .code(1)
        // aws-sam-translator 1.115.0's own message: the property's type is checked when read
        .err("Resource with id [Fn0] is invalid. Type of property 'Policies' is invalid."),
        t(
            "U+202E in a logical id",
            "rlo.yaml",
            one.replace("Fn0:", "\"F\u{202e}n0\":").as_bytes(),
        )
        .code(1)
        .err("Resource with id [F\\u{202e}n0] is invalid. Logical ids must be alphanumeric."),
        t(
            "NUL in a logical id",
            "nul.yaml",
            one.replace("Fn0:", "\"F\\0n0\":").as_bytes(),
        )
        .code(1)
        .err("Resource with id [F\\u{0}n0] is invalid. Logical ids must be alphanumeric."),
        t(
            "CodeUri leaving the directory",
            "codeuri.yaml",
            one.replace(
                "InlineCode: \"def handler(e, c): return 1\"",
                "CodeUri: ../../../../etc",
            )
            .as_bytes(),
        )
        .code(1)
        .err("'CodeUri' is not a valid S3 Uri of the form 's3://bucket/key'"),
        Case::new("a missing file", dir, &["template", "transform", "missing.yaml"])
            .code(2)
            .err("cannot read missing.yaml: No such file or directory"),
        Case::new("a directory", dir, &["template", "transform", "."])
            .code(2)
            .err("cannot read .: Is a directory"),
    ];
    mkfifo(&dir.join("fifo.yaml"));
    cases
}

// ---------------------------------------------------------------------------------------------
// Buildspecs: `meridian build DIR --plan` (and a few real builds)

const SPEC: &str = "version: 0.2\nphases:\n  build:\n    commands: [ls]\n";
const VAR_HELP: &str = "help: a name is letters, digits and underscores, not starting with a digit, such as `MY_VAR`; to set `X=Y`, write `X: Y`";
const INSIDE_HELP: &str = "help: give a directory inside the source, like `base-directory: build/output`";

fn build_cases(dir: &Path) -> Vec<Case> {
    std::fs::create_dir_all(dir).unwrap();
    let data = dir.join(".data");
    let data = path_str(&data).to_string();
    // each buildspec in its own source directory
    let b = |name: &str, src: &str, bytes: &[u8]| {
        put(dir, &format!("{src}/buildspec.yml"), bytes);
        Case::new(name, dir, &["--data-dir", &data, "build", src, "--plan"])
    };
    let var = |section: &str, entry: &str| {
        format!(
            "version: 0.2\nenv:\n  {section}:\n    OK_NAME: x\n    {entry}\nphases:\n  build:\n    commands: [ls]\n"
        )
    };
    let invalid = "invalid buildspec: 1 error(s)";
    let mut cases = vec![
        b("control: a valid buildspec", "ok", SPEC.as_bytes())
            .code(0)
            .out("buildspec version 0.2")
            .out("$ ls"),
        b("variable named `X=Y`", "var-eq", var("variables", "\"X=Y\": v").as_bytes())
            .code(1)
            .err("`X=Y` in `variables` is not a valid environment variable name: it holds `=`")
            .err("[var-eq/buildspec.yml:5:5]")
            .err(VAR_HELP)
            .err(invalid),
        b("variable named `HAS SPACE`", "var-space", var("variables", "\"HAS SPACE\": v").as_bytes())
            .code(1)
            .err("`HAS SPACE` in `variables` is not a valid environment variable name: it holds a space"),
        b("variable with an empty name", "var-empty", var("variables", "\"\": v").as_bytes())
            .code(1)
            .err("`` in `variables` is not a valid environment variable name: an empty name"),
        b("variable named with U+202E", "var-rlo", var("variables", "\"A\u{202e}B\": v").as_bytes())
            .code(1)
            .err("`A\\u{202e}B` in `variables` is not a valid environment variable name: it holds `\\u{202e}`"),
        b("variable named with NUL", "var-nul", var("variables", "\"A\\0B\": v").as_bytes())
            .code(1)
            .err("`A\\u{0}B` in `variables` is not a valid environment variable name: it holds `\\u{0}`"),
        b("variable starting with a digit", "var-digit", var("variables", "1ST: v").as_bytes())
            .code(1)
            .err("`1ST` in `variables` is not a valid environment variable name: it starts with a digit"),
        b("parameter-store name with `-`", "var-param", var("parameter-store", "\"TOKEN-X\": /ci/token").as_bytes())
            .code(1)
            .err("`TOKEN-X` in `parameter-store` is not a valid environment variable name: it holds `-`"),
        b("secrets-manager name with a space", "var-secret", var("secrets-manager", "\"DB PASS\": db:password").as_bytes())
            .code(1)
            .err("`DB PASS` in `secrets-manager` is not a valid environment variable name: it holds a space"),
        b(
            "exported variable `BAD=1`",
            "var-exported",
            b"version: 0.2\nenv:\n  exported-variables: [GOOD, \"BAD=1\"]\nphases:\n  build:\n    commands: [ls]\n",
        )
        .code(1)
        .err("`BAD=1` in `exported-variables` is not a valid environment variable name: it holds `=`"),
        b("base-directory: ../..", "base-up", format!("{SPEC}artifacts:\n  files: ['**/*']\n  base-directory: ../..\n").as_bytes())
            .code(1)
            .err("`base-directory` must stay inside the build's source directory: `../..` leaves the directory through `..`")
            .err("[base-up/buildspec.yml:7:19]")
            .err(INSIDE_HELP),
        b("absolute base-directory", "base-abs", format!("{SPEC}artifacts:\n  files: ['**/*']\n  base-directory: /etc\n").as_bytes())
            .code(1)
            .err("`base-directory` must stay inside the build's source directory: `/etc` is an absolute path"),
        b("artifact files under ../..", "files-up", format!("{SPEC}artifacts:\n  files: ['../../secret/*']\n").as_bytes())
            .code(1)
            .err("`files` entries must stay inside the build's source directory: `../../secret/*` leaves the directory through `..`")
            .err("help: write a path or glob inside the source, like `build/**/*`"),
        b(
            "secondary artifact base-directory: ../x",
            "secondary-up",
            format!("{SPEC}artifacts:\n  files: [a]\n  secondary-artifacts:\n    two:\n      files: ['**/*']\n      base-directory: ../x\n").as_bytes(),
        )
        .code(1)
        .err("`base-directory` must stay inside the build's source directory: `../x` leaves the directory through `..`"),
        b("report base-directory: ../out", "reports-up", format!("{SPEC}reports:\n  r:\n    files: ['*.xml']\n    base-directory: ../out\n").as_bytes())
            .code(1)
            .err("`base-directory` must stay inside the build's source directory: `../out` leaves the directory through `..`"),
        b("cache path under ../..", "cache-up", format!("{SPEC}cache:\n  paths: ['../../.m2/**/*']\n").as_bytes())
            .code(1)
            .err("`paths` entries must stay inside the build's source directory: `../../.m2/**/*` leaves the directory through `..`"),
        b("absolute cache path (CodeBuild's own Maven example)", "cache-abs", format!("{SPEC}cache:\n  paths: ['/root/.m2/**/*']\n").as_bytes())
            .code(0)
            .out("buildspec version 0.2"),
        b("20,000 nested flow lists", "deep", format!("version: 0.2\nphases:\n  build:\n    commands: {}\n", deep_flow(20_000)).as_bytes())
            .code(1)
            .err(TOO_DEEP)
            .err("[deep/buildspec.yml:4:"),
        b("200 nested block mappings", "deep-block", format!("version: 0.2\n{}", deep_block(200)).as_bytes())
            .code(1)
            .err(TOO_DEEP),
        b("alias bomb", "bomb", format!("{SPEC}{}", laughs(0)).as_bytes())
            .code(1)
            .err(LAUGHS)
            .err("[bomb/buildspec.yml:9:"),
        b("ELF binary", "binary", &elf())
            .code(1)
            .err("`binary/buildspec.yml` is not UTF-8 text at byte offset 7 (line 1): it holds a NUL byte"),
        b("NUL inside a command", "nul-command", b"version: 0.2\nphases:\n  build:\n    commands: [\"\x00\"]\n")
            .code(1)
            .err("`nul-command/buildspec.yml` is not UTF-8 text at byte offset 46 (line 4): it holds a NUL byte")
            .err("[nul-command/buildspec.yml:4:17]"),
        b("Latin-1 text", "latin1", b"version: 0.2\nphases:\n  build:\n    commands: ['echo caf\xe9']\n")
            .code(1)
            .err("`latin1/buildspec.yml` is not UTF-8 text at byte offset 54 (line 4)"),
        b("UTF-16 text", "utf16", &utf16(SPEC))
            .code(1)
            .err("`utf16/buildspec.yml` is not UTF-8 text at byte offset 0 (line 1)"),
        Case::new("file of 11 MiB (sparse)", dir, &["--data-dir", &data, "build", "big", "--plan"])
            .code(1)
            .err("`big/buildspec.yml` is 11534336 bytes, over Meridian's limit of 10485760 bytes"),
        Case::new("--buildspec /dev/zero", dir, &["--data-dir", &data, "build", "ok", "--buildspec", "/dev/zero", "--plan"])
            .code(1)
            .err("`/dev/zero` holds more than 10485760 bytes, Meridian's limit for a definition file"),
        b("empty buildspec", "empty", b"")
            .code(1)
            .err("a buildspec is a mapping, but this is nothing (null)")
            .err("help: start the file with `version: 0.2` and a `phases:` mapping"),
        b("white space only", "ws", b"\n   \n")
            .code(1)
            .err("a buildspec is a mapping, but this is nothing (null)"),
        b("a list", "list", b"- a\n- b\n")
            .code(1)
            .err("a buildspec is a mapping, but this is a list"),
        b("no version", "no-version", b"phases:\n  build:\n    commands: [ls]\n")
            .code(1)
            .err("the buildspec has no `version`")
            .err("help: add `version: 0.2` as the first line"),
        b("version 9.9", "version", b"version: 9.9\nphases:\n  build:\n    commands: [ls]\n")
            .code(1)
            .err("buildspec version `9.9` is not supported"),
        b("phases as a string", "phases-string", b"version: 0.2\nphases: build\n")
            .code(1)
            .err("`phases` is a mapping, but this is a scalar"),
        b("misspelt phase", "phase-typo", b"version: 0.2\nphases:\n  biuld:\n    commands: [ls]\n")
            .code(1)
            .err("`biuld` is not a build phase")
            .err("did you mean `build`?"),
        b("unknown on-failure", "on-failure", b"version: 0.2\nphases:\n  build:\n    on-failure: EXPLODE\n    commands: [ls]\n")
            .code(1)
            .err("`EXPLODE` is not a valid `on-failure`")
            .err("help: the values are ABORT and CONTINUE"),
        b("unknown tag", "tag", b"version: 0.2\nphases:\n  build:\n    commands: [!Evil ls]\n")
            .code(1)
            .err("unknown tag `!Evil`")
            .err("[tag/buildspec.yml:4:16]"),
        b("duplicate phases (CodeBuild keeps the later)", "dup", format!("{SPEC}phases:\n  build:\n    commands: [pwd]\n").as_bytes())
            .code(0)
            .err("the key `phases` appears twice in this mapping")
            .err("CodeBuild uses the later value, and so does Meridian")
            .out("$ pwd"),
        b(
            "2 MB single-line command list with one error",
            "long-line",
            format!("version: 0.2\nphases:\n  build:\n    commands: ['{}', oops: ]\n", "x".repeat(2 * MIB)).as_bytes(),
        )
        .code(1)
        .err("a command is a string, but this is a mapping")
        .max_stderr(4000),
        Case::new("no buildspec in the directory", dir, &["--data-dir", &data, "build", "nofile", "--plan"])
            .code(2)
            .err("error: cannot read the buildspec `nofile/buildspec.yml`: No such file or directory"),
        Case::new("buildspec.yml is a directory", dir, &["--data-dir", &data, "build", "spec-dir", "--plan"])
            .code(2)
            .err("error: cannot read the buildspec `spec-dir/buildspec.yml`: Is a directory"),
        Case::new("buildspec.yml is a link to /etc/passwd", dir, &["--data-dir", &data, "build", "link-out", "--plan"])
            .codes_any()
            .err("buildspec.yml")
            .err("outside")
            .lacks("root:x:0:0"),
    ];
    sparse(&dir.join("big"), "buildspec.yml", 11 * MIB as u64);
    std::fs::create_dir_all(dir.join("nofile")).unwrap();
    std::fs::create_dir_all(dir.join("spec-dir/buildspec.yml")).unwrap();
    std::fs::create_dir_all(dir.join("link-out")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("link-out/buildspec.yml")).unwrap();

    // real builds (each with its own data directory): arguments CodeBuild would refuse
    let real = |name: &str, tag: &str, extra: &[&str]| {
        let data = dir.join(format!("data-{tag}"));
        let mut args = vec!["--data-dir", path_str(&data), "build", "ok"];
        args.extend_from_slice(extra);
        Case::new(name, dir, &args)
    };
    cases.extend([
        real("--timeout 0", "timeout-0", &["--timeout", "0"])
            .code(2)
            .err("a build timeout of 0 minutes is not allowed: CodeBuild allows 5 to 2160 minutes (36 hours)")
            .lacks("SUCCEEDED"),
        real("--timeout 2161", "timeout-2161", &["--timeout", "2161"])
            .code(2)
            .err("a build timeout of 2161 minutes is not allowed: CodeBuild allows 5 to 2160 minutes (36 hours)")
            .lacks("SUCCEEDED"),
        real("--env with a space in the name", "env-space", &["--env", "HAS SPACE=v"])
            .code(2)
            .err("`HAS SPACE`")
            .err("is not a valid environment variable name")
            .lacks("SUCCEEDED"),
        real("--env without a name", "env-empty", &["--env", "=v"])
            .code(2)
            .err("`=v` is not NAME=VALUE"),
    ]);
    let escaped = dir.join("escaped");
    cases.push(
        real(
            "--project ../../escaped (the build cache is kept per project)",
            "project",
            &["--project", "../../escaped"],
        )
        .code(2)
        .err("`../../escaped`")
        .err("project name")
        .check(move || {
            if escaped.exists() {
                Err(format!(
                    "the build wrote `{}`, outside the data directory",
                    escaped.display()
                ))
            } else {
                Ok(())
            }
        }),
    );
    cases
}

// ---------------------------------------------------------------------------------------------
// Stacks: `meridian stack deploy` to a local region

fn stack_cases(dir: &Path, zips: &Zips) -> Vec<Case> {
    std::fs::create_dir_all(dir).unwrap();
    zips.write(dir);
    let counter = AtomicUsize::new(0);
    let deploy = |name: &str, template: &str, extra: &[&str]| {
        let data = dir.join(format!("data-{}", counter.fetch_add(1, Ordering::SeqCst)));
        let mut args = vec![
            "--data-dir",
            path_str(&data),
            "stack",
            "deploy",
            "--region",
            "us-east-1",
            "--stack-name",
            "app",
            "--template",
            template,
        ];
        args.extend_from_slice(extra);
        Case::new(name, dir, &args)
    };
    let d = |name: &str, file: &str, bytes: &[u8]| deploy(name, &put(dir, file, bytes), &[]);
    let param = |name: &str, props: &str| {
        format!("  {name}:\n    Type: AWS::SSM::Parameter\n    Properties: {{Type: String, Value: {props}}}\n")
    };
    let limit = "over Meridian's limit of 4194304 bytes (4 MiB) for one value";
    let sam_zip = |zip: &str| {
        format!("{SAM}  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      Runtime: python3.12\n      Handler: index.handler\n      CodeUri: {zip}\n")
    };
    let iam = ["--capabilities", "CAPABILITY_IAM"];
    let join_bomb = format!(
        "Parameters:\n  X: {{Type: String, Default: {}}}\nResources:\n  P:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Type: String\n      Value: !Join ['', [{}]]\n",
        "x".repeat(4000),
        vec![format!("!Join ['', [{}]]", vec!["!Ref X"; 30].join(",")); 40].join(",")
    );
    let mut cases = vec![
        d("control: one parameter", "ok.yaml", format!("Resources:\n{}", param("P", "a")).as_bytes())
            .code(0)
            .out("app (us-east-1) CREATE_COMPLETE"),
        d("a plain sentence", "text.yaml", b"hello world\n")
            .code(1)
            .err("error: text.yaml:1: a template is a mapping with a `Resources` section (help: start the file with `Resources:`)"),
        d("empty template", "empty.yaml", b"")
            .code(1)
            .err("error: empty.yaml:1: a template is a mapping with a `Resources` section"),
        d(
            "circular DependsOn",
            "depends-cycle.yaml",
            b"Resources:\n  A:\n    Type: AWS::SSM::Parameter\n    DependsOn: B\n    Properties: {Type: String, Value: a}\n  B:\n    Type: AWS::SSM::Parameter\n    DependsOn: A\n    Properties: {Type: String, Value: b}\n",
        )
        .code(1)
        .err("error: depends-cycle.yaml:2: resource `A`: circular dependency between resources: A -> B -> A")
        .err("(help: break the cycle: remove one Ref/GetAtt/DependsOn, or move the value into a parameter)"),
        d("Ref and GetAtt in a circle", "ref-cycle.yaml", format!("Resources:\n{}{}", param("A", "!GetAtt B.Value"), param("B", "!Ref A")).as_bytes())
            .code(1)
            .err("circular dependency between resources: A -> B -> A"),
        d(
            "DependsOn itself",
            "self.yaml",
            b"Resources:\n  A:\n    Type: AWS::SSM::Parameter\n    DependsOn: A\n    Properties: {Type: String, Value: a}\n",
        )
        .code(1)
        .err("error: self.yaml:2: resource `A`: the resource refers to itself"),
        d(
            "DependsOn a missing resource",
            "depends-missing.yaml",
            b"Resources:\n  A:\n    Type: AWS::SSM::Parameter\n    DependsOn: Nope\n    Properties: {Type: String, Value: a}\n",
        )
        .code(1)
        .err("resource `A`: DependsOn names `Nope`, which is not a resource (help: name a logical id from `Resources`)"),
        d("ImportValue of a missing export", "import.yaml", format!("Resources:\n{}", param("A", "!ImportValue no-such-export")).as_bytes())
            .code(1)
            .err("resource `A`: no stack in region us-east-1 exports `no-such-export`")
            .err("rolled back (ROLLBACK_COMPLETE)"),
        d(
            "condition cycle",
            "condition-cycle.yaml",
            format!("Conditions:\n  A: !Condition B\n  B: !Condition A\nResources:\n{}    Condition: A\n", param("P", "a")).as_bytes(),
        )
        .code(1)
        .err("error: condition-cycle.yaml:1: condition `A` refers to itself through A -> B"),
        d("condition negating itself", "condition-self.yaml", format!("Conditions:\n  A: !Not [!Condition A]\nResources:\n{}", param("P", "a")).as_bytes())
            .code(1)
            .err("condition `A` refers to itself through A"),
        d("unknown resource type", "type.yaml", b"Resources:\n  P:\n    Type: AWS::Evil::Thing\n")
            .code(1)
            .err("error: type.yaml:2: resource `P` has type AWS::Evil::Thing, which local regions do not deploy"),
        d("Type as a number", "type-number.yaml", b"Resources:\n  P:\n    Type: 42\n")
            .code(1)
            .err("resource `P`: the resource has no `Type`"),
        d("no Resources", "no-resources.yaml", b"Parameters: {}\n")
            .code(1)
            .err("error: no-resources.yaml:1: the template has no `Resources` section"),
        d("Fn::Join nested to 4.8 MB", "join.yaml", join_bomb.as_bytes())
            .code(1)
            .err("resource `P`: the value of property `Value` would be 4800000 bytes (made by Fn::Join)")
            .err(limit),
        d("70 nested Fn::Base64", "base64.json", nested_base64(70, false).as_bytes())
            .code(1)
            .err("error: base64.json:1: resource `Inst`: the value of property `UserData` would be")
            .err("(made by Fn::Base64)")
            .err(limit)
            .err("look for Fn::Base64 nested in itself"),
        d("GetAtt of a missing resource", "getatt.yaml", format!("Resources:\n{}", param("P", "!GetAtt Nope.Value")).as_bytes())
            .code(1)
            .err("resource `P`: Fn::GetAtt names `Nope`, which is not a resource of this template"),
        d("Ref of nothing", "ref.yaml", format!("Resources:\n{}", param("P", "!Ref Nope")).as_bytes())
            .code(1)
            .err("resource `P`: Ref `Nope` names no parameter, resource or pseudo parameter"),
        d("unknown intrinsic function", "intrinsic.yaml", format!("Resources:\n{}", param("P", "{\"Fn::Evil\": x}")).as_bytes())
            .code(1)
            .err("error: intrinsic.yaml:2: resource `P`: unknown intrinsic function `Fn::Evil`"),
        d(
            "600 resources (CloudFormation allows 500)",
            "resources600.yaml",
            format!("Resources:\n{}", (0..600).map(|i| param(&format!("P{i}"), "x")).collect::<String>()).as_bytes(),
        )
        .code(1)
        .err("error: resources600.yaml:1: Template format error: Number of resources, 600, is greater than maximum allowed, 500")
        .err("(help: split the template into nested stacks (AWS::CloudFormation::Stack) or several stacks"),
        d("U+202E in a logical id", "rlo.yaml", format!("Resources:\n{}", param("\"P\u{202e}Q\"", "a")).as_bytes())
            .code(1)
            .err("logical id `P\\u{202e}Q` must be alphanumeric (A-Za-z0-9)"),
        d("ELF binary", "elf.yaml", &elf())
            .code(1)
            .err("error: failed to read the template `elf.yaml`: not UTF-8 text at byte offset 7 (line 1): it holds a NUL byte"),
        deploy("file of 11 MiB (sparse)", &sparse(dir, "big.yaml", 11 * MIB as u64), &[])
            .code(1)
            .err("error: failed to read the template `big.yaml`: the file is 11534336 bytes, over Meridian's limit of 10485760 bytes"),
        deploy("/dev/zero", "/dev/zero", &[])
            .code(1)
            .err("error: failed to read the template `/dev/zero`: the file holds more than 10485760 bytes, Meridian's limit"),
        d("Latin-1 text", "latin1.yaml", b"Transform: AWS::Serverless-2016-10-31\nResources:\n  F\xe9:\n    Type: AWS::SSM::Parameter\n")
            .code(1)
            .err("error: failed to read the template `latin1.yaml`: not UTF-8 text at byte offset 52 (line 3)"),
        d("20,000 nested mappings", "deep.yaml", format!("Resources:\n  Q:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Value: {}\n", deep_map(20_000)).as_bytes())
            .code(1)
            .err("error: the template `deep.yaml` is not valid YAML or JSON")
            .err(TOO_DEEP)
            .err("[deep.yaml:5:"),
        d("alias bomb", "bomb.yaml", format!("Metadata:\n{}Resources:\n{}", laughs(2), param("P", "a")).as_bytes())
            .code(1)
            .err("error: the template `bomb.yaml` is not valid YAML or JSON")
            .err(LAUGHS),
        deploy("SAM CodeUri: a zip bomb", &put(dir, "sam-bomb.yaml", sam_zip("bomb.zip")), &iam)
            .code(1)
            .err("resource Fn (AWS::Lambda::Function) failed: Unzipped size must be smaller than 262144000 bytes; rolled back (ROLLBACK_COMPLETE)"),
        deploy("SAM CodeUri: a zip with `../../evil.py`", &put(dir, "sam-slip.yaml", sam_zip("slip.zip")), &iam)
            .code(1)
            .err("failed to read the code package: entry `../../evil.py` points outside the package; rolled back (ROLLBACK_COMPLETE)"),
        deploy("SAM CodeUri: a zip of 50,001 entries", &put(dir, "sam-many.yaml", sam_zip("many.zip")), &iam)
            .code(1)
            .err("The package has 50001 entries, more than the 50000 Meridian unpacks; rolled back (ROLLBACK_COMPLETE)"),
        deploy("stack name with U+202E", &put(dir, "ok2.yaml", format!("Resources:\n{}", param("P", "a"))), &[])
            .code(2)
            .err("a\\u{202e}b")
            .err("stack name"),
    ];
    // the stack name of the last case
    let last = cases.last_mut().unwrap();
    let at = last.args.iter().position(|a| a == "app").unwrap();
    last.args[at] = "a\u{202e}b".into();

    // --region and --stack-name become directories: they must not lead out of the data directory
    let escape = |name: &str, tag: &str, flag: &str, value: &str, leaked: PathBuf| {
        let data = dir.join(tag).join("data");
        let args = [
            "--data-dir",
            path_str(&data),
            "stack",
            "deploy",
            "--region",
            if flag == "--region" { value } else { "us-east-1" },
            "--stack-name",
            if flag == "--stack-name" { value } else { "app" },
            "--template",
            "ok.yaml",
        ];
        Case::new(name, dir, &args).code(2).check(move || {
            if leaked.exists() {
                Err(format!("`{}` was made, outside the data directory", leaked.display()))
            } else {
                Ok(())
            }
        })
    };
    cases.push(
        escape(
            "--region ../../etc",
            "region-up",
            "--region",
            "../../etc",
            dir.join("region-up/etc"),
        )
        .err("`../../etc` is not an AWS region name"),
    );
    cases.push(
        escape(
            "--stack-name ../../../escape",
            "name-up",
            "--stack-name",
            "../../../escape",
            dir.join("name-up/escape"),
        )
        .err("`../../../escape`")
        .err("stack name"),
    );
    cases
}

// ---------------------------------------------------------------------------------------------
// Code packages through the CLI: `meridian lambda create-function`

fn lambda_cases(dir: &Path, zips: &Zips) -> Vec<Case> {
    std::fs::create_dir_all(dir).unwrap();
    zips.write(dir);
    let counter = AtomicUsize::new(0);
    let create = |name: &str, extra: &[&str]| {
        let data = dir.join(format!("data-{}", counter.fetch_add(1, Ordering::SeqCst)));
        let mut args = vec![
            "--data-dir",
            path_str(&data),
            "lambda",
            "create-function",
            "--runtime",
            "python3.12",
            "--handler",
            "index.handler",
        ];
        args.extend_from_slice(extra);
        Case::new(name, dir, &args)
    };
    let upload = |name: &str, file: &str| {
        create(
            name,
            &["--region", "us-east-1", "--function-name", "f", "--zip-file", file],
        )
    };
    vec![
        upload("zip bomb", "bomb.zip")
            .code(2)
            .err("error: Unzipped size must be smaller than 262144000 bytes"),
        upload("zip bomb whose headers claim 1,000 bytes", "lying-bomb.zip")
            .code(2)
            .err("error: Unzipped size must be smaller than 262144000 bytes"),
        upload("zip entry `../../evil.py`", "slip.zip")
            .code(2)
            .err("error: failed to read the code package: entry `../../evil.py` points outside the package"),
        upload("zip of 50,001 entries", "many.zip")
            .code(2)
            .err("error: The package has 50001 entries, more than the 50000 Meridian unpacks"),
        upload("text named .zip", "not-a-zip.zip")
            .code(2)
            .err("error: failed to read the code package: not a zip archive"),
        upload("a missing zip", "missing.zip")
            .code(2)
            .err("--zip-file missing.zip: No such file or directory (os error 2)")
            .lacks("(os error 2): No such file or directory (os error 2)"),
        upload("/dev/zero as the zip", "/dev/zero").code(2).err("/dev/zero"),
        create(
            "function name ../../x",
            &[
                "--region",
                "us-east-1",
                "--function-name",
                "../../x",
                "--zip-file",
                "slip.zip",
            ],
        )
        .code(2)
        .err("error: function name `../../x` must be 1 to 64 letters, digits, hyphens or underscores"),
        create(
            "region ../../etc",
            &[
                "--region",
                "../../etc",
                "--function-name",
                "f",
                "--zip-file",
                "slip.zip",
            ],
        )
        .code(2)
        .err("error: `../../etc` is not an AWS region name"),
    ]
}

// ---------------------------------------------------------------------------------------------
// The data directory

fn data_dir_cases(dir: &Path) -> Vec<Case> {
    std::fs::create_dir_all(dir).unwrap();
    let mut cases = Vec::new();
    let data = |tag: &str| {
        let d = dir.join(tag);
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let with = |data: &Path, args: &[&str]| {
        let mut all = vec!["--data-dir", path_str(data)];
        all.extend_from_slice(args);
        all.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let case = |name: &str, data: &Path, args: &[&str]| {
        let args = with(data, args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Case::new(name, dir, &args)
    };
    let damaged = |name: &str, data: &Path, args: &[&str], why: &str| {
        let db = data.join("journal.db");
        case(name, data, args)
            .code(2)
            .err(format!("the journal `{}` is damaged: {why}", db.display()))
            .err("Meridian left it untouched; to start a fresh journal")
            .err(format!(
                "move it aside, keeping the old file: `mv {} {}.corrupt-",
                db.display(),
                db.display()
            ))
    };

    let zero = data("zero");
    std::fs::write(zero.join("journal.db"), b"").unwrap();
    for (what, args) in [
        ("executions list", vec!["executions", "list"]),
        ("run", vec!["run", "pipeline.yaml"]),
        ("releases", vec!["releases", "app"]),
        ("stop", vec!["stop", "e-1"]),
    ] {
        cases.push(damaged(
            &format!("zero-byte journal.db: {what}"),
            &zero,
            &args,
            "it is empty (0 bytes) and has no write-ahead log",
        ));
    }
    put(dir, "pipeline.yaml", NATIVE);

    // a real journal, cut in half
    let truncated = data("truncated");
    let made = Command::new(BIN)
        .arg("--data-dir")
        .arg(&truncated)
        .args(["executions", "list"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let db = truncated.join("journal.db");
    let len = std::fs::metadata(&db).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    cases.push(
        damaged(
            "truncated journal.db",
            &truncated,
            &["executions", "list"],
            "it is truncated: its header says ",
        )
        .err(format!("but the file has {} bytes", len / 2)),
    );

    let short = data("short");
    std::fs::write(short.join("journal.db"), b"SQLite format 3\0abc").unwrap();
    cases.push(damaged(
        "journal.db shorter than SQLite's header",
        &short,
        &["executions", "list"],
        "it is truncated: 19 bytes, shorter than SQLite's 100-byte header",
    ));
    let noise = data("garbage");
    std::fs::write(noise.join("journal.db"), garbage(5000)).unwrap();
    cases.push(damaged(
        "garbage in journal.db",
        &noise,
        &["executions", "list"],
        "it is 5000 bytes that do not start with SQLite's header (`SQLite format 3`): it is not a SQLite database",
    ));
    let json = data("json");
    std::fs::write(json.join("journal.db"), b"{\"executions\": []}").unwrap();
    cases.push(damaged(
        "JSON in journal.db",
        &json,
        &["executions", "list"],
        "it is 18 bytes that do not start with SQLite's header",
    ));
    let is_dir = data("journal-dir");
    std::fs::create_dir_all(is_dir.join("journal.db")).unwrap();
    cases.push(damaged(
        "journal.db is a directory",
        &is_dir,
        &["executions", "list"],
        "it is not a regular file",
    ));
    let to_zero = data("journal-zero");
    std::os::unix::fs::symlink("/dev/zero", to_zero.join("journal.db")).unwrap();
    cases.push(damaged(
        "journal.db is a link to /dev/zero",
        &to_zero,
        &["executions", "list"],
        "it is not a regular file",
    ));

    // reset-journal moves it aside, keeps it, and the next command starts fresh
    let reset = data("reset");
    std::fs::write(reset.join("journal.db"), garbage(300)).unwrap();
    let reset2 = reset.clone();
    cases.push(
        case("reset-journal on a damaged journal", &reset, &["reset-journal"])
            .code(0)
            .err(format!(
                "moved the journal aside to {}",
                reset.join("journal.db.corrupt-").display()
            ))
            .check(move || {
                let kept = std::fs::read_dir(&reset2)
                    .map_err(|e| e.to_string())?
                    .flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with("journal.db.corrupt-"));
                if !kept {
                    return Err("the damaged journal was not kept".into());
                }
                let next = Command::new(BIN)
                    .arg("--data-dir")
                    .arg(&reset2)
                    .args(["executions", "list"])
                    .output()
                    .map_err(|e| e.to_string())?;
                if next.status.success() {
                    Ok(())
                } else {
                    Err(format!(
                        "the next command failed: {}",
                        String::from_utf8_lossy(&next.stderr)
                    ))
                }
            }),
    );

    // the other stores of the data directory
    for (file, what, args) in [
        ("local-stacks.sqlite", "stack list", vec!["stack", "list"]),
        (
            "local-lambda.sqlite",
            "lambda list",
            vec!["lambda", "list", "--region", "us-east-1"],
        ),
        ("delivery.sqlite", "deployments list", vec!["deployments", "list"]),
    ] {
        let d = data(&format!("garbage-{file}"));
        std::fs::write(d.join(file), garbage(3000)).unwrap();
        cases.push(
            case(&format!("garbage in {file}: {what}"), &d, &args)
                .code(2)
                .err(format!("`{}` is damaged", d.join(file).display()))
                .err("mv "),
        );
    }

    // the data directory is a file
    let file = dir.join("not-a-dir");
    std::fs::write(&file, b"a file\n").unwrap();
    for (what, args) in [
        ("executions list", vec!["executions", "list"]),
        ("stack list", vec!["stack", "list"]),
        ("secrets list", vec!["secrets", "list", "--region", "us-east-1"]),
        ("lambda list", vec!["lambda", "list", "--region", "us-east-1"]),
    ] {
        cases.push(
            case(&format!("--data-dir is a file: {what}"), &file, &args)
                .code(2)
                .err(format!("`{}` is not a directory", file.display()))
                .err("--data-dir")
                .lacks("os error"),
        );
    }

    // a read-only data directory
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        eprintln!("note: running as root, which ignores file modes: the read-only data directory case is skipped");
    } else {
        use std::os::unix::fs::PermissionsExt;
        let ro = data("read-only");
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        let ro2 = ro.clone();
        cases.push(
            case(
                "read-only data directory without a journal",
                &ro,
                &["executions", "list"],
            )
            .code(2)
            .err(format!(
                "the data directory `{}` is read-only (it has no journal yet and one cannot be created",
                ro.display()
            ))
            .check(move || {
                let _ = std::fs::set_permissions(&ro2, std::fs::Permissions::from_mode(0o755));
                Ok(())
            }),
        );
    }

    // the secrets store
    let secrets = data("secrets");
    let put_secret = |name: &str, secret: &str, region: &str| {
        case(name, &secrets, &["secrets", "put", "--region", region, secret, "value"])
    };
    let bad = "is not a valid name: use letters, digits and _.-/@ (1 to 512 characters)";
    cases.push(
        put_secret("secret named with U+202E", "a\u{202e}b", "us-east-1")
            .code(2)
            .err(format!("`a\\u{{202e}}b` {bad}")),
    );
    cases.push(
        put_secret("secret named with ESC", "a\u{1b}[31mb", "us-east-1")
            .code(2)
            .err(format!("`a\\u{{1b}}[31mb` {bad}")),
    );
    cases.push(
        put_secret("secret with an empty name", "", "us-east-1")
            .code(2)
            .err(format!("`` {bad}")),
    );
    cases.push(
        put_secret("secret name of 3,000 characters", &"x".repeat(3000), "us-east-1")
            .code(2)
            .err(bad),
    );
    let outside = dir.join("x");
    cases.push(
        put_secret("secret named ../../x (a valid AWS name)", "../../x", "us-east-1")
            .code(0)
            .err("stored secret `../../x` in us-east-1")
            .check(move || {
                if outside.exists() {
                    Err(format!("`{}` was made, outside the data directory", outside.display()))
                } else {
                    Ok(())
                }
            }),
    );
    let region_out = dir.join("etc");
    cases.push(
        put_secret("secret in region ../../etc", "n", "../../etc")
            .code(2)
            .err("`../../etc` is not an AWS region name")
            .check(move || {
                if region_out.exists() {
                    Err(format!(
                        "`{}` was made, outside the data directory",
                        region_out.display()
                    ))
                } else {
                    Ok(())
                }
            }),
    );
    let secrets2 = secrets.clone();
    cases.push(
        case(
            "secret value with a NUL byte, from stdin",
            &secrets,
            &["secrets", "put", "--region", "eu-west-1", "nul-value"],
        )
        .stdin(b"a\0b")
        .code(0)
        .err("stored secret `nul-value` in eu-west-1")
        .check(move || {
            let got = Command::new(BIN)
                .arg("--data-dir")
                .arg(&secrets2)
                .args(["secrets", "get", "--region", "eu-west-1", "nul-value"])
                .output()
                .map_err(|e| e.to_string())?;
            if got.stdout == b"a\0b\n" {
                Ok(())
            } else {
                Err(format!(
                    "`secrets get` printed {:?}",
                    String::from_utf8_lossy(&got.stdout)
                ))
            }
        }),
    );
    cases
}

// ---------------------------------------------------------------------------------------------
// The HTTP APIs of `meridian serve`

struct Served {
    child: Child,
    port: u16,
}

impl Served {
    fn start(data: &Path) -> Served {
        let mut child = Command::new(BIN)
            .arg("--data-dir")
            .arg(data)
            .args(["serve", "--port", "0"])
            .env_remove("AWS_REGION")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no endpoint in `{line}`"));
        Served { child, port }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Http {
    name: String,
    request: Vec<u8>,
    status: u16,
    /// The `x-amzn-ErrorType` header.
    error_type: Option<&'static str>,
    body: Vec<String>,
    check: Option<Check>,
}

fn http(name: &str, request: Vec<u8>, status: u16, error_type: Option<&'static str>, body: &[&str]) -> Http {
    Http {
        name: name.to_string(),
        request,
        status,
        error_type,
        body: body.iter().map(|s| s.to_string()).collect(),
        check: None,
    }
}

fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut r = r.into_bytes();
    r.extend_from_slice(body);
    r
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Sends `request` and reads the answer to its end: (status, head in lower case, body, time).
fn exchange(port: u16, request: &[u8]) -> Result<(u16, String, String, Duration), String> {
    let started = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    // a server may answer and close before a huge request is all sent
    let _ = s.write_all(request);
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if got.is_empty() => {
                return Err(format!("no answer after {:.1} s: {e}", started.elapsed().as_secs_f64()))
            }
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {:?}", &text[..text.len().min(200)]))?;
    Ok((status, head.to_lowercase(), body.to_string(), started.elapsed()))
}

fn http_cases(zips: &Zips, data: &Path) -> Vec<Http> {
    let invoke = "/2015-03-31/functions/nope/invocations";
    let create = |name: &str, code: &str| {
        format!(
            "{{\"FunctionName\": \"{name}\", \"Runtime\": \"python3.12\", \"Handler\": \"index.handler\", \"Code\": {{\"ZipFile\": \"{code}\"}}}}"
        )
        .into_bytes()
    };
    let post = |path: &str, body: &[u8]| request("POST", path, &[], body);
    let ipv = Some("InvalidParameterValueException");
    let too_large = Some("RequestTooLargeException");
    let bad_request = Some("InvalidRequestContentException");
    let unknown = Some("UnknownOperationException");
    let bad_zip = Some("InvalidZipFileException");
    let code_dir = data.join("regions/us-east-1/lambda/code");
    let mut bomb = http(
        "CreateFunction: zip bomb",
        post("/2015-03-31/functions", &create("bomb", &base64(&zips.bomb))),
        400,
        ipv,
        &["Unzipped size must be smaller than 262144000 bytes"],
    );
    bomb.check = Some(Box::new(move || {
        let left: Vec<String> = std::fs::read_dir(&code_dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("the refused package left {left:?} in {}", code_dir.display()))
        }
    }));
    vec![
        http(
            "X-Amz-Client-Context of 3,584 bytes",
            request("POST", invoke, &[("X-Amz-Client-Context", &"A".repeat(3584))], b"{}"),
            400,
            ipv,
            &["Client context must be at most 3583 bytes of base64-encoded data; this one is 3584 bytes"],
        ),
        http(
            "X-Amz-Client-Context of 3,583 bytes passes its check",
            request("POST", invoke, &[("X-Amz-Client-Context", &"A".repeat(3583))], b"{}"),
            404,
            Some("ResourceNotFoundException"),
            &["Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope"],
        ),
        http(
            "X-Amz-Client-Context of 64 KiB",
            request("POST", invoke, &[("X-Amz-Client-Context", &"A".repeat(64 * 1024))], b"{}"),
            400,
            ipv,
            &["this one is 65536 bytes"],
        ),
        http("invalid JSON payload", post(invoke, b"{not json"), 400, bad_request, &["Could not parse request body into json: key must be a string at line 1 column 2"]),
        http(
            "payload of 6 MiB + 1 byte",
            post(invoke, &[b"\"".as_slice(), &vec![b'x'; 6 * MIB - 1], b"\""].concat()),
            413,
            too_large,
            &["Request payload of 6291457 bytes exceeds the maximum allowed payload size (6291456 bytes)"],
        ),
        http(
            "asynchronous payload over 256 KiB",
            post("/2014-11-13/functions/nope/invoke-async", &[b"\"".as_slice(), &vec![b'x'; 256 * 1024], b"\""].concat()),
            413,
            too_large,
            &["exceeds the maximum allowed payload size (262144 bytes)"],
        ),
        // Unsigned requests that are not Lambda's shape go to S3 (path-style), which refuses them.
        http("unknown path", post("/evil/path", b"{}"), 501, None, &["<Code>NotImplemented</Code>"]),
        http(
            "unknown path signed for Lambda",
            request(
                "POST",
                "/evil/path",
                &[("Authorization", "AWS4-HMAC-SHA256 Credential=AK/20261130/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=00")],
                b"{}",
            ),
            404,
            unknown,
            &["no Lambda API operation at POST /evil/path"],
        ),
        http(
            "path with `..`",
            request("GET", "/../../etc/passwd", &[], b""),
            400,
            None,
            &["<Code>InvalidBucketName</Code>"],
        ),
        http(
            "function name `%2E%2E%2F%2E%2E`",
            post("/2015-03-31/functions/%2E%2E%2F%2E%2E/invocations", b"{}"),
            400,
            ipv,
            &["function name `../..` must be 1 to 64 letters, digits, hyphens or underscores"],
        ),
        http(
            "function name with U+202E",
            post("/2015-03-31/functions/a%E2%80%AEb/invocations", b"{}"),
            400,
            ipv,
            &["must be 1 to 64 letters, digits, hyphens or underscores"],
        ),
        http("missing function", post(invoke, b"{}"), 404, Some("ResourceNotFoundException"), &["Function not found"]),
        http(
            "invocation type `Evil`",
            request("POST", invoke, &[("X-Amz-Invocation-Type", "Evil")], b"{}"),
            400,
            ipv,
            &["X-Amz-Invocation-Type `Evil` is not one of RequestResponse, Event, DryRun"],
        ),
        http(
            "region `..` in the credential scope",
            request(
                "GET",
                "/2015-03-31/functions",
                &[("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20240101/../lambda/aws4_request, Signature=x")],
                b"",
            ),
            400,
            ipv,
            &["`..` is not an AWS region name"],
        ),
        http(
            "header of 1 MiB",
            request("GET", "/2015-03-31/functions", &[("X-Big", &"a".repeat(MIB))], b""),
            431,
            None,
            &[],
        ),
        http(
            "500 headers",
            request(
                "GET",
                "/2015-03-31/functions",
                &(0..500).map(|_| ("X-H", "v")).collect::<Vec<_>>(),
                b"",
            ),
            431,
            None,
            &[],
        ),
        http("request line `HELLO`", b"HELLO\r\n\r\n".to_vec(), 400, None, &[]),
        http("HTTP/9.9", b"GET / HTTP/9.9\r\nHost: x\r\n\r\n".to_vec(), 400, None, &[]),
        http("binary bytes instead of a request", b"\x00\x01\x02\xff\xfe\r\n\r\n".to_vec(), 400, None, &[]),
        http(
            "negative Content-Length",
            format!("POST {invoke} HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\nConnection: close\r\n\r\n").into_bytes(),
            400,
            None,
            &[],
        ),
        http(
            "two different Content-Length headers",
            format!("POST {invoke} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\nConnection: close\r\n\r\n{{}}").into_bytes(),
            400,
            None,
            &[],
        ),
        http("CreateFunction: invalid JSON", post("/2015-03-31/functions", b"{\"FunctionName\": "), 400, bad_request, &["Could not parse request body into json: EOF while parsing a value"]),
        http("CreateFunction: ZipFile that is not base64", post("/2015-03-31/functions", &create("f", "!!!not-base64")), 400, ipv, &["ZipFile is not base64"]),
        http("CreateFunction: text instead of a zip", post("/2015-03-31/functions", &create("f", &base64(b"hello"))), 400, bad_zip, &["failed to read the code package: not a zip archive"]),
        bomb,
        http(
            "CreateFunction: zip bomb whose headers claim 1,000 bytes",
            post("/2015-03-31/functions", &create("lying", &base64(&zips.lying_bomb))),
            400,
            ipv,
            &["Unzipped size must be smaller than 262144000 bytes"],
        ),
        http(
            "CreateFunction: zip entry `../../evil.py`",
            post("/2015-03-31/functions", &create("slip", &base64(&zips.slip))),
            400,
            bad_zip,
            &["failed to read the code package: entry `../../evil.py` points outside the package"],
        ),
        http(
            "CreateFunction: zip of 50,001 entries",
            post("/2015-03-31/functions", &create("many", &base64(&zips.many))),
            400,
            ipv,
            &["The package has 50001 entries, more than the 50000 Meridian unpacks"],
        ),
        http(
            "CreateFunction: name ../../x",
            post("/2015-03-31/functions", &create("../../x", &base64(&zips.slip))),
            400,
            ipv,
            &["function name `../../x` must be 1 to 64 letters, digits, hyphens or underscores"],
        ),
        http(
            "CreateFunction: Timeout of 11 digits",
            post(
                "/2015-03-31/functions",
                br#"{"FunctionName": "t", "Runtime": "python3.12", "Handler": "a.b", "Timeout": 99999999999, "Code": {"ZipFile": ""}}"#,
            ),
            400,
            ipv,
            &["Timeout must be a whole number"],
        ),
        http(
            "CreateFunction: runtime cobol85",
            post(
                "/2015-03-31/functions",
                br#"{"FunctionName": "t", "Runtime": "cobol85", "Handler": "a.b", "Code": {"ZipFile": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}}"#,
            ),
            400,
            ipv,
            &["runtime `cobol85` is not supported by local regions"],
        ),
        http(
            "CodeDeploy: unknown operation",
            request("POST", "/", &[("X-Amz-Target", "CodeDeploy_20141006.DeleteEverything")], b"{}"),
            400,
            None,
            &["\"__type\":\"UnknownOperationException\"", "not DeleteEverything"],
        ),
        http(
            "CodeDeploy: invalid JSON",
            request("POST", "/", &[("X-Amz-Target", "CodeDeploy_20141006.PutLifecycleEventHookExecutionStatus")], b"{x}"),
            400,
            None,
            &["\"__type\":\"SerializationException\""],
        ),
    ]
}

fn judge_http(port: u16, case: &Http) -> Option<String> {
    let mut problems = Vec::new();
    match exchange(port, &case.request) {
        Err(e) => problems.push(e),
        Ok((status, head, body, took)) => {
            if status != case.status {
                problems.push(format!("status {status}, expected {}", case.status));
            }
            if let Some(t) = case.error_type {
                let want = format!("x-amzn-errortype: {}", t.to_lowercase());
                if !head.contains(&want) {
                    problems.push(format!("no `x-amzn-ErrorType: {t}` header"));
                }
            }
            for b in &case.body {
                if !body.contains(b.as_str()) {
                    problems.push(format!("body lacks {b:?}"));
                }
            }
            if took > SLOW {
                problems.push(format!("took {:.1} s", took.as_secs_f64()));
            }
            if !problems.is_empty() {
                problems.push(format!("answer: {head:?} {:?}", &body[..body.len().min(300)]));
            }
        }
    }
    if let Some(check) = &case.check {
        if let Err(e) = check() {
            problems.push(e);
        }
    }
    (!problems.is_empty()).then(|| format!("✗ HTTP {}\n    {}", case.name, problems.join("\n    ")))
}

/// Connects, sends `prefix`, and waits for the server to close the connection (or answer).
fn closes_within(port: u16, prefix: &[u8], limit: Duration) -> Result<(), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(limit + Duration::from_secs(3))).unwrap();
    s.write_all(prefix).map_err(|e| format!("send: {e}"))?;
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    let closed = match s.read(&mut buf) {
        Ok(0) => "closed".to_string(),
        Ok(n) => format!("answered {:?}", String::from_utf8_lossy(&buf[..n.min(40)])),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
            return Err(format!(
                "the connection is still open after {:.0} s",
                started.elapsed().as_secs_f64()
            ))
        }
        Err(e) => format!("reset ({e})"),
    };
    if started.elapsed() > limit {
        Err(format!("{closed} only after {:.1} s", started.elapsed().as_secs_f64()))
    } else {
        Ok(())
    }
}

/// Connections that send nothing, half a request head, or half a body.
fn idle_cases() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("a client that connects and sends nothing", Vec::new()),
        (
            "a client that sends half a request head",
            b"GET /2015-03-31/functions HTTP/1.1\r\nHost: x\r\n".to_vec(),
        ),
        (
            "a client that sends 2 of the 100 body bytes it announced",
            b"POST /2015-03-31/functions/nope/invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{}"
                .to_vec(),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------

#[test]
fn hostile_input_ends_in_clear_errors() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let zips = Zips::make();
    let mut cases = Vec::new();
    cases.extend(validate_cases(&root.join("validate")));
    cases.extend(template_cases(&root.join("template")));
    cases.extend(build_cases(&root.join("build")));
    cases.extend(stack_cases(&root.join("stack"), &zips));
    cases.extend(lambda_cases(&root.join("lambda"), &zips));
    cases.extend(data_dir_cases(&root.join("data")));
    // the slow ones first, so that they overlap with the rest
    cases.sort_by_key(|c| {
        !(c.name.contains("named pipe")
            || c.name.contains("/dev/zero")
            || c.name.contains("190,000")
            || c.name.contains("20,000 unknown"))
    });

    let failures = Mutex::new(Vec::new());
    let served_data = root.join("served");
    let server = Served::start(&served_data);
    let port = server.port;
    let http = http_cases(&zips, &served_data);
    let idle = idle_cases();
    let total = cases.len() + http.len() + idle.len() + 1;
    std::thread::scope(|s| {
        for (name, prefix) in &idle {
            let failures = &failures;
            s.spawn(move || {
                if let Err(e) = closes_within(port, prefix, IDLE_LIMIT) {
                    failures.lock().unwrap().push(format!("✗ HTTP {name}\n    {e}"));
                }
            });
        }
        s.spawn(|| {
            for case in &http {
                if let Some(f) = judge_http(port, case) {
                    failures.lock().unwrap().push(f);
                }
            }
        });
        run_all(&cases, &failures);
    });
    let peak = status_kib(server.child.id(), "VmHWM:").unwrap_or(0);
    if peak > MAX_RSS_KIB {
        failures.lock().unwrap().push(format!(
            "✗ HTTP server memory\n    peak {} MiB, over 256 MiB",
            peak / 1024
        ));
    }
    drop(server);

    let failures = failures.into_inner().unwrap();
    let (known, unexpected): (Vec<&String>, Vec<&String>) =
        failures.iter().partition(|f| KNOWN_DEFECTS.contains(&failed_case(f)));
    let fixed: Vec<&&str> = KNOWN_DEFECTS
        .iter()
        .filter(|k| !failures.iter().any(|f| failed_case(f) == **k))
        .collect();
    eprintln!(
        "{total} hostile cases: {} pass, {} known defects, {} unexpected failures, in {:.1} s",
        total - failures.len(),
        known.len(),
        unexpected.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        unexpected.is_empty(),
        "{} of {total} hostile cases failed:\n\n{}\n",
        unexpected.len(),
        unexpected.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n\n")
    );
    assert!(
        fixed.is_empty(),
        "these known defects now pass: take them off KNOWN_DEFECTS: {fixed:?}"
    );
}

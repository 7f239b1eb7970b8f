//! A killed `meridian build` takes its build with it: the shell and what it started.

use meridian_buildspec::{parse_str, run_build, BuildContext};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "MERIDIAN_TEST_PARENT_DEATH_DIR";

/// In the child process: a build whose shell records its pid and a background job's, then
/// sleeps. Never returns on its own.
fn child_build(dir: &Path) {
    let spec = format!(
        r#"
version: 0.2
phases:
  build:
    commands:
      - sleep 300 & echo $! > {dir}/bg.pid; echo $$ > {dir}/shell.pid; sleep 300
"#,
        dir = dir.display()
    );
    let parsed = parse_str("buildspec.yml", &spec);
    let src = dir.join("source");
    std::fs::create_dir_all(&src).unwrap();
    let ctx = BuildContext::new("proj", &src, dir.join("work"));
    let _ = run_build(parsed.spec.as_ref().unwrap(), &ctx);
}

fn read_pid(p: &Path) -> Option<i32> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// Alive and not a zombie (a container's init may be slow to reap).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(')').next().and_then(|r| r.split_whitespace().next());
            !matches!(state, Some("Z" | "X") | None)
        }
        Err(_) => false,
    }
}

#[test]
fn a_sigkilled_parent_takes_the_shell_and_its_children_with_it() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child_build(Path::new(&dir));
        return;
    }
    let dir: PathBuf = std::env::temp_dir().join(format!("meridian-parent-death-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_sigkilled_parent_takes_the_shell_and_its_children_with_it",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let (shell, bg) = loop {
        if let (Some(s), Some(b)) = (read_pid(&dir.join("shell.pid")), read_pid(&dir.join("bg.pid"))) {
            break (s, b);
        }
        assert!(Instant::now() < deadline, "the build never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(alive(shell) && alive(bg));
    // SIGKILL: the build runner gets no chance to clean up
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while (alive(shell) || alive(bg)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<i32> = [shell, bg].into_iter().filter(|p| alive(*p)).collect();
    for p in &left {
        // SAFETY: kill(2) has no memory-safety preconditions; cleans up after a failure.
        unsafe {
            libc::kill(*p, libc::SIGKILL);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(left.is_empty(), "still running after the parent was killed: {left:?}");
}

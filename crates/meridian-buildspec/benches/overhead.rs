//! Per-command overhead of a build against running the same commands with `bash -c`.
//!
//! `cargo bench -p meridian-buildspec --bench overhead` prints the time per command in a build
//! (the cost of N+1 commands minus the cost of 1, over N: the build's fixed costs, such as copying
//! the source and starting the shell, cancel out) next to the time per `bash -c COMMAND` process.
//! Target: at most 5 ms more per command than `bash -c`.

use meridian_buildspec::{parse_str, run_build, BuildContext};
use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

const N: usize = 400;
const ROUNDS: usize = 5;

fn build_time(root: &std::path::Path, commands: usize, command: &str, round: usize) -> Duration {
    let list: String = (0..commands).map(|_| format!("      - {command}\n")).collect();
    let spec = format!("version: 0.2\nphases:\n  build:\n    commands:\n{list}");
    let parsed = parse_str("bench.yml", &spec);
    let spec = parsed.spec.expect("valid");
    let id = format!("work-{commands}-{round}-{}", command.len());
    let ctx = BuildContext::new("bench", root.join("src"), root.join(id));
    let t = Instant::now();
    let outcome = run_build(&spec, &ctx).expect("build runs");
    let d = t.elapsed();
    assert!(outcome.succeeded());
    d
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let root = std::env::temp_dir().join(format!("meridian-bench-overhead-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(root.join("src")).unwrap();
    fs::write(root.join("src/file.txt"), "x").unwrap();
    for command in ["true", "echo hello"] {
        let mut per_build = Vec::new();
        let mut per_bash = Vec::new();
        for round in 0..ROUNDS {
            let one = build_time(&root, 1, command, round);
            let many = build_time(&root, N + 1, command, round);
            per_build.push(many.saturating_sub(one) / N as u32);
            let t = Instant::now();
            for _ in 0..N {
                let st = Command::new("bash").arg("-c").arg(command).output().expect("bash");
                assert!(st.status.success());
            }
            per_bash.push(t.elapsed() / N as u32);
        }
        let b = median(per_build);
        let c = median(per_bash);
        println!(
            "command `{command}`: {:.3} ms per command in a build, {:.3} ms per `bash -c`; overhead {:+.3} ms (target < +5 ms)",
            b.as_secs_f64() * 1e3,
            c.as_secs_f64() * 1e3,
            (b.as_secs_f64() - c.as_secs_f64()) * 1e3
        );
    }
    let _ = fs::remove_dir_all(&root);
}

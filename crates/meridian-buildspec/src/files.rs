//! Files: CodeBuild's path globs, walking a tree, and copying one.
//!
//! Globs are matched segment by segment on `/`: `*` and `?` stay inside one segment, `**` matches
//! any number of segments (none included), so `**/*` is every file and `dir/**/*` every file under
//! `dir`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Does `path` (relative, `/`-separated) match `pattern`?
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let pat: Vec<&str> = split(pattern);
    let segs: Vec<&str> = split(path);
    match_segments(&pat, &segs)
}

fn split(s: &str) -> Vec<&str> {
    s.trim_start_matches("./")
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect()
}

fn match_segments(pat: &[&str], segs: &[&str]) -> bool {
    match pat.first() {
        None => segs.is_empty(),
        Some(&"**") => (0..=segs.len()).any(|skip| match_segments(&pat[1..], &segs[skip..])),
        Some(p) => {
            !segs.is_empty() && match_one(p.as_bytes(), segs[0].as_bytes()) && match_segments(&pat[1..], &segs[1..])
        }
    }
}

/// `*` and `?` within one path segment.
fn match_one(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Whether a pattern has glob characters.
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

/// One entry found by [`walk`]: its path relative to the root, `/`-separated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub rel: String,
    pub path: PathBuf,
    /// A symbolic link kept as a link (only when links are not followed).
    pub link: Option<PathBuf>,
}

/// Every file under `root`, sorted. With `keep_links`, symbolic links are reported as links
/// (not followed); otherwise they are followed, with loops cut.
pub fn walk(root: &Path, keep_links: bool) -> io::Result<Vec<Found>> {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    if let Ok(c) = root.canonicalize() {
        seen.push(c);
    }
    walk_into(root, "", keep_links, &mut seen, &mut out)?;
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

fn walk_into(
    dir: &Path,
    prefix: &str,
    keep_links: bool,
    seen: &mut Vec<PathBuf>,
    out: &mut Vec<Found>,
) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let path = e.path();
        let ft = e.file_type()?;
        if ft.is_symlink() {
            if keep_links {
                out.push(Found {
                    rel,
                    link: Some(fs::read_link(&path)?),
                    path,
                });
                continue;
            }
            match fs::metadata(&path) {
                Ok(m) if m.is_dir() => {
                    let c = path.canonicalize()?;
                    if seen.contains(&c) {
                        continue;
                    }
                    seen.push(c);
                    walk_into(&path, &rel, keep_links, seen, out)?;
                    seen.pop();
                }
                Ok(_) => out.push(Found { rel, path, link: None }),
                Err(_) => {} // a dangling link: nothing to copy
            }
        } else if ft.is_dir() {
            walk_into(&path, &rel, keep_links, seen, out)?;
        } else {
            out.push(Found { rel, path, link: None });
        }
    }
    Ok(())
}

/// Copies a directory tree (files, permissions, and symbolic links as links).
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    copy_tree_except(from, to, &[])
}

/// Copies a directory tree, leaving out the directories in `skip` (canonical paths), such as the
/// copy's own destination when it lies inside the source.
pub fn copy_tree_except(from: &Path, to: &Path, skip: &[PathBuf]) -> io::Result<()> {
    fs::create_dir_all(to)?;
    let mut skip = skip.to_vec();
    if let Ok(c) = to.canonicalize() {
        skip.push(c);
    }
    copy_into(from, to, &skip)
}

fn copy_into(from: &Path, to: &Path, skip: &[PathBuf]) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for e in fs::read_dir(from)? {
        let e = e?;
        let src = e.path();
        let dst = to.join(e.file_name());
        let ft = e.file_type()?;
        if ft.is_symlink() {
            let target = fs::read_link(&src)?;
            let _ = fs::remove_file(&dst);
            symlink(&target, &dst)?;
        } else if ft.is_dir() {
            if skip.iter().any(|s| src.canonicalize().is_ok_and(|c| &c == s)) {
                continue;
            }
            copy_into(&src, &dst, skip)?;
        } else {
            fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
pub fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
pub fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    fs::copy(target, link).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_codebuild() {
        assert!(glob_match("**/*", "a.txt"));
        assert!(glob_match("**/*", "a/b/c.txt"));
        assert!(glob_match("target/*.jar", "target/app-1.0.jar"));
        assert!(!glob_match("target/*.jar", "target/sub/app.jar"));
        assert!(glob_match("target/**/*", "target/sub/app.jar"));
        assert!(!glob_match("target/**/*", "other/app.jar"));
        assert!(glob_match("*/my-file3.txt", "my-subdirectory/my-file3.txt"));
        assert!(glob_match("my-build*", "my-build2"));
        assert!(glob_match("./a/?.txt", "a/b.txt"));
        assert!(glob_match("**/*.xml", "reports/x/TEST-a.xml"));
        assert!(glob_match("**/*.xml", "TEST-a.xml"));
        assert!(!glob_match("*.xml", "x/TEST-a.xml"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
    }
}

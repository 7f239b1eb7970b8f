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

/// A symbolic link (or a directory reached through one) that leads outside the directory a
/// build's files must come from.
#[derive(Debug, thiserror::Error)]
#[error("`{rel}` is a symbolic link to `{}`, outside the build's source directory: Meridian copies no file from outside it", target.display())]
pub struct LinkEscapes {
    /// The link's path, relative to the walked directory.
    pub rel: String,
    /// Where it points, as written in the link.
    pub target: PathBuf,
}

/// What a walk does with a link leading outside: fail (artifacts, reports) or leave it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnEscape {
    Fail,
    Skip,
}

/// Every file under `root`, sorted. With `keep_links`, symbolic links are reported as links
/// (not followed); otherwise they are followed, with loops cut. Links are only followed (or
/// kept) when they stay inside `root`.
pub fn walk(root: &Path, keep_links: bool) -> io::Result<Vec<Found>> {
    let mut skipped = Vec::new();
    walk_within(root, keep_links, root, OnEscape::Fail, &mut skipped)
}

/// [`walk`], with links allowed anywhere inside `within` (the build's source directory) rather
/// than only inside `root`. A link leading outside `within` (or `root` itself being outside) is
/// an error ([`LinkEscapes`] inside the `io::Error`) with [`OnEscape::Fail`], and is left out
/// and reported in `skipped` with [`OnEscape::Skip`].
pub fn walk_within(
    root: &Path,
    keep_links: bool,
    within: &Path,
    on_escape: OnEscape,
    skipped: &mut Vec<LinkEscapes>,
) -> io::Result<Vec<Found>> {
    let within = within.canonicalize()?;
    let mut out = Vec::new();
    let mut seen = Vec::new();
    let c = root.canonicalize()?;
    if !c.starts_with(&within) {
        return Err(io::Error::other(LinkEscapes {
            rel: root.display().to_string(),
            target: c,
        }));
    }
    seen.push(c);
    let mut w = Walk {
        keep_links,
        within,
        on_escape,
        skipped,
        seen,
        out: &mut out,
    };
    w.walk_into(root, "")?;
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

struct Walk<'a> {
    keep_links: bool,
    within: PathBuf,
    on_escape: OnEscape,
    skipped: &'a mut Vec<LinkEscapes>,
    seen: Vec<PathBuf>,
    out: &'a mut Vec<Found>,
}

impl Walk<'_> {
    /// Where a link leads, when it stays inside; `None` (after failing or recording it) when not.
    fn check_link(&mut self, path: &Path, rel: &str) -> io::Result<Option<PathBuf>> {
        let target = fs::read_link(path)?;
        // a dangling link is checked by where its text leads when it is kept; followed, it
        // leads nowhere and nothing is copied
        let resolved = match path.canonicalize() {
            Ok(c) => Some(c),
            Err(_) if !self.keep_links => return Ok(None),
            Err(_) => {
                let parent = path.parent().and_then(|p| p.canonicalize().ok()).unwrap_or_default();
                let mut p = parent;
                let mut ok = true;
                for c in target.components() {
                    match c {
                        std::path::Component::RootDir => p = PathBuf::from("/"),
                        std::path::Component::ParentDir => ok &= p.pop(),
                        std::path::Component::Normal(n) => p.push(n),
                        _ => {}
                    }
                }
                ok.then_some(p)
            }
        };
        match resolved {
            Some(r) if r.starts_with(&self.within) => Ok(Some(r)),
            _ => {
                let e = LinkEscapes {
                    rel: rel.to_string(),
                    target,
                };
                match self.on_escape {
                    OnEscape::Fail => Err(io::Error::other(e)),
                    OnEscape::Skip => {
                        self.skipped.push(e);
                        Ok(None)
                    }
                }
            }
        }
    }

    fn walk_into(&mut self, dir: &Path, prefix: &str) -> io::Result<()> {
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
                let Some(resolved) = self.check_link(&path, &rel)? else {
                    continue;
                };
                if self.keep_links {
                    self.out.push(Found {
                        rel,
                        link: Some(fs::read_link(&path)?),
                        path,
                    });
                    continue;
                }
                match fs::metadata(&path) {
                    Ok(m) if m.is_dir() => {
                        if self.seen.contains(&resolved) {
                            continue;
                        }
                        self.seen.push(resolved);
                        self.walk_into(&path, &rel)?;
                        self.seen.pop();
                    }
                    Ok(_) => self.out.push(Found { rel, path, link: None }),
                    Err(_) => {} // a dangling link: nothing to copy
                }
            } else if ft.is_dir() {
                self.walk_into(&path, &rel)?;
            } else {
                self.out.push(Found { rel, path, link: None });
            }
        }
        Ok(())
    }
}

/// The [`LinkEscapes`] or [`meridian_core::path::PathError`] inside an `io::Error`, as text:
/// a path the build may not read from, rather than a failure of the file system.
pub fn confinement_error(e: &io::Error) -> Option<String> {
    let inner = e.get_ref()?;
    if inner.is::<LinkEscapes>() || inner.is::<meridian_core::path::PathError>() {
        Some(inner.to_string())
    } else {
        None
    }
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

//! Picking a build's output files by `files`/`base-directory`/`exclude-paths`/`discard-paths`/
//! `enable-symlinks`, and copying them into one directory per artifact (the engine zips those).

use crate::files::{glob_match, is_glob, walk_within, Found, OnEscape};
use crate::spec::ArtifactRule;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// A file chosen by a rule: where it goes inside the artifact, and what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selected {
    /// The path inside the artifact (`/`-separated).
    pub dest: String,
    pub found: Found,
}

/// The directories a `base-directory` names: one, or every match of a glob such as `my-build*`.
/// A base directory outside `src` (`../..`, absolute, or through a link leading outside) is an
/// error ([`meridian_core::path::PathError`] inside the `io::Error`).
fn base_dirs(src: &Path, base: Option<&str>) -> io::Result<Vec<PathBuf>> {
    let Some(base) = base
        .map(|b| b.trim_end_matches('/'))
        .filter(|b| !b.is_empty() && *b != ".")
    else {
        return Ok(vec![src.to_path_buf()]);
    };
    if !is_glob(base) {
        return meridian_core::path::confine(src, base)
            .map(|p| vec![p])
            .map_err(io::Error::other);
    }
    meridian_core::path::check_relative(base).map_err(io::Error::other)?;
    let depth = base.split('/').count();
    let mut out = Vec::new();
    let mut level: Vec<(PathBuf, String)> = vec![(src.to_path_buf(), String::new())];
    for _ in 0..depth {
        let mut next = Vec::new();
        for (dir, rel) in level {
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            let mut names: Vec<_> = rd.filter_map(Result::ok).filter(|e| e.path().is_dir()).collect();
            names.sort_by_key(|e| e.file_name());
            for e in names {
                let name = e.file_name().to_string_lossy().into_owned();
                let r = if rel.is_empty() { name } else { format!("{rel}/{name}") };
                next.push((e.path(), r));
            }
        }
        level = next;
    }
    for (dir, rel) in level {
        if glob_match(base, &rel) {
            out.push(dir);
        }
    }
    Ok(out)
}

/// The files a rule picks under `src`, sorted by destination. A pattern naming a directory takes
/// everything under it. `warnings` receives paths flattened onto the same name. Nothing comes
/// from outside `src`: a base directory or a symbolic link leading outside is an error (see
/// [`crate::files::confinement_error`]).
pub fn select(
    src: &Path,
    files: &[String],
    base: Option<&str>,
    exclude: &[String],
    discard_paths: bool,
    keep_links: bool,
    warnings: &mut Vec<String>,
) -> io::Result<Vec<Selected>> {
    let mut out: Vec<Selected> = Vec::new();
    for dir in base_dirs(src, base)? {
        if !dir.is_dir() {
            continue;
        }
        let picked = |rel: &str| {
            files.iter().any(|p| {
                let p = p.trim_start_matches("./");
                glob_match(p, rel) || (!is_glob(p) && rel.starts_with(&format!("{}/", p.trim_end_matches('/'))))
            }) && !exclude.iter().any(|x| glob_match(x, rel))
        };
        let mut escaping = Vec::new();
        let found = walk_within(&dir, keep_links, src, OnEscape::Skip, &mut escaping)?;
        // a link leading outside is refused when the rule would take it (or, for a directory,
        // anything under it: `\0` is a name only wildcards match); links the rule does not
        // name are left alone
        if let Some(e) = escaping
            .into_iter()
            .find(|e| picked(&e.rel) || picked(&format!("{}/\0", e.rel)))
        {
            return Err(io::Error::other(e));
        }
        for f in found {
            if !picked(&f.rel) {
                continue;
            }
            let dest = if discard_paths {
                f.rel.rsplit('/').next().unwrap_or(&f.rel).to_string()
            } else {
                f.rel.clone()
            };
            if let Some(prev) = out.iter_mut().find(|s| s.dest == dest) {
                warnings.push(format!(
                    "`{}` and `{}` both become `{dest}`; the later one is kept",
                    prev.found.rel, f.rel
                ));
                prev.found = f;
                continue;
            }
            out.push(Selected { dest, found: f });
        }
    }
    out.sort_by(|a, b| a.dest.cmp(&b.dest));
    Ok(out)
}

/// Copies the files a rule picks from `src` into `out_dir`; returns how many.
pub fn collect(src: &Path, rule: &ArtifactRule, out_dir: &Path, warnings: &mut Vec<String>) -> io::Result<usize> {
    for f in &rule.files {
        if f.starts_with('/') {
            warnings.push(format!(
                "artifact path `{f}` is absolute; artifact files are relative to the source directory"
            ));
        }
    }
    let selected = select(
        src,
        &rule.files,
        rule.base_directory.as_deref(),
        &rule.exclude_paths,
        rule.discard_paths,
        rule.enable_symlinks,
        warnings,
    )?;
    fs::create_dir_all(out_dir)?;
    for s in &selected {
        let dest = out_dir.join(&s.dest);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        match &s.found.link {
            Some(target) => crate::files::symlink(target, &dest)?,
            None => {
                fs::copy(&s.found.path, &dest)?;
            }
        }
    }
    Ok(selected.len())
}

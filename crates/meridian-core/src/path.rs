//! Confining user-written paths to a directory, and names to one safe path component.
//!
//! Definitions name files (`TemplatePath: Src::template.yaml`, a buildspec's `base-directory`,
//! `cache.paths`), and users name things that become directories (stages, actions, projects). A
//! path written by a user must never reach outside the directory it is meant for: not through
//! `..`, not by being absolute, and not through a symbolic link inside the directory that points
//! outside it. Every place that turns a user-written path into a file goes through [`confine`]
//! (or [`check_relative`] when there is no directory yet, as in validation); every place that
//! turns a name into one path component goes through [`safe_component`].

use std::io;
use std::path::{Component, Path, PathBuf};

/// Why a user-written path was refused.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("`{path}` is an absolute path; only paths relative to the directory are allowed")]
    Absolute { path: String },
    #[error("`{path}` leaves the directory through `..`")]
    DotDot { path: String },
    #[error("`{path}` contains a NUL byte")]
    Nul { path: String },
    #[error("`{path}` leaves `{}` through the symbolic link `{}`, which points to `{}`", root.display(), link.display(), target.display())]
    SymlinkEscapes {
        path: String,
        root: PathBuf,
        link: PathBuf,
        target: PathBuf,
    },
    #[error("`{path}` goes through the symbolic link `{}`, which points to nothing (`{}`), so where it leads cannot be checked", link.display(), target.display())]
    DanglingLink {
        path: String,
        link: PathBuf,
        target: PathBuf,
    },
    #[error("cannot resolve `{}`: {source}", at.display())]
    Io {
        path: String,
        at: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl PathError {
    /// The path as the user wrote it.
    pub fn path(&self) -> &str {
        match self {
            PathError::Absolute { path }
            | PathError::DotDot { path }
            | PathError::Nul { path }
            | PathError::SymlinkEscapes { path, .. }
            | PathError::DanglingLink { path, .. }
            | PathError::Io { path, .. } => path,
        }
    }
}

/// Is `p` absolute on any platform a definition may come from (`/x`, `\x`, `C:\x`, `C:/x`)?
fn looks_absolute(p: &str) -> bool {
    let b = p.as_bytes();
    p.starts_with('/')
        || p.starts_with('\\')
        || (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':')
        || Path::new(p).is_absolute()
}

/// Checks a user-written relative path without touching the file system: it must not be
/// absolute, hold a NUL byte, or climb out through `..`. Returns the path with `.` and
/// `dir/..` pairs removed (empty for the directory itself). Both `/` and `\` separate segments.
pub fn check_relative(user_path: &str) -> Result<PathBuf, PathError> {
    let err_path = || user_path.to_string();
    if user_path.contains('\0') {
        return Err(PathError::Nul { path: err_path() });
    }
    if looks_absolute(user_path) {
        return Err(PathError::Absolute { path: err_path() });
    }
    let mut parts: Vec<&str> = Vec::new();
    for seg in user_path.split(['/', '\\']) {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(PathError::DotDot { path: err_path() });
                }
            }
            s => parts.push(s),
        }
    }
    Ok(parts.iter().collect())
}

/// The path `user_path` names inside `root`, with the symbolic links of its existing part
/// resolved; refused when it would lead outside `root` by any means (absolute, `..`, or a link
/// pointing outside, even one that later comes back). `root` must exist. The result starts with
/// `root`'s canonical path; parts that do not exist yet are appended as written (they hold no
/// `..` and no link, so creating them stays inside).
pub fn confine(root: &Path, user_path: &str) -> Result<PathBuf, PathError> {
    let rel = check_relative(user_path)?;
    let io_err = |at: &Path| {
        let at = at.to_path_buf();
        move |source| PathError::Io {
            path: user_path.to_string(),
            at,
            source,
        }
    };
    let root_c = root.canonicalize().map_err(io_err(root))?;
    let mut cur = root_c.clone();
    let mut comps = rel.components();
    while let Some(c) = comps.next() {
        let Component::Normal(name) = c else {
            // check_relative leaves only normal components
            return Err(PathError::DotDot {
                path: user_path.to_string(),
            });
        };
        let next = cur.join(name);
        match std::fs::symlink_metadata(&next) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                cur = next;
                for rest in comps.by_ref() {
                    cur.push(rest);
                }
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
                // `file/x`: nothing can exist below a file, and nothing is created through it
                cur = next;
                for rest in comps.by_ref() {
                    cur.push(rest);
                }
                break;
            }
            Err(e) => return Err(io_err(&next)(e)),
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&next).map_err(io_err(&next))?;
                let resolved = match next.canonicalize() {
                    Ok(r) => r,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        return Err(PathError::DanglingLink {
                            path: user_path.to_string(),
                            link: next,
                            target,
                        })
                    }
                    Err(e) => return Err(io_err(&next)(e)),
                };
                if !resolved.starts_with(&root_c) {
                    return Err(PathError::SymlinkEscapes {
                        path: user_path.to_string(),
                        root: root.to_path_buf(),
                        link: next,
                        target,
                    });
                }
                cur = resolved;
            }
            Ok(_) => cur = next,
        }
    }
    Ok(cur)
}

/// Is `c` safe to keep as is in a path component (visible, not a separator, not `%`)?
fn keep_char(c: char) -> bool {
    !(c.is_control()
        || matches!(c, '/' | '\\' | '%' | ':')
        // zero-width and bidirectional formatting characters make names that look like others
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}'))
}

fn push_encoded(out: &mut String, c: char) {
    let mut buf = [0u8; 4];
    for b in c.encode_utf8(&mut buf).bytes() {
        out.push_str(&format!("%{b:02X}"));
    }
}

/// The longest component kept as is; longer names are shortened with a digest (file systems
/// allow 255 bytes).
pub const MAX_COMPONENT_LEN: usize = 200;

/// A name as one path component that is safe everywhere: never empty, `.` or `..`, never
/// holding `/`, `\`, `:`, NUL or another control or invisible formatting character, never
/// starting with `-` (read as an option by tools). Unsafe characters are percent-encoded (`%`
/// itself too), so the encoding is injective: two different names never share a component.
/// Names whose encoding is longer than [`MAX_COMPONENT_LEN`] bytes keep a prefix followed by
/// `%%` and a SHA-256 digest of the whole name (`%%` appears in no other encoding).
pub fn safe_component(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    match name {
        // `%` alone is no percent-encoding of anything else
        "" => return "%".to_string(),
        "." => return "%2E".to_string(),
        ".." => return "%2E%2E".to_string(),
        _ => {}
    }
    for (i, c) in name.chars().enumerate() {
        if keep_char(c) && !(i == 0 && c == '-') {
            out.push(c);
        } else {
            push_encoded(&mut out, c);
        }
    }
    if out.len() > MAX_COMPONENT_LEN {
        let digest = crate::digest::Digest::of(name.as_bytes()).hex();
        let mut cut = MAX_COMPONENT_LEN - 2 - 64;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("%%");
        out.push_str(&digest);
    }
    out
}

/// S3's rules for a bucket name: 3 to 63 lowercase letters, digits, dots and hyphens, starting and
/// ending with a letter or digit, no `..`. A name that passes is also one path component that
/// cannot leave its directory.
pub fn is_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !name.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn tmp(tag: &str) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "meridian-core-path-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn relative_paths_are_checked_lexically() {
        assert_eq!(check_relative("a/./b/../c").unwrap(), PathBuf::from("a/c"));
        assert_eq!(check_relative(".").unwrap(), PathBuf::new());
        assert!(matches!(check_relative("../x"), Err(PathError::DotDot { .. })));
        assert!(matches!(check_relative("a/../../x"), Err(PathError::DotDot { .. })));
        assert!(matches!(check_relative("a\\..\\..\\x"), Err(PathError::DotDot { .. })));
        assert!(matches!(check_relative("/etc/passwd"), Err(PathError::Absolute { .. })));
        assert!(matches!(check_relative("C:\\x"), Err(PathError::Absolute { .. })));
        assert!(matches!(check_relative("a\0b"), Err(PathError::Nul { .. })));
        let e = check_relative("../../../../tmp/x.yaml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "`../../../../tmp/x.yaml` leaves the directory through `..`"
        );
        assert_eq!(e.path(), "../../../../tmp/x.yaml");
    }

    #[cfg(unix)]
    #[test]
    fn links_leading_outside_are_refused_and_inside_ones_followed() {
        let dir = tmp("links");
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(dir.join("outside")).unwrap();
        std::os::unix::fs::symlink(dir.join("outside"), root.join("out")).unwrap();
        std::os::unix::fs::symlink("sub", root.join("in")).unwrap();
        std::os::unix::fs::symlink("../../outside", root.join("sub/up")).unwrap();
        std::os::unix::fs::symlink("/nonexistent/meridian", root.join("dangling")).unwrap();
        let root_c = root.canonicalize().unwrap();
        assert_eq!(confine(&root, "in/x").unwrap(), root_c.join("sub/x"));
        assert_eq!(confine(&root, "new/deeper").unwrap(), root_c.join("new/deeper"));
        assert_eq!(confine(&root, "").unwrap(), root_c);
        let e = confine(&root, "out/secret").unwrap_err();
        assert!(matches!(e, PathError::SymlinkEscapes { .. }), "{e}");
        assert!(e.to_string().contains("through the symbolic link"), "{e}");
        assert!(e.to_string().contains("out/secret"), "{e}");
        assert!(matches!(
            confine(&root, "in/up/x"),
            Err(PathError::SymlinkEscapes { .. })
        ));
        assert!(matches!(
            confine(&root, "dangling/x"),
            Err(PathError::DanglingLink { .. })
        ));
        assert!(matches!(confine(&root, "../root/x"), Err(PathError::DotDot { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unsafe_names_are_encoded() {
        assert_eq!(safe_component("Build"), "Build");
        assert_eq!(safe_component("日本"), "日本");
        assert_eq!(safe_component(".."), "%2E%2E");
        assert_eq!(safe_component("."), "%2E");
        assert_eq!(safe_component(""), "%");
        assert_eq!(safe_component("a/b"), "a%2Fb");
        assert_eq!(safe_component("-rf"), "%2Drf");
        assert_eq!(safe_component("a\0b"), "a%00b");
        assert_eq!(safe_component("50%"), "50%25");
        assert_eq!(safe_component("x\u{202e}y"), "x%E2%80%AEy");
        let long = safe_component(&"é".repeat(300));
        assert!(long.len() <= MAX_COMPONENT_LEN, "{}", long.len());
        assert!(long.contains("%%"));
    }

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("..".to_string()),
            Just(".".to_string()),
            Just(String::new()),
            Just("a".to_string()),
            Just("b".to_string()),
            Just("l0".to_string()),
            Just("l1".to_string()),
            Just("l2".to_string()),
            Just("/".to_string()),
            Just("\\".to_string()),
            "[a-z.\\\\/]{1,4}",
        ]
    }

    /// Where a generated link points.
    fn link_target() -> impl Strategy<Value = u8> {
        0u8..7
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn safe_components_stay_one_component_and_are_injective(a in any::<String>(), b in any::<String>()) {
            for (name, enc) in [(&a, safe_component(&a)), (&b, safe_component(&b))] {
                prop_assert!(!enc.is_empty() && enc != "." && enc != "..", "{name:?} -> {enc:?}");
                prop_assert!(!enc.contains(['/', '\\', '\0']) && !enc.starts_with('-'), "{name:?} -> {enc:?}");
                let root = Path::new("/r");
                let joined = root.join(&enc);
                prop_assert_eq!(joined.parent(), Some(root));
                prop_assert_eq!(Path::new(&enc).components().count(), 1);
            }
            if a != b {
                prop_assert_ne!(safe_component(&a), safe_component(&b));
            }
        }

        #[cfg(unix)]
        #[test]
        fn confined_paths_never_leave_the_root(
            segs in proptest::collection::vec(segment(), 0..8),
            links in proptest::collection::vec(link_target(), 3),
        ) {
            let dir = tmp("prop");
            let root = dir.join("root");
            std::fs::create_dir_all(root.join("a/b")).unwrap();
            std::fs::create_dir_all(dir.join("outside/a")).unwrap();
            // three links, each pointing somewhere chosen by the case
            for (i, t) in links.iter().enumerate() {
                let target: PathBuf = match t {
                    0 => dir.join("outside"),
                    1 => "a".into(),
                    2 => "../outside".into(),
                    3 => "a/b".into(),
                    4 => "..".into(),
                    5 => "nonexistent".into(),
                    _ => ".".into(),
                };
                let at = if i == 2 { root.join("a/l2") } else { root.join(format!("l{i}")) };
                std::os::unix::fs::symlink(&target, &at).unwrap();
            }
            let user = segs.join("/");
            let root_c = root.canonicalize().unwrap();
            if let Ok(p) = confine(&root, &user) {
                prop_assert!(p.starts_with(&root_c), "{user:?} -> {}", p.display());
                // the deepest existing part, with every link resolved, is inside too
                let mut existing = p.clone();
                while !existing.exists() {
                    existing = existing.parent().unwrap().to_path_buf();
                }
                prop_assert!(existing.canonicalize().unwrap().starts_with(&root_c), "{user:?} -> {}", p.display());
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

//! Source actions read a local git repository: Meridian's `LocalGit` (a path in the definition),
//! and GitHub / CodeStarSourceConnection / CodeCommit sources mapped to local repositories with
//! `--repo ID=PATH` (ID is `owner/repo` or the CodeCommit repository name). The branch's commit
//! is checked out into the output artifact; output variables are those AWS sets.

use super::{ActionContext, ActionOutput, ActionProvider};
use futures::future::BoxFuture;
use meridian_pipeline::model::Action;
use std::path::{Path, PathBuf};

pub struct GitSource;

/// The local repository and branch an action reads.
pub fn locate(ctx: &ActionContext) -> Result<(PathBuf, String), String> {
    let a = &ctx.action;
    let branch = a
        .config("BranchName")
        .or(a.config("Branch"))
        .unwrap_or("main")
        .to_string();
    let id = match a.provider() {
        "LocalGit" => {
            let path = Path::new(a.config("RepositoryPath").unwrap_or("."));
            let base = ctx.env.base_dir.clone().unwrap_or_default();
            return Ok((
                if path.is_absolute() {
                    path.to_path_buf()
                } else {
                    base.join(path)
                },
                branch,
            ));
        }
        "GitHub" => format!(
            "{}/{}",
            a.config("Owner").unwrap_or_default(),
            a.config("Repo").unwrap_or_default()
        ),
        "CodeStarSourceConnection" => a.config("FullRepositoryId").unwrap_or_default().to_string(),
        _ => a.config("RepositoryName").unwrap_or_default().to_string(),
    };
    match ctx.env.repos.get(&id) {
        Some(p) => Ok((p.clone(), branch)),
        None => Err(format!(
            "source `{}` reads `{id}`, which has no local repository: pass `--repo {id}=PATH` (a local git repository)",
            a.name
        )),
    }
}

/// Checks a symbolic link committed at `rel` (its path in the repository) that points to
/// `target`: a link is kept as a link, and only when it leads to a path inside the checkout. A
/// link to an absolute path or climbing out through `..` is refused, so that nothing reading the
/// artifact later (a build, a template path) reaches a file of the machine through it.
fn check_link(rel: &Path, target: &str) -> Result<(), String> {
    if target.starts_with('/') {
        return Err(format!(
            "the repository's symbolic link `{}` points to `{target}`, an absolute path: Meridian does not follow links out of an artifact; commit the file itself, or a link to a file inside the repository",
            rel.display()
        ));
    }
    let joined = match rel.parent().map(Path::to_string_lossy).filter(|p| !p.is_empty()) {
        Some(parent) => format!("{parent}/{target}"),
        None => target.to_string(),
    };
    meridian_core::path::check_relative(&joined).map(|_| ()).map_err(|e| {
        let why = match e {
            meridian_core::path::PathError::Absolute { .. } => "an absolute path".to_string(),
            meridian_core::path::PathError::DotDot { .. } => "a path outside the repository".to_string(),
            other => other.to_string(),
        };
        format!(
            "the repository's symbolic link `{}` points to `{target}`, {why}: Meridian does not follow links out of an artifact; commit the file itself, or a link to a file inside the repository",
            rel.display()
        )
    })
}

fn checkout(repo: &gix::Repository, tree: gix::Tree<'_>, dir: &Path) -> Result<u64, String> {
    checkout_at(repo, tree, dir, Path::new(""))
}

/// Writes `tree` (at `rel` in the repository) into `dir`.
fn checkout_at(repo: &gix::Repository, tree: gix::Tree<'_>, dir: &Path, rel: &Path) -> Result<u64, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("failed to create {}: {e}", dir.display()))?;
    let mut files = 0;
    for entry in tree.iter() {
        let entry = entry.map_err(|e| format!("failed to read a git tree: {e}"))?;
        let name = entry.filename().to_string();
        if name.contains('/') || name == ".." || name == "." {
            return Err(format!("the repository has an unsafe path `{name}`"));
        }
        let path = dir.join(&name);
        let mode = entry.mode();
        let object = repo
            .find_object(entry.oid().to_owned())
            .map_err(|e| format!("failed to read `{name}`: {e}"));
        let entry_rel = rel.join(&name);
        if mode.is_tree() {
            files += checkout_at(repo, object?.into_tree(), &path, &entry_rel)?;
        } else if mode.is_link() {
            let target = String::from_utf8_lossy(&object?.data).to_string();
            check_link(&entry_rel, &target)?;
            std::os::unix::fs::symlink(target, &path).map_err(|e| format!("failed to link {}: {e}", path.display()))?;
            files += 1;
        } else if mode.is_blob() {
            std::fs::write(&path, &object?.data).map_err(|e| format!("failed to write {}: {e}", path.display()))?;
            if mode.is_executable() {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
            }
            files += 1;
        }
        // Submodule commits are not checked out, as CodePipeline's default artifact does.
    }
    Ok(files)
}

fn read(path: &Path, branch: &str, out: &Path) -> Result<(ActionOutput, u64), String> {
    let repo = gix::open(path).map_err(|e| format!("`{}` is not a git repository: {e}", path.display()))?;
    let mut reference = repo
        .find_reference(format!("refs/heads/{branch}").as_str())
        .map_err(|_| format!("the repository `{}` has no branch `{branch}`", path.display()))?;
    let commit = reference
        .peel_to_commit()
        .map_err(|e| format!("branch `{branch}` does not point to a commit: {e}"))?;
    let tree = commit
        .tree()
        .map_err(|e| format!("failed to read the commit's tree: {e}"))?;
    let files = checkout(&repo, tree, out)?;
    let mut o = ActionOutput::default();
    let v = &mut o.variables;
    v.insert("CommitId".into(), commit.id.to_string().into());
    v.insert("BranchName".into(), branch.into());
    if let Ok(msg) = commit.message() {
        let full = match msg.body() {
            Some(body) => format!("{}\n\n{}", msg.summary(), body.without_trailer()),
            None => msg.summary().to_string(),
        };
        v.insert("CommitMessage".into(), full.trim().to_string().into());
    }
    if let Ok(author) = commit.author() {
        if let Ok(t) = author.time() {
            v.insert(
                "AuthorDate".into(),
                meridian_core::clock::format_rfc3339(t.seconds).into(),
            );
        }
    }
    if let Ok(t) = commit.time() {
        v.insert(
            "CommitterDate".into(),
            meridian_core::clock::format_rfc3339(t.seconds).into(),
        );
    }
    Ok((o, files))
}

impl ActionProvider for GitSource {
    fn safe_to_repeat(&self, _: &Action) -> bool {
        // Reading a commit into a fresh directory has no effect elsewhere.
        true
    }

    fn run<'a>(&'a self, ctx: &'a ActionContext) -> BoxFuture<'a, Result<ActionOutput, String>> {
        Box::pin(async move {
            let (path, branch) = locate(ctx)?;
            let Some((name, out)) = ctx.outputs.first().cloned() else {
                return Err("a source action needs one output artifact".into());
            };
            let a = ctx.action.clone();
            let (mut o, files) = tokio::task::spawn_blocking(move || read(&path, &branch, &out))
                .await
                .map_err(|e| format!("the source reader failed: {e}"))??;
            match a.provider() {
                "CodeCommit" => {
                    o.variables.insert(
                        "RepositoryName".into(),
                        a.config("RepositoryName").unwrap_or_default().into(),
                    );
                }
                "CodeStarSourceConnection" => {
                    for k in ["FullRepositoryId", "ConnectionArn"] {
                        o.variables.insert(k.into(), a.config(k).unwrap_or_default().into());
                    }
                }
                "GitHub" => {
                    o.variables
                        .insert("RepositoryName".into(), a.config("Repo").unwrap_or_default().into());
                }
                _ => {}
            }
            ctx.log.line(&format!(
                "checked out {} ({} files) into artifact {name}",
                o.variables.get("CommitId").and_then(|v| v.as_str()).unwrap_or_default(),
                files
            ));
            Ok(o)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) {
        let out = Command::new("git")
            .current_dir(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A repository on branch `main` with `files` (path, content) and `links` (path, target).
    fn repo(root: &Path, files: &[(&str, &str)], links: &[(&str, &str)]) -> PathBuf {
        let r = root.join("repo");
        std::fs::create_dir_all(&r).unwrap();
        git(&r, &["init", "-q", "-b", "main"]);
        for (p, c) in files {
            let f = r.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, c).unwrap();
        }
        for (p, t) in links {
            let f = r.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(t, f).unwrap();
        }
        git(&r, &["add", "-A"]);
        git(&r, &["commit", "-q", "-m", "c"]);
        r
    }

    #[test]
    fn links_inside_the_checkout_are_kept_as_links() {
        let t = tempfile::tempdir().unwrap();
        let r = repo(
            t.path(),
            &[("a.txt", "alpha"), ("sub/b.txt", "beta")],
            &[("link", "a.txt"), ("sub/up", "../a.txt")],
        );
        let out = t.path().join("out");
        let (_, files) = read(&r, "main", &out).unwrap();
        assert_eq!(files, 4);
        assert_eq!(std::fs::read_link(out.join("link")).unwrap(), Path::new("a.txt"));
        assert_eq!(std::fs::read_link(out.join("sub/up")).unwrap(), Path::new("../a.txt"));
    }

    #[test]
    fn a_link_out_of_the_checkout_is_refused_and_never_followed() {
        let t = tempfile::tempdir().unwrap();
        let secret = t.path().join("secret.txt");
        std::fs::write(&secret, "TOP-SECRET").unwrap();
        for (link, target, why) in [
            ("creds", secret.to_str().unwrap(), "an absolute path"),
            ("sub/creds", "../../secret.txt", "a path outside the repository"),
        ] {
            let dir = t.path().join(link.replace('/', "_"));
            std::fs::create_dir_all(&dir).unwrap();
            let r = repo(&dir, &[("a.txt", "alpha")], &[(link, target)]);
            let out = dir.join("out");
            let e = read(&r, "main", &out).unwrap_err();
            assert_eq!(
                e,
                format!("the repository's symbolic link `{link}` points to `{target}`, {why}: Meridian does not follow links out of an artifact; commit the file itself, or a link to a file inside the repository")
            );
            // nothing of the file outside is in the artifact, neither copied nor linked
            assert!(std::fs::symlink_metadata(out.join(link)).is_err());
            let mut found = Vec::new();
            let mut stack = vec![out.clone()];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).unwrap() {
                    let p = e.unwrap().path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if std::fs::read(&p).map(|b| b == b"TOP-SECRET").unwrap_or(false) {
                        found.push(p);
                    }
                }
            }
            assert!(found.is_empty(), "{found:?}");
        }
    }
}

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

fn checkout(repo: &gix::Repository, tree: gix::Tree<'_>, dir: &Path) -> Result<u64, String> {
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
        if mode.is_tree() {
            files += checkout(repo, object?.into_tree(), &path)?;
        } else if mode.is_link() {
            let target = String::from_utf8_lossy(&object?.data).to_string();
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

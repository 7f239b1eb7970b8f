//! The V2 `Commands` action (category Compute, provider Commands): its commands run in one shell
//! in the primary input's directory, `outputVariables` are read from the shell's environment at the
//! end, and the directory becomes the output artifact.

use super::shell::{self, ShellEnd};
use super::{ActionContext, ActionOutput, ActionProvider};
use futures::future::BoxFuture;
use meridian_pipeline::model::Action;

pub struct Commands;

/// Environment every command-running action gets.
pub fn standard_env(ctx: &ActionContext) -> Vec<(String, String)> {
    let mut env = vec![
        ("AWS_REGION".to_string(), ctx.region.clone()),
        ("AWS_DEFAULT_REGION".to_string(), ctx.region.clone()),
        ("CODEPIPELINE_EXECUTION_ID".to_string(), ctx.execution_id.clone()),
        ("CODEPIPELINE_PIPELINE_NAME".to_string(), ctx.pipeline.clone()),
        ("MERIDIAN_EXECUTION_ID".to_string(), ctx.execution_id.clone()),
    ];
    if let Some((_, dir)) = ctx.inputs.first() {
        env.push(("CODEBUILD_SRC_DIR".into(), dir.display().to_string()));
    }
    for (name, dir) in ctx.inputs.iter().skip(1) {
        env.push((format!("CODEBUILD_SRC_DIR_{name}"), dir.display().to_string()));
    }
    env
}

impl ActionProvider for Commands {
    fn safe_to_repeat(&self, _: &Action) -> bool {
        // Commands can do anything (deploy, send mail): running them twice is not known to be safe.
        false
    }

    fn run<'a>(&'a self, ctx: &'a ActionContext) -> BoxFuture<'a, Result<ActionOutput, String>> {
        Box::pin(async move {
            let a = &ctx.action;
            if a.commands.is_empty() {
                return Err("the Commands action has no commands".into());
            }
            let dir = match ctx.inputs.first() {
                Some((_, d)) => d.clone(),
                None => {
                    let d = ctx.work_dir.join("src");
                    std::fs::create_dir_all(&d).map_err(|e| format!("failed to create {}: {e}", d.display()))?;
                    d
                }
            };
            let vars_file = ctx.work_dir.join("output-variables");
            let failed_file = ctx.work_dir.join("failed-command");
            let mut script = String::new();
            // The index of the running command is written before it runs, so that a command
            // that exits the shell itself (`exit 3`) is still named.
            let failed = shell::quote(&failed_file.display().to_string());
            for (i, c) in a.commands.iter().enumerate() {
                script.push_str(&format!(
                    "printf {i} > {failed}\n{c}\n__meridian_status=$?\nif [ $__meridian_status -ne 0 ]; then exit $__meridian_status; fi\n"
                ));
            }
            script.push_str(&format!("rm -f {failed}\n"));
            for v in &a.output_variables {
                script.push_str(&format!(
                    "printf '%s=%s\\0' {} \"${{{v}-}}\" >> {}\n",
                    shell::quote(v),
                    shell::quote(&vars_file.display().to_string())
                ));
            }
            let mut cancel = ctx.cancel.clone();
            match shell::run(&script, &dir, &standard_env(ctx), &ctx.log, &mut cancel).await? {
                ShellEnd::Killed => return Err("the commands were killed".into()),
                ShellEnd::Exited(0) => {}
                ShellEnd::Exited(code) => {
                    let which = std::fs::read_to_string(&failed_file)
                        .ok()
                        .and_then(|s| s.trim().parse::<usize>().ok())
                        .and_then(|i| a.commands.get(i));
                    return Err(match which {
                        Some(c) => format!("command `{c}` exited with code {code}"),
                        None => format!("the commands exited with code {code}"),
                    });
                }
            }
            let mut out = ActionOutput::default();
            let raw = std::fs::read(&vars_file).unwrap_or_default();
            for pair in raw.split(|b| *b == 0).filter(|p| !p.is_empty()) {
                let pair = String::from_utf8_lossy(pair);
                if let Some((k, v)) = pair.split_once('=') {
                    out.variables.insert(k.to_string(), v.into());
                }
            }
            for (_, odir) in &ctx.outputs {
                copy_tree(&dir, odir).map_err(|e| format!("failed to collect the output artifact: {e}"))?;
            }
            Ok(out)
        })
    }
}

/// Copies a directory tree (files, links, permissions).
pub fn copy_tree(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let ft = e.file_type()?;
        let dest = to.join(e.file_name());
        if ft.is_dir() {
            copy_tree(&e.path(), &dest)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path())?, dest)?;
        } else {
            std::fs::copy(e.path(), dest)?;
        }
    }
    Ok(())
}

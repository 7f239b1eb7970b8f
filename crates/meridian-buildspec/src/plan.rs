//! What a build would run, as text: phases, commands, failure rules, variables and artifact rules.
//! `meridian build --plan` prints it; nothing is run.

use crate::spec::{ArtifactRule, BuildSpec, OnFailure, PhaseName};
use std::fmt::Write;

/// Renders the plan of a buildspec. Secret values are never known here: only their references.
pub fn render(spec: &BuildSpec) -> String {
    let mut out = String::new();
    let shell = spec.env.shell.as_deref().unwrap_or("bash");
    let _ = writeln!(out, "buildspec version {} (shell: {shell})", spec.version.as_str());
    if !spec.env.variables.is_empty() {
        let _ = writeln!(out, "variables:");
        for (k, v) in &spec.env.variables {
            let _ = writeln!(out, "  {k}={v}");
        }
    }
    for (k, p) in &spec.env.parameter_store {
        let _ = writeln!(out, "  {k} <- parameter store `{p}` (masked in logs)");
    }
    for (k, r) in &spec.env.secrets_manager {
        let mut what = format!("secret `{}`", r.secret_id);
        if let Some(j) = &r.json_key {
            let _ = write!(what, ", JSON key `{j}`");
        }
        if let Some(s) = &r.version_stage {
            let _ = write!(what, ", stage {s}");
        }
        if let Some(i) = &r.version_id {
            let _ = write!(what, ", version {i}");
        }
        let _ = writeln!(out, "  {k} <- {what} (masked in logs)");
    }
    if !spec.env.exported_variables.is_empty() {
        let _ = writeln!(out, "exported variables: {}", spec.env.exported_variables.join(", "));
    }
    for name in PhaseName::ALL {
        let Some(phase) = spec.phase(name) else {
            let _ = writeln!(out, "phase {}: (none)", name.upper());
            continue;
        };
        let rule = match (phase.on_failure, name) {
            (OnFailure::Abort, _) => "on failure: ABORT (no later phase, no artifacts)",
            (OnFailure::Continue, _) => "on failure: CONTINUE (the next phase runs; the build fails)",
            (OnFailure::Transitions, PhaseName::Install | PhaseName::PreBuild) => {
                "on failure: the build ends (no later phase, no artifacts)"
            }
            (OnFailure::Transitions, PhaseName::Build) => "on failure: POST_BUILD still runs, then artifacts",
            (OnFailure::Transitions, PhaseName::PostBuild) => "on failure: artifacts are still uploaded",
        };
        let _ = writeln!(out, "phase {}: {rule}", name.upper());
        for (rt, v) in &phase.runtime_versions {
            let _ = writeln!(out, "  runtime {rt}: {v}");
        }
        for c in &phase.commands {
            let _ = writeln!(out, "  $ {}", c.text.trim_end());
        }
        if !phase.finally.is_empty() {
            let _ = writeln!(out, "  finally:");
            for c in &phase.finally {
                let _ = writeln!(out, "  $ {}", c.text.trim_end());
            }
        }
    }
    for r in &spec.reports {
        let _ = writeln!(out, "report group {} ({}):", r.name, r.format.as_str());
        rule_lines(&mut out, &r.files, r.base_directory.as_deref(), r.discard_paths, &[]);
    }
    match &spec.artifacts {
        None => {
            let _ = writeln!(out, "artifacts: (none)");
        }
        Some(a) => {
            let _ = writeln!(out, "artifacts{}:", name_suffix(&a.primary));
            artifact_lines(&mut out, &a.primary);
            for (id, rule) in &a.secondary {
                let _ = writeln!(out, "secondary artifact {id}{}:", name_suffix(rule));
                artifact_lines(&mut out, rule);
            }
        }
    }
    if !spec.cache_paths.is_empty() {
        let _ = writeln!(out, "cache paths (kept between builds of the project):");
        for p in &spec.cache_paths {
            let _ = writeln!(out, "  {p}");
        }
    }
    out
}

fn name_suffix(rule: &ArtifactRule) -> String {
    rule.name.as_ref().map(|n| format!(" (name {n})")).unwrap_or_default()
}

fn artifact_lines(out: &mut String, rule: &ArtifactRule) {
    rule_lines(
        out,
        &rule.files,
        rule.base_directory.as_deref(),
        rule.discard_paths,
        &rule.exclude_paths,
    );
    if rule.enable_symlinks {
        let _ = writeln!(out, "  symlinks kept as links");
    }
}

fn rule_lines(out: &mut String, files: &[String], base: Option<&str>, discard: bool, exclude: &[String]) {
    if let Some(b) = base {
        let _ = writeln!(out, "  base directory: {b}");
    }
    for f in files {
        let _ = writeln!(out, "  files: {f}");
    }
    for e in exclude {
        let _ = writeln!(out, "  exclude: {e}");
    }
    if discard {
        let _ = writeln!(out, "  paths discarded (files flattened)");
    }
}

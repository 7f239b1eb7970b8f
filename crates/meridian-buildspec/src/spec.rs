//! The buildspec model and its parser.
//!
//! The parser accepts what CodeBuild accepts (duplicate keys, where the later value wins; null
//! values; `yes`/`no` booleans; `version: 0.2` as a number; `commands` given as one string) and
//! rejects what CodeBuild rejects, each time with a diagnostic at the line.

use meridian_pipeline::diag::{Diagnostic, Severity};
use meridian_pipeline::node::{self, Node, Value};
use meridian_pipeline::source::{read_text, FileId, ReadError, SourceFile, Sources, Span, MAX_INPUT_BYTES};
use std::path::Path;

/// A buildspec's `version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecVersion {
    /// 0.1: every command runs in its own shell instance.
    V0_1,
    /// 0.2: all commands of a build run in one shell instance.
    V0_2,
}

impl SpecVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            SpecVersion::V0_1 => "0.1",
            SpecVersion::V0_2 => "0.2",
        }
    }
}

/// The four build phases, in the order CodeBuild runs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PhaseName {
    Install,
    PreBuild,
    Build,
    PostBuild,
}

impl PhaseName {
    pub const ALL: [PhaseName; 4] = [
        PhaseName::Install,
        PhaseName::PreBuild,
        PhaseName::Build,
        PhaseName::PostBuild,
    ];

    /// The name written in a buildspec (`pre_build`).
    pub fn key(self) -> &'static str {
        match self {
            PhaseName::Install => "install",
            PhaseName::PreBuild => "pre_build",
            PhaseName::Build => "build",
            PhaseName::PostBuild => "post_build",
        }
    }

    /// The name CodeBuild shows in logs and the API (`PRE_BUILD`).
    pub fn upper(self) -> &'static str {
        match self {
            PhaseName::Install => "INSTALL",
            PhaseName::PreBuild => "PRE_BUILD",
            PhaseName::Build => "BUILD",
            PhaseName::PostBuild => "POST_BUILD",
        }
    }

    pub fn from_key(key: &str) -> Option<PhaseName> {
        PhaseName::ALL.into_iter().find(|p| p.key() == key)
    }
}

/// What happens when a command of a phase fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// Not written: CodeBuild's phase transitions (a failed `install` or `pre_build` ends the
    /// build; a failed `build` still runs `post_build`; artifacts are uploaded after `build`).
    #[default]
    Transitions,
    /// `ABORT`: no later phase runs, and no artifacts are uploaded.
    Abort,
    /// `CONTINUE`: the next phase runs anyway (the build still ends as failed).
    Continue,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Phase {
    pub name: Option<PhaseName>,
    pub run_as: Option<String>,
    pub on_failure: OnFailure,
    /// `runtime-versions` (install only): runtime name and the version asked for.
    pub runtime_versions: Vec<(String, String)>,
    pub commands: Vec<Command>,
    pub finally: Vec<Command>,
}

/// One command, with where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    pub text: String,
    pub line: usize,
}

/// A `secrets-manager` reference: `secret-id:json-key:version-stage:version-id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRef {
    pub secret_id: String,
    pub json_key: Option<String>,
    pub version_stage: Option<String>,
    pub version_id: Option<String>,
}

impl SecretRef {
    /// Splits a reference. The secret id may be an ARN, which has colons of its own
    /// (`arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME`).
    pub fn parse(text: &str) -> Result<SecretRef, String> {
        let text = text.trim();
        let parts: Vec<&str> = text.split(':').collect();
        let (id, rest) = if text.starts_with("arn:") {
            if parts.len() < 7 {
                return Err(format!(
                    "`{text}` is not a Secrets Manager ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)"
                ));
            }
            (parts[..7].join(":"), &parts[7..])
        } else {
            (parts[0].to_string(), &parts[1..])
        };
        if id.is_empty() {
            return Err("the secret id (before the first `:`) is empty".into());
        }
        if rest.len() > 3 {
            return Err(format!(
                "`{text}` has {} parts; the form is secret-id:json-key:version-stage:version-id",
                rest.len() + 1
            ));
        }
        let part = |i: usize| rest.get(i).filter(|s| !s.is_empty()).map(|s| s.to_string());
        let r = SecretRef {
            secret_id: id,
            json_key: part(0),
            version_stage: part(1),
            version_id: part(2),
        };
        if r.version_stage.is_some() && r.version_id.is_some() {
            return Err("give either a version stage or a version id, not both".into());
        }
        Ok(r)
    }
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Env {
    pub shell: Option<String>,
    pub variables: Vec<(String, String)>,
    /// Variable name and the parameter's name in the parameter store.
    pub parameter_store: Vec<(String, String)>,
    pub secrets_manager: Vec<(String, SecretRef)>,
    pub exported_variables: Vec<String>,
    pub git_credential_helper: bool,
}

/// The rules that pick an artifact's files (`artifacts`, each of `secondary-artifacts`).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ArtifactRule {
    pub files: Vec<String>,
    pub name: Option<String>,
    pub discard_paths: bool,
    pub base_directory: Option<String>,
    pub exclude_paths: Vec<String>,
    pub enable_symlinks: bool,
    pub s3_prefix: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Artifacts {
    pub primary: ArtifactRule,
    /// Artifact identifier and its rules, in the order written.
    pub secondary: Vec<(String, ArtifactRule)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    JunitXml,
    CucumberJson,
    /// Another format CodeBuild knows (NUnit, TestNG, TRX, coverage): files are collected, not read.
    Other(&'static str),
}

impl ReportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportFormat::JunitXml => "JUNITXML",
            ReportFormat::CucumberJson => "CUCUMBERJSON",
            ReportFormat::Other(s) => s,
        }
    }
}

const OTHER_REPORT_FORMATS: &[&str] = &[
    "NUNITXML",
    "NUNIT3XML",
    "TESTNGXML",
    "VISUALSTUDIOTRX",
    "CLOVERXML",
    "COBERTURAXML",
    "JACOCOXML",
    "SIMPLECOV",
];

#[derive(Clone, Debug, PartialEq)]
pub struct ReportGroup {
    pub name: String,
    pub files: Vec<String>,
    pub base_directory: Option<String>,
    pub discard_paths: bool,
    pub format: ReportFormat,
}

/// A parsed buildspec.
#[derive(Clone, Debug, PartialEq)]
pub struct BuildSpec {
    pub version: SpecVersion,
    pub run_as: Option<String>,
    pub env: Env,
    /// The phases written, in run order (install, pre_build, build, post_build).
    pub phases: Vec<Phase>,
    pub reports: Vec<ReportGroup>,
    pub artifacts: Option<Artifacts>,
    pub cache_paths: Vec<String>,
    /// `batch`: the builds of a batch build, when the buildspec declares one.
    pub batch: Option<crate::batch::Batch>,
}

impl BuildSpec {
    pub fn phase(&self, name: PhaseName) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name == Some(name))
    }
}

/// The result of reading a buildspec: the spec when it has no errors, and every diagnostic.
#[derive(Debug)]
pub struct Parsed {
    pub sources: Sources,
    pub spec: Option<BuildSpec>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// Every diagnostic rendered as `meridian validate` prints them.
    pub fn render_diagnostics(&self, color: bool) -> String {
        self.diagnostics
            .iter()
            .map(|d| d.render(&self.sources, color) + "\n")
            .collect()
    }
}

/// Reads a buildspec file (at most [`MAX_INPUT_BYTES`]). A file that cannot be opened is an
/// error; one too large or not UTF-8 text is read as a buildspec with that diagnostic.
pub fn parse_file(path: &Path) -> std::io::Result<Parsed> {
    let name = path.display().to_string();
    match read_text(path, MAX_INPUT_BYTES) {
        Ok(text) => Ok(parse_named(&name, Some(path), text)),
        Err(ReadError::Io(e)) => Err(e),
        Err(e) => {
            let mut sources = Sources::default();
            let d = e.to_diagnostic(&name, Some(path), &mut sources);
            Ok(Parsed {
                sources,
                spec: None,
                diagnostics: vec![d],
            })
        }
    }
}

/// Reads a buildspec given as text (an inline buildspec); `name` is shown in diagnostics.
pub fn parse_str(name: &str, text: &str) -> Parsed {
    parse_named(name, None, text.to_string())
}

fn parse_named(name: &str, path: Option<&Path>, text: String) -> Parsed {
    let mut sources = Sources::default();
    let id = sources.add(SourceFile::new(name, path.map(Path::to_path_buf), text));
    let mut diagnostics = Vec::new();
    let spec = {
        let file = sources.get(id);
        let mut r = Reader {
            file_id: id,
            file,
            diags: &mut diagnostics,
        };
        r.read()
    };
    let spec = if diagnostics.iter().any(Diagnostic::is_error) {
        None
    } else {
        spec
    };
    diagnostics.sort_by_key(|d| (d.severity, d.span.map(|s| s.start)));
    Parsed {
        sources,
        spec,
        diagnostics,
    }
}

struct Reader<'a> {
    file_id: FileId,
    file: &'a SourceFile,
    diags: &'a mut Vec<Diagnostic>,
}

const TOP_KEYS: &[&str] = &[
    "version",
    "run-as",
    "env",
    "proxy",
    "batch",
    "phases",
    "reports",
    "artifacts",
    "cache",
];
const ENV_KEYS: &[&str] = &[
    "shell",
    "variables",
    "parameter-store",
    "secrets-manager",
    "exported-variables",
    "git-credential-helper",
];
const PHASE_KEYS: &[&str] = &["run-as", "on-failure", "runtime-versions", "commands", "finally"];
const ARTIFACT_KEYS: &[&str] = &[
    "files",
    "name",
    "discard-paths",
    "base-directory",
    "exclude-paths",
    "enable-symlinks",
    "s3-prefix",
    "secondary-artifacts",
];
const REPORT_KEYS: &[&str] = &["files", "base-directory", "discard-paths", "file-format"];

impl Reader<'_> {
    fn line(&self, span: Span) -> usize {
        self.file.line_col(span.start as usize).0
    }

    fn error(&mut self, code: &'static str, span: Span, msg: impl Into<String>, help: impl Into<String>) {
        self.diags.push(Diagnostic::error(code, msg).at(span).help(help));
    }

    /// `proxy` (`upload-artifacts`, `logs`: yes or no) only matters to builds run in an explicit
    /// proxy server, which Meridian never runs: read, checked, and ignored with a warning.
    fn proxy(&mut self, key: Span, v: &Node) {
        let Some(entries) = v.as_map() else {
            self.error(
                "wrong-type",
                v.span,
                format!("`proxy` is a mapping, but this is {}", v.kind()),
                "write `proxy:` with `upload-artifacts: yes|no` and `logs: yes|no` under it",
            );
            return;
        };
        for (k, val) in entries {
            let name = k.as_str().unwrap_or_default();
            if !["upload-artifacts", "logs"].contains(&name) {
                self.diags.push(
                    Diagnostic::warning("unknown-key", format!("unknown key `{name}` in `proxy`"))
                        .at(k.span)
                        .help("`proxy` takes `upload-artifacts` and `logs`"),
                );
                continue;
            }
            let ok = val
                .as_str()
                .is_some_and(|s| ["yes", "no", "true", "false"].contains(&s.to_ascii_lowercase().as_str()))
                || val.as_bool().is_some();
            if !ok {
                self.error(
                    "wrong-type",
                    val.span,
                    format!("`proxy.{name}` is yes or no"),
                    format!("write `{name}: yes` or `{name}: no`"),
                );
            }
        }
        self.diags.push(
            Diagnostic::warning("ignored", "`proxy` applies to builds run in an explicit proxy server; Meridian runs builds without one, and ignores it")
                .at(key)
                .help("nothing to change: CodeBuild outside a proxy server ignores it too"),
        );
    }

    fn read(&mut self) -> Option<BuildSpec> {
        let mut parse_diags = Vec::new();
        let root = match node::parse(self.file_id, self.file, &mut parse_diags) {
            Ok(root) => root,
            Err(d) => {
                self.diags.push(*d);
                return None;
            }
        };
        for mut d in parse_diags {
            if d.code == "duplicate-key" {
                // CodeBuild reads YAML with "the later key wins"; real buildspecs rely on it.
                d.severity = Severity::Warning;
                d.help = Some("CodeBuild uses the later value, and so does Meridian; remove one of the two".into());
            }
            self.diags.push(d);
        }
        let Some(entries) = root.as_map() else {
            self.error(
                "wrong-type",
                root.span,
                format!("a buildspec is a mapping, but this is {}", root.kind()),
                "start the file with `version: 0.2` and a `phases:` mapping",
            );
            return None;
        };
        let entries = last_wins(entries);
        self.unknown_keys(&entries, TOP_KEYS, "buildspec");

        let version = match find(&entries, "version") {
            None => {
                self.diags.push(
                    Diagnostic::error("missing-field", "the buildspec has no `version`")
                        .at(Span::new(self.file_id, 0, 0))
                        .help("add `version: 0.2` as the first line"),
                );
                None
            }
            Some(v) => match v.as_str().map(str::trim) {
                Some("0.2") => Some(SpecVersion::V0_2),
                Some("0.1") => {
                    self.diags.push(
                        Diagnostic::warning(
                            "version-0.1",
                            "buildspec version 0.1 runs every command in its own shell",
                        )
                        .at(v.span)
                        .label("each command starts from the source directory with a fresh environment")
                        .help("use `version: 0.2` so that `cd` and `export` carry over from one command to the next"),
                    );
                    Some(SpecVersion::V0_1)
                }
                _ => {
                    let shown = v.as_str().unwrap_or(v.kind());
                    self.error(
                        "unsupported-version",
                        v.span,
                        format!("buildspec version `{shown}` is not supported"),
                        "CodeBuild supports versions 0.2 (recommended) and 0.1",
                    );
                    None
                }
            },
        };
        let run_as = find(&entries, "run-as").and_then(|n| self.run_as(n));
        if let Some((k, v)) = entries.iter().find(|(k, _)| k.as_str() == Some("proxy")) {
            self.proxy(k.span, v);
        }
        let batch = entries
            .iter()
            .find(|(k, v)| k.as_str() == Some("batch") && !v.is_null())
            .and_then(|(k, v)| self.batch(k.span, v));
        let env = find(&entries, "env").map(|n| self.env(n)).unwrap_or_default();
        let phases = match find(&entries, "phases") {
            Some(n) => self.phases(n),
            None => {
                // CodeBuild requires `phases`; an empty build is almost always a mistake in the file.
                self.diags.push(
                    Diagnostic::error("missing-field", "the buildspec has no `phases`")
                        .at(Span::new(self.file_id, 0, 0))
                        .help("add a `phases:` mapping with at least a `build:` phase and its `commands`"),
                );
                Vec::new()
            }
        };
        let reports = find(&entries, "reports").map(|n| self.reports(n)).unwrap_or_default();
        let artifacts = entries
            .iter()
            .find(|(k, v)| k.as_str() == Some("artifacts") && !v.is_null())
            .and_then(|(k, v)| self.artifacts(k.span, v));
        let cache_paths = match find(&entries, "cache") {
            Some(n) if !n.is_null() => match self.map(n, "cache") {
                Some(m) => {
                    self.unknown_keys(&m, &["paths"], "cache");
                    find(&m, "paths")
                        .map(|p| {
                            self.relative_patterns(p, "paths");
                            self.string_list(p, "paths")
                        })
                        .unwrap_or_default()
                }
                None => Vec::new(),
            },
            _ => Vec::new(),
        };
        Some(BuildSpec {
            version: version?,
            run_as,
            env,
            phases,
            reports,
            artifacts,
            cache_paths,
            batch,
        })
    }

    /// `batch:`: one of `build-list`, `build-matrix` (expanded here) or `build-graph`.
    fn batch(&mut self, key_span: Span, n: &Node) -> Option<crate::batch::Batch> {
        use crate::batch::{valid_identifier, Batch, BatchKind, MAX_BATCH_BUILDS};
        let m = self.map(n, "batch")?;
        // settings of the batch on AWS (its role, report mode, restrictions): nothing to do here
        self.unknown_keys(
            &m,
            &[
                "fast-fail",
                "build-list",
                "build-matrix",
                "build-graph",
                "build-fanout",
                "service-role",
                "combine-artifacts",
                "timeout-in-mins",
                "restrictions",
                "report-build-status",
                "batch-report-mode",
            ],
            "batch",
        );
        if let Some((k, _)) = m.iter().find(|(k, _)| k.as_str() == Some("build-fanout")) {
            self.error(
                "not-supported",
                k.span,
                "`build-fanout` is not supported by Meridian: it splits no tests across builds",
                "use a `build-list` or a `build-matrix` to run builds side by side",
            );
            return None;
        }
        let fast_fail = find(&m, "fast-fail").is_some_and(|v| self.bool(v, "fast-fail"));
        let kinds: Vec<(BatchKind, &Node, Span)> =
            [BatchKind::BuildList, BatchKind::BuildMatrix, BatchKind::BuildGraph]
                .into_iter()
                .filter_map(|k| {
                    m.iter()
                        .find(|(key, _)| key.as_str() == Some(k.key()))
                        .map(|(key, v)| (k, *v, key.span))
                })
                .collect();
        let (kind, body, kind_span) = match kinds.as_slice() {
            [one] => *one,
            [] => {
                self.error(
                    "missing-field",
                    key_span,
                    "`batch` has no `build-list`, `build-matrix` or `build-graph`",
                    "add one of them: `build-list` runs builds side by side, `build-matrix` every combination of values, `build-graph` builds in dependency order",
                );
                return None;
            }
            [_, second, ..] => {
                self.error(
                    "invalid-batch",
                    second.2,
                    format!("`batch` has both `{}` and `{}`", kinds[0].0.key(), second.0.key()),
                    "a batch is one build-list, one build-matrix or one build-graph: keep one",
                );
                return None;
            }
        };
        let mut builds = match kind {
            BatchKind::BuildMatrix => self.build_matrix(body)?,
            _ => {
                let Some(items) = body.as_seq() else {
                    self.error(
                        "wrong-type",
                        body.span,
                        format!("`{}` is a list, but this is {}", kind.key(), body.kind()),
                        format!("write `{}:` followed by `- identifier: NAME` entries", kind.key()),
                    );
                    return None;
                };
                let mut out = Vec::new();
                for item in items {
                    if let Some(b) = self.batch_build(item, kind) {
                        out.push((b, item.span));
                    }
                }
                out
            }
        };
        if builds.is_empty() {
            self.error(
                "invalid-batch",
                kind_span,
                format!("`{}` has no builds", kind.key()),
                "give it at least one build",
            );
            return None;
        }
        if builds.len() > MAX_BATCH_BUILDS {
            self.error(
                "limit",
                kind_span,
                format!(
                    "the batch has {} builds; CodeBuild allows at most {MAX_BATCH_BUILDS}",
                    builds.len()
                ),
                "split the batch, or give the matrix fewer values",
            );
            return None;
        }
        // identifiers: valid and unique; `depend-on` names a build of the graph, without cycles
        let mut seen: Vec<&str> = Vec::new();
        let mut bad = false;
        for (b, span) in &builds {
            if !valid_identifier(&b.identifier) {
                self.error(
                    "invalid-batch",
                    *span,
                    format!(
                        "`{}` is not a batch build identifier",
                        meridian_pipeline::diag::clip(&b.identifier)
                    ),
                    "an identifier is letters, digits and underscores, such as `linux_small`",
                );
                bad = true;
            } else if seen.contains(&b.identifier.as_str()) {
                self.error(
                    "invalid-batch",
                    *span,
                    format!("two builds of the batch are named `{}`", b.identifier),
                    "identifiers are unique in a batch: rename one",
                );
                bad = true;
            }
            seen.push(&b.identifier);
        }
        for (b, span) in &builds {
            for d in &b.depend_on {
                if !seen.contains(&d.as_str()) {
                    self.error(
                        "invalid-batch",
                        *span,
                        format!(
                            "build `{}` depends on `{d}`, which is not a build of the graph",
                            b.identifier
                        ),
                        format!("name one of: {}", seen.join(", ")),
                    );
                    bad = true;
                }
            }
        }
        if !bad {
            if let Some(cycle) = graph_cycle(&builds.iter().map(|(b, _)| b).collect::<Vec<_>>()) {
                let span = builds
                    .iter()
                    .find(|(b, _)| b.identifier == cycle[0])
                    .map(|(_, s)| *s)
                    .unwrap_or(kind_span);
                self.error(
                    "invalid-batch",
                    span,
                    format!("build `{}` depends on itself through {}", cycle[0], cycle.join(" -> ")),
                    "a build graph has no cycles: remove one of these `depend-on`",
                );
                bad = true;
            }
        }
        if bad {
            return None;
        }
        Some(Batch {
            kind,
            fast_fail,
            builds: builds.drain(..).map(|(b, _)| b).collect(),
        })
    }

    /// One build of a `build-list` or `build-graph`.
    fn batch_build(&mut self, n: &Node, kind: crate::batch::BatchKind) -> Option<crate::batch::BatchBuild> {
        let m = self.map(n, "a batch build")?;
        let graph = kind == crate::batch::BatchKind::BuildGraph;
        let keys: &[&str] = if graph {
            &[
                "identifier",
                "buildspec",
                "env",
                "ignore-failure",
                "debug-session",
                "depend-on",
            ]
        } else {
            &["identifier", "buildspec", "env", "ignore-failure", "debug-session"]
        };
        self.unknown_keys(&m, keys, "a batch build");
        let Some(identifier) = find(&m, "identifier").and_then(|i| self.string(i, "identifier")) else {
            self.error(
                "missing-field",
                n.span,
                "a batch build has no `identifier`",
                "add `identifier: NAME` (letters, digits and underscores)",
            );
            return None;
        };
        let buildspec = find(&m, "buildspec").and_then(|b| {
            let p = self.path(b, "buildspec")?;
            Some(p)
        });
        let variables = find(&m, "env").map(|e| self.batch_env(e)).unwrap_or_default();
        let depend_on = if graph {
            find(&m, "depend-on")
                .map(|d| self.string_list(d, "depend-on"))
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        Some(crate::batch::BatchBuild {
            identifier,
            buildspec,
            variables,
            depend_on,
            ignore_failure: find(&m, "ignore-failure").is_some_and(|v| self.bool(v, "ignore-failure")),
        })
    }

    /// A batch build's `env`: its `variables` (the image, compute type and the like choose
    /// CodeBuild's machine; builds here run on this one).
    fn batch_env(&mut self, n: &Node) -> Vec<(String, String)> {
        let Some(m) = self.map(n, "env") else {
            return Vec::new();
        };
        self.unknown_keys(
            &m,
            &["variables", "compute-type", "image", "type", "privileged-mode", "fleet"],
            "the env of a batch build",
        );
        let vars = find(&m, "variables")
            .map(|v| self.string_map(v, "variables"))
            .unwrap_or_default();
        for (k, _) in &vars {
            if !valid_var_name(k) {
                self.check_var_name(k, n.span, "variables");
            }
        }
        vars
    }

    /// `build-matrix`: `static` settings, and every combination of the `dynamic` buildspecs and
    /// variable values, each a build (`build1`, `build2`, ... in CodeBuild's order).
    fn build_matrix(&mut self, n: &Node) -> Option<Vec<(crate::batch::BatchBuild, Span)>> {
        let m = self.map(n, "build-matrix")?;
        self.unknown_keys(&m, &["static", "dynamic"], "build-matrix");
        let mut ignore_failure = false;
        let mut base_vars = Vec::new();
        if let Some(st) = find(&m, "static") {
            if let Some(sm) = self.map(st, "static") {
                self.unknown_keys(&sm, &["ignore-failure", "env", "debug-session"], "static");
                ignore_failure = find(&sm, "ignore-failure").is_some_and(|v| self.bool(v, "ignore-failure"));
                base_vars = find(&sm, "env").map(|e| self.batch_env(e)).unwrap_or_default();
            }
        }
        let Some(dy) = find(&m, "dynamic") else {
            self.error(
                "missing-field",
                n.span,
                "`build-matrix` has no `dynamic`",
                "add `dynamic:` with `buildspec:` and/or `env: variables:` lists to combine",
            );
            return None;
        };
        let dm = self.map(dy, "dynamic")?;
        self.unknown_keys(&dm, &["buildspec", "env"], "dynamic");
        let specs: Vec<Option<String>> = match find(&dm, "buildspec") {
            Some(b) => self.string_list(b, "buildspec").into_iter().map(Some).collect(),
            None => vec![None],
        };
        // each variable: its list of values
        let mut axes: Vec<(String, Vec<String>)> = Vec::new();
        if let Some(env) = find(&dm, "env") {
            if let Some(em) = self.map(env, "env") {
                self.unknown_keys(
                    &em,
                    &["variables", "compute-type", "image", "type", "privileged-mode", "fleet"],
                    "the dynamic env",
                );
                if let Some(vars) = find(&em, "variables") {
                    if let Some(vm) = self.map(vars, "variables") {
                        for (k, v) in vm {
                            let Some(name) = k.as_str() else { continue };
                            self.check_var_name(name, k.span, "variables");
                            axes.push((name.to_string(), self.string_list(v, name)));
                        }
                    }
                }
            }
        }
        let mut combos: Vec<MatrixCell> = specs.into_iter().map(|s| (s, Vec::new())).collect();
        for (name, values) in &axes {
            let mut next = Vec::new();
            for (spec, vars) in &combos {
                for v in values {
                    let mut vars = vars.clone();
                    vars.push((name.clone(), v.clone()));
                    next.push((spec.clone(), vars));
                }
                if next.len() > crate::batch::MAX_BATCH_BUILDS {
                    break;
                }
            }
            combos = next;
        }
        Some(
            combos
                .into_iter()
                .enumerate()
                .map(|(i, (buildspec, vars))| {
                    let mut variables = base_vars.clone();
                    variables.extend(vars);
                    (
                        crate::batch::BatchBuild {
                            identifier: format!("build{}", i + 1),
                            buildspec,
                            variables,
                            depend_on: Vec::new(),
                            ignore_failure,
                        },
                        dy.span,
                    )
                })
                .collect(),
        )
    }

    fn env(&mut self, n: &Node) -> Env {
        let mut env = Env::default();
        if n.is_null() {
            return env;
        }
        let Some(m) = self.map(n, "env") else {
            return env;
        };
        self.unknown_keys(&m, ENV_KEYS, "env");
        if let Some(s) = find(&m, "shell").and_then(|s| self.string(s, "shell").map(|t| (t, s.span))) {
            match s.0.as_str() {
                "bash" | "/bin/sh" | "sh" => env.shell = Some(s.0),
                "powershell.exe" | "cmd.exe" => self.error(
                    "not-supported",
                    s.1,
                    format!("the shell `{}` is for Windows builds, which Meridian does not run", s.0),
                    "use `bash` or `/bin/sh`",
                ),
                other => self.error(
                    "invalid-value",
                    s.1,
                    format!("`{other}` is not a shell CodeBuild supports"),
                    "use `bash` or `/bin/sh` (Linux), `powershell.exe` or `cmd.exe` (Windows)",
                ),
            }
        }
        for section in ["variables", "parameter-store", "secrets-manager"] {
            if let Some(v) = find(&m, section) {
                for (k, _) in v.as_map().unwrap_or_default() {
                    if let Some(name) = k.as_str() {
                        self.check_var_name(name, k.span, section);
                    }
                }
            }
        }
        if let Some(v) = find(&m, "variables") {
            env.variables = self.string_map(v, "variables");
            for (k, _) in &env.variables {
                if k.starts_with("CODEBUILD_") {
                    let span = key_span(v, k);
                    self.error(
                        "reserved-variable",
                        span,
                        format!("`{k}`: names starting with CODEBUILD_ are reserved"),
                        "rename the variable",
                    );
                }
            }
        }
        if let Some(v) = find(&m, "parameter-store") {
            env.parameter_store = self.string_map(v, "parameter-store");
        }
        if let Some(v) = find(&m, "secrets-manager") {
            let refs = self.string_map(v, "secrets-manager");
            for (k, text) in refs {
                match SecretRef::parse(&text) {
                    Ok(r) => env.secrets_manager.push((k, r)),
                    Err(e) => {
                        let span = value_span(v, &k);
                        self.error("invalid-secret-reference", span, e, "write `secret-id:json-key:version-stage:version-id`; leave out the parts you do not need, such as `my-secret:password`");
                    }
                }
            }
        }
        if let Some(v) = find(&m, "exported-variables") {
            env.exported_variables = self.string_list(v, "exported-variables");
            for item in v.as_seq().unwrap_or(std::slice::from_ref(v)) {
                if let Some(name) = item.as_str() {
                    self.check_var_name(name, item.span, "exported-variables");
                }
            }
            for name in &env.exported_variables {
                if name.starts_with("AWS_") {
                    self.diags.push(
                        Diagnostic::error(
                            "invalid-value",
                            format!(
                                "`{name}` cannot be exported: CodeBuild does not export variables starting with AWS_"
                            ),
                        )
                        .at(v.span)
                        .help("copy the value into another variable and export that one"),
                    );
                }
            }
        }
        if let Some(v) = find(&m, "git-credential-helper") {
            env.git_credential_helper = self.bool(v, "git-credential-helper");
            if env.git_credential_helper {
                self.diags.push(
                    Diagnostic::warning(
                        "ignored",
                        "`git-credential-helper` is ignored: git uses this machine's own credentials",
                    )
                    .at(v.span)
                    .help("nothing to do locally; on AWS, CodeBuild's credential helper is used"),
                );
            }
        }
        env
    }

    fn phases(&mut self, n: &Node) -> Vec<Phase> {
        if n.is_null() {
            return Vec::new();
        }
        let Some(m) = self.map(n, "phases") else {
            return Vec::new();
        };
        let mut phases: Vec<Phase> = Vec::new();
        for (k, v) in &m {
            let Some(key) = k.as_str() else { continue };
            let Some(name) = PhaseName::from_key(key) else {
                let hint = match closest(key, &["install", "pre_build", "build", "post_build"]) {
                    Some(c) => format!("did you mean `{c}`? The phases are install, pre_build, build and post_build"),
                    None => "the phases are install, pre_build, build and post_build".to_string(),
                };
                self.error("unknown-phase", k.span, format!("`{key}` is not a build phase"), hint);
                continue;
            };
            let mut phase = Phase {
                name: Some(name),
                ..Phase::default()
            };
            if !v.is_null() {
                if let Some(pm) = self.map(v, key) {
                    self.unknown_keys(&pm, PHASE_KEYS, key);
                    phase.run_as = find(&pm, "run-as").and_then(|n| self.run_as(n));
                    if let Some(of) = find(&pm, "on-failure") {
                        phase.on_failure = self.on_failure(of);
                    }
                    if let Some(rv) = find(&pm, "runtime-versions") {
                        if name != PhaseName::Install {
                            self.error(
                                "invalid-field",
                                rv.span,
                                format!("`runtime-versions` belongs to the install phase, not `{key}`"),
                                "move it under `phases: install:`",
                            );
                        } else {
                            phase.runtime_versions = self.string_map(rv, "runtime-versions");
                        }
                    }
                    if let Some(c) = find(&pm, "commands") {
                        phase.commands = self.commands(c);
                    }
                    if let Some(c) = find(&pm, "finally") {
                        phase.finally = self.commands(c);
                    }
                }
            }
            phases.push(phase);
        }
        phases.sort_by_key(|p| p.name);
        phases
    }

    fn run_as(&mut self, n: &Node) -> Option<String> {
        let user = self.string(n, "run-as")?;
        self.diags.push(
            Diagnostic::warning(
                "ignored",
                format!("`run-as: {user}` is not applied: Meridian runs commands as the current user"),
            )
            .at(n.span)
            .help("run `meridian build` as that user if the commands need it; on AWS, CodeBuild applies `run-as`"),
        );
        Some(user)
    }

    fn on_failure(&mut self, n: &Node) -> OnFailure {
        let text = n.as_str().unwrap_or_default();
        match text {
            "ABORT" => OnFailure::Abort,
            "CONTINUE" => OnFailure::Continue,
            t if t.starts_with("RETRY") => {
                self.error(
                    "not-supported",
                    n.span,
                    format!("`on-failure: {t}` (retrying a phase) is not supported by Meridian"),
                    "use ABORT or CONTINUE",
                );
                OnFailure::Transitions
            }
            _ => {
                let shown = n.as_str().unwrap_or(n.kind());
                let help = match closest(&text.to_ascii_uppercase(), &["ABORT", "CONTINUE"]) {
                    Some(c) => format!("write `{c}` (the values are upper case: ABORT or CONTINUE)"),
                    None => "the values are ABORT and CONTINUE".to_string(),
                };
                self.error(
                    "invalid-value",
                    n.span,
                    format!("`{shown}` is not a valid `on-failure`"),
                    help,
                );
                OnFailure::Transitions
            }
        }
    }

    /// A list of commands, or one command given as a single string.
    fn commands(&mut self, n: &Node) -> Vec<Command> {
        if n.is_null() {
            return Vec::new();
        }
        if let Value::Scalar { text, .. } = &n.value {
            return vec![Command {
                text: text.clone(),
                line: self.line(n.span),
            }];
        }
        let Some(items) = n.as_seq() else {
            self.error(
                "wrong-type",
                n.span,
                format!("commands are a list of strings, but this is {}", n.kind()),
                "write each command as a list item: `- echo hello`",
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            match &item.value {
                _ if item.is_null() => {}
                Value::Scalar { text, .. } => out.push(Command {
                    text: text.clone(),
                    line: self.line(item.span),
                }),
                _ => self.error(
                    "wrong-type",
                    item.span,
                    format!("a command is a string, but this is {}", item.kind()),
                    "quote the command: a `: ` inside an unquoted command makes YAML read a mapping, e.g. `- \"echo key: value\"`",
                ),
            }
        }
        out
    }

    fn reports(&mut self, n: &Node) -> Vec<ReportGroup> {
        if n.is_null() {
            return Vec::new();
        }
        let Some(m) = self.map(n, "reports") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in &m {
            let Some(name) = k.as_str() else { continue };
            let Some(rm) = self.map(v, name) else { continue };
            self.unknown_keys(&rm, REPORT_KEYS, "a report group");
            let files = match find(&rm, "files") {
                Some(f) => self.string_list(f, "files"),
                None => {
                    self.error(
                        "missing-field",
                        k.span,
                        format!("report group `{name}` has no `files`"),
                        "add `files:` with the paths of the test result files, such as `- '**/*'`",
                    );
                    Vec::new()
                }
            };
            let format = match find(&rm, "file-format") {
                None => ReportFormat::JunitXml,
                Some(f) if f.is_null() => ReportFormat::JunitXml,
                Some(f) => {
                    let t = f.as_str().unwrap_or_default().to_ascii_uppercase();
                    match t.as_str() {
                        "JUNITXML" => ReportFormat::JunitXml,
                        "CUCUMBERJSON" => ReportFormat::CucumberJson,
                        _ => match OTHER_REPORT_FORMATS.iter().find(|o| **o == t) {
                            Some(o) => {
                                self.diags.push(
                                    Diagnostic::warning(
                                        "report-format",
                                        format!("`{o}` reports are collected but not summarised: Meridian reads JUNITXML and CUCUMBERJSON"),
                                    )
                                    .at(f.span)
                                    .help("nothing to do: the files are kept; use JUNITXML or CUCUMBERJSON for a summary in the outcome"),
                                );
                                ReportFormat::Other(o)
                            }
                            None => {
                                self.error(
                                    "invalid-value",
                                    f.span,
                                    format!("`{t}` is not a report file format"),
                                    "use JUNITXML (the default), CUCUMBERJSON, NUNITXML, NUNIT3XML, TESTNGXML, VISUALSTUDIOTRX, CLOVERXML, COBERTURAXML, JACOCOXML or SIMPLECOV",
                                );
                                ReportFormat::JunitXml
                            }
                        },
                    }
                }
            };
            out.push(ReportGroup {
                name: name.to_string(),
                files,
                base_directory: find(&rm, "base-directory").and_then(|n| self.path(n, "base-directory")),
                discard_paths: find(&rm, "discard-paths").is_some_and(|n| self.bool(n, "discard-paths")),
                format,
            });
        }
        out
    }

    fn artifacts(&mut self, key_span: Span, n: &Node) -> Option<Artifacts> {
        let m = self.map(n, "artifacts")?;
        let primary = self.artifact_rule(&m, key_span, "artifacts", true);
        let mut secondary = Vec::new();
        if let Some(sec) = find(&m, "secondary-artifacts").filter(|s| !s.is_null()) {
            if let Some(sm) = self.map(sec, "secondary-artifacts") {
                for (k, v) in &sm {
                    let Some(id) = k.as_str() else { continue };
                    if let Some(vm) = self.map(v, id) {
                        let rule = self.artifact_rule(&vm, k.span, id, false);
                        secondary.push((id.to_string(), rule));
                    }
                }
            }
        }
        Some(Artifacts { primary, secondary })
    }

    fn artifact_rule(&mut self, m: &[(&Node, &Node)], span: Span, what: &str, primary: bool) -> ArtifactRule {
        let keys: &[&str] = if primary {
            ARTIFACT_KEYS
        } else {
            &ARTIFACT_KEYS[..ARTIFACT_KEYS.len() - 1]
        };
        let mut ignored = vec!["type"];
        ignored.extend_from_slice(keys);
        self.unknown_keys(m, &ignored, what);
        let files = match find(m, "files") {
            Some(f) => {
                self.relative_patterns(f, "files");
                self.string_list(f, "files")
            }
            // only secondary artifacts (CodeBuild's own samples write them so): the primary
            // artifact collects nothing
            None if primary && find(m, "secondary-artifacts").is_some_and(|s| !s.is_null()) => Vec::new(),
            None => {
                // CodeBuild: "The artifacts/files sequence is always required".
                self.error(
                    "missing-field",
                    span,
                    format!("`{what}` has no `files`"),
                    "add `files:` with the paths or globs to collect, such as `- '**/*'`",
                );
                Vec::new()
            }
        };
        ArtifactRule {
            files,
            name: find(m, "name").and_then(|n| self.string(n, "name")),
            discard_paths: find(m, "discard-paths").is_some_and(|n| self.bool(n, "discard-paths")),
            base_directory: find(m, "base-directory").and_then(|n| self.path(n, "base-directory")),
            exclude_paths: find(m, "exclude-paths")
                .map(|n| self.string_list(n, "exclude-paths"))
                .unwrap_or_default(),
            enable_symlinks: find(m, "enable-symlinks").is_some_and(|n| self.bool(n, "enable-symlinks")),
            s3_prefix: find(m, "s3-prefix").and_then(|n| self.string(n, "s3-prefix")),
        }
    }

    // Shapes.

    fn map<'n>(&mut self, n: &'n Node, what: &str) -> Option<Vec<(&'n Node, &'n Node)>> {
        match n.as_map() {
            Some(entries) => Some(last_wins(entries)),
            None => {
                self.error(
                    "wrong-type",
                    n.span,
                    format!("`{what}` is a mapping, but this is {}", n.kind()),
                    format!("write `{what}:` followed by indented `key: value` lines"),
                );
                None
            }
        }
    }

    fn string(&mut self, n: &Node, what: &str) -> Option<String> {
        match &n.value {
            _ if n.is_null() => None,
            Value::Scalar { text, .. } => Some(text.clone()),
            _ => {
                self.error(
                    "wrong-type",
                    n.span,
                    format!("`{what}` is a string, but this is {}", n.kind()),
                    "write a single value; quote it if it contains `: ` or starts with a special character",
                );
                None
            }
        }
    }

    /// An environment variable name as CodeBuild takes it: letters, digits and `_`, not starting
    /// with a digit.
    fn check_var_name(&mut self, name: &str, span: Span, section: &str) {
        if valid_var_name(name) {
            return;
        }
        let shown = meridian_pipeline::source::escape_controls(name);
        let why = if name.is_empty() {
            "an empty name".to_string()
        } else if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_')) {
            let c = meridian_pipeline::source::escape_controls(&c.to_string()).into_owned();
            if c == " " {
                "it holds a space".to_string()
            } else {
                format!("it holds `{c}`")
            }
        } else {
            "it starts with a digit".to_string()
        };
        self.error(
            "invalid-variable-name",
            span,
            format!("`{shown}` in `{section}` is not a valid environment variable name: {why}"),
            "a name is letters, digits and underscores, not starting with a digit, such as `MY_VAR`; to set `X=Y`, write `X: Y`",
        );
    }

    /// A directory path inside the build's source directory (`base-directory`).
    fn path(&mut self, n: &Node, what: &str) -> Option<String> {
        let p = self.string(n, what)?;
        if let Err(e) = meridian_core::path::check_relative(&p) {
            self.error(
                "path-outside-source",
                n.span,
                format!("`{what}` must stay inside the build's source directory: {e}"),
                format!("give a directory inside the source, like `{what}: build/output`"),
            );
        }
        Some(p)
    }

    /// Path patterns (`files`, `cache.paths`) must not climb out of the source with `..`.
    /// Absolute ones are left to the runner: CodeBuild caches paths such as `/root/.m2/**/*`.
    fn relative_patterns(&mut self, n: &Node, what: &str) {
        let items = n.as_seq().unwrap_or(std::slice::from_ref(n));
        for item in items {
            let Some(p) = item.as_str() else { continue };
            if p.starts_with('/') {
                continue;
            }
            if let Err(e) = meridian_core::path::check_relative(p) {
                self.error(
                    "path-outside-source",
                    item.span,
                    format!("`{what}` entries must stay inside the build's source directory: {e}"),
                    "write a path or glob inside the source, like `build/**/*`",
                );
            }
        }
    }

    fn bool(&mut self, n: &Node, what: &str) -> bool {
        if n.is_null() {
            return false;
        }
        match n.as_bool() {
            Some(b) => b,
            None => {
                self.error(
                    "wrong-type",
                    n.span,
                    format!(
                        "`{what}` is yes or no, but this is `{}`",
                        n.as_str().unwrap_or(n.kind())
                    ),
                    "write yes or no (true and false work too)",
                );
                false
            }
        }
    }

    /// A list of strings; a single string counts as a one-item list.
    fn string_list(&mut self, n: &Node, what: &str) -> Vec<String> {
        match &n.value {
            _ if n.is_null() => Vec::new(),
            Value::Scalar { text, .. } => vec![text.clone()],
            Value::Seq(items) => items.iter().filter_map(|i| self.string(i, what)).collect(),
            Value::Map(_) => {
                self.error(
                    "wrong-type",
                    n.span,
                    format!("`{what}` is a list of strings, but this is a mapping"),
                    "write each entry as a list item (`- value`); quote entries that contain `: `",
                );
                Vec::new()
            }
        }
    }

    /// A mapping of names to scalar values (numbers and booleans are kept as written).
    fn string_map(&mut self, n: &Node, what: &str) -> Vec<(String, String)> {
        if n.is_null() {
            return Vec::new();
        }
        let Some(m) = self.map(n, what) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in m {
            let Some(key) = k.as_str() else { continue };
            if let Some(value) = self.string(v, key) {
                out.push((key.to_string(), value));
            } else if v.is_null() {
                out.push((key.to_string(), String::new()));
            }
        }
        out
    }

    fn unknown_keys(&mut self, entries: &[(&Node, &Node)], known: &[&str], what: &str) {
        for (k, _) in entries {
            let Some(key) = k.as_str() else { continue };
            if known.contains(&key) {
                continue;
            }
            let help = match closest(key, known) {
                Some(c) => format!("did you mean `{c}`?"),
                None => format!("the keys of {what} are: {}", known.join(", ")),
            };
            self.diags.push(
                Diagnostic::warning(
                    "unknown-field",
                    format!("`{key}` is not a key of {what}; it is ignored"),
                )
                .at(k.span)
                .help(help),
            );
        }
    }
}

/// The entries of a mapping with duplicate keys resolved as CodeBuild does: the later one wins,
/// at the place of the first.
fn last_wins(entries: &[(Node, Node)]) -> Vec<(&Node, &Node)> {
    let mut out: Vec<(&Node, &Node)> = Vec::new();
    for (k, v) in entries {
        match out
            .iter_mut()
            .find(|(ok, _)| ok.as_str().is_some() && ok.as_str() == k.as_str())
        {
            Some(slot) => slot.1 = v,
            None => out.push((k, v)),
        }
    }
    out
}

/// One build of a matrix being expanded: its buildspec and its variables so far.
type MatrixCell = (Option<String>, Vec<(String, String)>);

/// A cycle of `depend-on` in a build graph, as the identifiers along it.
fn graph_cycle(builds: &[&crate::batch::BatchBuild]) -> Option<Vec<String>> {
    fn visit(
        i: usize,
        builds: &[&crate::batch::BatchBuild],
        state: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Option<Vec<String>> {
        state[i] = 1;
        path.push(i);
        for d in &builds[i].depend_on {
            let Some(j) = builds.iter().position(|b| &b.identifier == d) else {
                continue;
            };
            if state[j] == 1 {
                let from = path.iter().position(|x| *x == j).unwrap_or(0);
                return Some(path[from..].iter().map(|k| builds[*k].identifier.clone()).collect());
            }
            if state[j] == 0 {
                if let Some(c) = visit(j, builds, state, path) {
                    return Some(c);
                }
            }
        }
        path.pop();
        state[i] = 2;
        None
    }
    let mut state = vec![0u8; builds.len()];
    (0..builds.len()).find_map(|i| {
        if state[i] == 0 {
            visit(i, builds, &mut state, &mut Vec::new())
        } else {
            None
        }
    })
}

fn find<'n>(entries: &[(&'n Node, &'n Node)], key: &str) -> Option<&'n Node> {
    entries.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| *v)
}

/// `[A-Za-z_][A-Za-z0-9_]*`: what CodeBuild (and a shell) takes as a variable name.
pub fn valid_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn key_span(map: &Node, key: &str) -> Span {
    map.as_map()
        .and_then(|m| m.iter().rev().find(|(k, _)| k.as_str() == Some(key)))
        .map(|(k, _)| k.span)
        .unwrap_or(map.span)
}

fn value_span(map: &Node, key: &str) -> Span {
    map.as_map()
        .and_then(|m| m.iter().rev().find(|(k, _)| k.as_str() == Some(key)))
        .map(|(_, v)| v.span)
        .unwrap_or(map.span)
}

/// The known name closest to `word` (edit distance at most 2 or a third of its length).
fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let limit = (word.len() / 3).max(2);
    known
        .iter()
        .map(|k| (edit_distance(&word.to_ascii_lowercase(), &k.to_ascii_lowercase()), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_references_split_like_codebuild() {
        let r = SecretRef::parse("prod/db:password").unwrap();
        assert_eq!(r.secret_id, "prod/db");
        assert_eq!(r.json_key.as_deref(), Some("password"));
        let r = SecretRef::parse("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbC:user::v1").unwrap();
        assert_eq!(
            r.secret_id,
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbC"
        );
        assert_eq!(r.json_key.as_deref(), Some("user"));
        assert_eq!(r.version_stage, None);
        assert_eq!(r.version_id.as_deref(), Some("v1"));
        let r = SecretRef::parse("token::AWSPREVIOUS").unwrap();
        assert_eq!(r.json_key, None);
        assert_eq!(r.version_stage.as_deref(), Some("AWSPREVIOUS"));
        assert!(SecretRef::parse("a:b:STAGE:id").is_err());
        assert!(SecretRef::parse(":key").is_err());
        assert!(SecretRef::parse("a:b:c:d:e").is_err());
    }

    #[test]
    fn closest_names() {
        assert_eq!(
            closest("prebuild", &["install", "pre_build", "build", "post_build"]),
            Some("pre_build")
        );
        assert_eq!(closest("zzzzzzzz", &["install"]), None);
    }
}

//! Meridian's own format (`meridian.yaml`): regions are written once, as a home region and waves,
//! and everything else follows from them. It expands into the full CodePipeline model: a source
//! stage, a build, a Package action that packages the template once per region, one stage per wave
//! with one deploy action per region, validation steps after each deploy, and an artifact store for
//! every region.

use crate::diag::Diagnostic;
use crate::model::*;
use crate::node::{Node, Value};
use crate::read::Obj;
use crate::source::Span;
use std::collections::BTreeMap;

pub(crate) fn is_native(root: &Node) -> bool {
    root.get("pipeline").is_some_and(|p| p.as_str().is_some()) || root.get("waves").is_some()
}

/// Names of CodeDeploy's predefined Lambda deployment configurations and the custom forms Meridian
/// accepts (`Canary<N>Percent<M>Minutes`, `Linear<N>PercentEvery<M>Minute(s)`).
pub fn is_deployment_preference(s: &str) -> bool {
    meridian_delivery::schedule::TrafficSchedule::parse(s).is_ok()
}

fn read_traffic(node: &Node, diags: &mut Vec<Diagnostic>) -> Option<TrafficSettings> {
    let mut o = Obj::new(node, "`deploy.traffic`", diags)?;
    let rate = o.float("rate", diags);
    let payloads = o.string("payloads", diags).map(|x| x.0);
    let route = o.string("route", diags).and_then(|(r, span)| {
        let ok = r
            .split_once(' ')
            .is_some_and(|(m, p)| !m.is_empty() && m.chars().all(|c| c.is_ascii_alphabetic()) && p.starts_with('/'));
        if !ok {
            diags.push(
                Diagnostic::error("invalid-traffic", format!("traffic route `{r}` is not `METHOD /path`"))
                    .at(span)
                    .help("write the request users make, the path within the API's stage: `route: GET /hello`"),
            );
            return None;
        }
        Some(r)
    });
    o.finish(diags);
    match rate {
        Some((r, _)) if r > 0.0 && r <= 1000.0 => Some(TrafficSettings {
            rate: r,
            payloads,
            route,
        }),
        Some((r, span)) => {
            diags.push(
                Diagnostic::error(
                    "invalid-traffic",
                    format!("a traffic rate of {r} invocations a second is out of range"),
                )
                .at(span)
                .help("give `rate` between 0.1 and 1000 invocations a second"),
            );
            None
        }
        None => {
            diags.push(
                Diagnostic::error("missing-field", "`deploy.traffic` has no `rate`")
                    .at(node.span)
                    .help("add `rate: 20` (invocations a second)"),
            );
            None
        }
    }
}

fn read_judge(node: &Node, diags: &mut Vec<Diagnostic>) -> Option<JudgeSettings> {
    if let Some(b) = node.as_bool() {
        return b.then(JudgeSettings::default);
    }
    let mut o = Obj::new(node, "`deploy.judge`", diags)?;
    let j = JudgeSettings {
        min_invocations: o.int("min-invocations", diags).map(|x| x.0),
        max_error_rate_increase: o.float("max-error-rate-increase", diags).map(|x| x.0),
        max_p99_ratio: o.float("max-p99-ratio", diags).map(|x| x.0),
    };
    o.finish(diags);
    Some(j)
}

fn string_map(node: Option<&Node>, what: &str, diags: &mut Vec<Diagnostic>) -> BTreeMap<String, (String, Span)> {
    let mut out = BTreeMap::new();
    let Some(node) = node else { return out };
    match node.as_map() {
        Some(entries) => {
            for (k, v) in entries {
                match (k.as_str(), v.as_str()) {
                    (Some(k), Some(v2)) => {
                        out.insert(k.to_string(), (v2.to_string(), v.span));
                    }
                    _ => diags.push(
                        Diagnostic::error(
                            "wrong-type",
                            format!("the values of {what} must be strings, found {}", v.kind()),
                        )
                        .at(v.span),
                    ),
                }
            }
        }
        None => diags.push(
            Diagnostic::error(
                "wrong-type",
                format!("{what} must be a mapping of names to values, found {}", node.kind()),
            )
            .at(node.span)
            .help("write one `Name: value` per line"),
        ),
    }
    out
}

fn region_list(o: &mut Obj, key: &'static str, diags: &mut Vec<Diagnostic>) -> Vec<(String, Span)> {
    let Some(n) = o.get(key) else {
        return Vec::new();
    };
    match (&n.value, n.as_str()) {
        (Value::Seq(_), _) => o_strings(n, diags),
        (_, Some(s)) => vec![(s.to_string(), n.span)],
        _ => Vec::new(),
    }
}

fn o_strings(n: &Node, diags: &mut Vec<Diagnostic>) -> Vec<(String, Span)> {
    n.as_seq()
        .unwrap_or(&[])
        .iter()
        .filter_map(|i| match i.as_str() {
            Some(s) => Some((s.to_string(), i.span)),
            None => {
                diags.push(
                    Diagnostic::error("wrong-type", format!("expected a region name, found {}", i.kind()))
                        .at(i.span)
                        .help("write each region as a name, such as `us-east-1`"),
                );
                None
            }
        })
        .collect()
}

const DAYS: &[&str] = &["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn parse_hm(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60 && (h < 24 || m == 0)).then_some(h * 60 + m)
}

fn read_window(node: &Node, region: &str, diags: &mut Vec<Diagnostic>) -> Option<DeploymentWindow> {
    let mut o = Obj::new(node, format!("the deployment window of `{region}`"), diags)?;
    let mut w = DeploymentWindow::default();
    match o.string("timezone", diags) {
        Some((tz, span)) => {
            if jiff::tz::TimeZone::get(&tz).is_err() {
                diags.push(
                    Diagnostic::error("invalid-timezone", format!("`{tz}` is not an IANA time zone"))
                        .at(span)
                        .help("use a name from the IANA database, such as Europe/Dublin, America/New_York or Australia/Sydney"),
                );
            }
            w.timezone = tz;
        }
        None => diags.push(
            Diagnostic::error(
                "missing-field",
                format!("the deployment window of `{region}` has no `timezone`"),
            )
            .at(node.span)
            .help("add `timezone: Europe/Dublin` (the region's own time zone, an IANA name)"),
        ),
    }
    match o.string("hours", diags) {
        Some((h, span)) => {
            let ok = h
                .split_once('-')
                .is_some_and(|(a, b)| parse_hm(a).is_some() && parse_hm(b).is_some());
            if !ok {
                diags.push(
                    Diagnostic::error("invalid-window", format!("`{h}` is not a range of hours"))
                        .at(span)
                        .help("write `HH:MM-HH:MM`, such as `22:00-06:00` (a range that ends before it starts crosses midnight)"),
                );
            }
            w.hours = h;
        }
        None => w.hours = "00:00-24:00".into(),
    }
    for (d, span) in o.strings("days", diags) {
        let lower = d.to_ascii_lowercase();
        let expanded: Option<Vec<&str>> = match lower.split_once('-') {
            Some((a, b)) => {
                let (ia, ib) = (
                    DAYS.iter().position(|x| *x == &a[..a.len().min(3)]),
                    DAYS.iter().position(|x| *x == &b[..b.len().min(3)]),
                );
                match (ia, ib) {
                    (Some(ia), Some(ib)) if ia <= ib => Some(DAYS[ia..=ib].to_vec()),
                    _ => None,
                }
            }
            None => DAYS
                .iter()
                .find(|x| lower.len() >= 3 && **x == &lower[..3])
                .map(|x| vec![*x]),
        };
        match expanded {
            Some(days) => w.days.extend(days.into_iter().map(str::to_string)),
            None => diags.push(
                Diagnostic::error("invalid-window", format!("`{d}` is not a day or a range of days"))
                    .at(span)
                    .help("write days as mon, tue, wed, thu, fri, sat, sun, or a range such as mon-fri"),
            ),
        }
    }
    for (d, span) in o.strings("freeze", diags) {
        if d.parse::<jiff::civil::Date>().is_err() {
            diags.push(
                Diagnostic::error("invalid-window", format!("`{d}` is not a date"))
                    .at(span)
                    .help("write freeze dates as YYYY-MM-DD"),
            );
        }
        w.freeze.push(d);
    }
    o.finish(diags);
    Some(w)
}

fn action(name: String, type_id: (&str, &str, &str), span: Span) -> Action {
    let mut a = Action {
        name,
        action_type_id: ActionTypeId {
            category: type_id.0.into(),
            owner: type_id.1.into(),
            provider: type_id.2.into(),
            version: "1".into(),
        },
        run_order: 1,
        ..Default::default()
    };
    a.loc.node = Some(span);
    a
}

fn art(name: &str) -> Vec<ArtifactRef> {
    vec![ArtifactRef { name: name.into() }]
}

/// Reads a native definition and expands it into the model.
pub(crate) fn read_native(root: &Node, diags: &mut Vec<Diagnostic>) -> Option<Pipeline> {
    let d = diags;
    let mut o = Obj::new(root, "the pipeline definition", d)?;
    let mut p = Pipeline {
        format: SourceFormat::Native,
        pipeline_type: PipelineType::V2,
        ..Default::default()
    };
    p.loc.node = Some(root.span);
    match o.string("pipeline", d) {
        Some((n, s)) => {
            p.name = n;
            p.loc.set("name", s);
        }
        None => d.push(
            Diagnostic::error("missing-field", "the definition has no `pipeline` name")
                .at(root.span)
                .help("start the file with `pipeline: my-service`"),
        ),
    }
    if let Some((mode, span)) = o.string("execution-mode", d) {
        p.loc.set("executionMode", span);
        match ExecutionMode::parse(&mode.to_ascii_uppercase()) {
            Some(m) => p.execution_mode = m,
            None => d.push(
                Diagnostic::error("invalid-value", format!("`{mode}` is not an execution mode"))
                    .at(span)
                    .help("use QUEUED, SUPERSEDED or PARALLEL"),
            ),
        }
    }
    for (name, (value, span)) in string_map(o.get("variables"), "`variables`", d) {
        let mut v = Variable {
            name,
            default_value: Some(value),
            ..Default::default()
        };
        v.loc.node = Some(span);
        v.loc.set("name", span);
        p.variables.push(v);
    }

    // Waves and regions.
    let mut waves = Vec::new();
    let wave_nodes = o.list("waves", d);
    let waves_span = o.key_span("waves").unwrap_or(root.span);
    if wave_nodes.is_empty() {
        d.push(
            Diagnostic::error("no-waves", "the definition has no `waves`: Meridian does not know where to deploy")
                .at(waves_span)
                .help("add `waves:` with the primary region first, such as `- regions: [us-east-1]` then `- regions: [eu-west-1, ap-southeast-2]`"),
        );
    }
    let mut seen_regions: BTreeMap<String, Span> = BTreeMap::new();
    for (i, wn) in wave_nodes.iter().enumerate() {
        let Some(mut wo) = Obj::new(wn, format!("wave {}", i + 1), d) else {
            continue;
        };
        let name = wo.string("name", d).map(|x| x.0).unwrap_or_else(|| {
            if i == 0 {
                "primary".into()
            } else {
                format!("wave-{}", i + 1)
            }
        });
        let regions = region_list(&mut wo, "regions", d);
        if regions.is_empty() {
            d.push(
                Diagnostic::error("empty-wave", format!("wave `{name}` has no regions"))
                    .at(wn.span)
                    .help("add `regions: [eu-west-1]`"),
            );
        }
        let mut unique = Vec::new();
        for (r, span) in &regions {
            if let Some(first) = seen_regions.get(r).copied() {
                d.push(
                    Diagnostic::error("duplicate-region", format!("region `{r}` is in two waves"))
                        .at(*span)
                        .related(first, "first listed here")
                        .help("a region is deployed once per execution: keep it in one wave"),
                );
            } else {
                seen_regions.insert(r.clone(), *span);
                unique.push((r.clone(), *span));
            }
        }
        let regions = unique;
        let approval = wo.get("approval").and_then(Node::as_bool).unwrap_or(false);
        wo.finish(d);
        waves.push((
            Wave {
                name,
                regions: regions.iter().map(|r| r.0.clone()).collect(),
                approval,
            },
            regions,
            wn.span,
        ));
    }
    let home = match o.string("home", d) {
        Some((h, span)) => {
            p.loc.set("home", span);
            if let Some((first, _, wspan)) = waves.first() {
                if !first.regions.contains(&h) {
                    d.push(
                        Diagnostic::error(
                            "home-not-primary",
                            format!("the home region `{h}` is not in the first wave"),
                        )
                        .at(span)
                        .related(*wspan, "the first wave")
                        .help(format!("put `{h}` in the first wave: the primary region deploys first")),
                    );
                }
            }
            Some((h, span))
        }
        None => waves.first().and_then(|w| w.1.first().cloned()),
    };
    let (home, home_span) = home.unwrap_or_default();

    // Artifact stores: one per region, home included.
    // By default a bucket per region, as on AWS: the stacks of a region take code only from its own.
    let default_bucket = format!("{}-artifacts-{{region}}", p.name.to_ascii_lowercase());
    let (store_type, store_pattern) = match o.get("artifact-store") {
        Some(n) => match Obj::new(n, "`artifact-store`", d) {
            Some(mut so) => {
                let t = so.string("type", d).map(|x| x.0).unwrap_or_else(|| "S3".into());
                let l = so
                    .string("location", d)
                    .map(|x| x.0)
                    .unwrap_or_else(|| default_bucket.clone());
                so.finish(d);
                (t, l)
            }
            None => ("S3".into(), default_bucket.clone()),
        },
        None => ("S3".into(), default_bucket),
    };
    let mut all_regions: Vec<(String, Span)> = Vec::new();
    if !home.is_empty() {
        all_regions.push((home.clone(), home_span));
    }
    for (_, rs, _) in &waves {
        for r in rs {
            if !all_regions.iter().any(|(x, _)| x == &r.0) {
                all_regions.push(r.clone());
            }
        }
    }
    for (r, span) in &all_regions {
        let mut s = ArtifactStore {
            store_type: store_type.clone(),
            location: store_pattern.replace("{region}", r),
            ..Default::default()
        };
        s.loc.node = Some(*span);
        s.loc.set("region", *span);
        p.artifact_stores.insert(r.clone(), s);
    }

    // The backend of every region (`local` unless said), then per region below.
    if let Some((b, span)) = o.string("backend", d) {
        p.meridian.default_backend = crate::backends::backend_name(&b, span, d);
    }
    // Where the CodeBuild action runs: this machine (the default), or AWS CodeBuild.
    if let Some((b, span)) = o.string("builds", d) {
        p.meridian.builds = crate::backends::build_runner(&b, span, d);
    }
    // The role assumed in every AWS region (cross-account), then per region below.
    if let Some((r, span)) = o.string("role", d) {
        if let Some(r) = crate::backends::role_arn(&r, span, d) {
            p.meridian.roles.insert("*".into(), r);
        }
    }

    // Per-region settings.
    let mut region_params: BTreeMap<String, BTreeMap<String, (String, Span)>> = BTreeMap::new();
    let mut windows = BTreeMap::new();
    if let Some(regions) = o.get("regions") {
        match regions.as_map() {
            Some(entries) => {
                for (k, v) in entries {
                    let r = k.as_str().unwrap_or_default().to_string();
                    if !seen_regions.contains_key(&r) {
                        d.push(
                            Diagnostic::error(
                                "region-not-in-waves",
                                format!("settings for region `{r}`, which no wave deploys"),
                            )
                            .at(k.span)
                            .help("add the region to a wave, or remove its settings"),
                        );
                    }
                    let Some(mut ro) = Obj::new(v, format!("the settings of `{r}`"), d) else {
                        continue;
                    };
                    region_params.insert(r.clone(), string_map(ro.get("parameters"), "`parameters`", d));
                    if let Some((b, span)) = ro.string("backend", d) {
                        if let Some(b) = crate::backends::backend_name(&b, span, d) {
                            p.meridian.backends.insert(r.clone(), b);
                        }
                    }
                    if let Some((role, span)) = ro.string("role", d) {
                        if let Some(role) = crate::backends::role_arn(&role, span, d) {
                            p.meridian.roles.insert(r.clone(), role);
                        }
                    }
                    if let Some(w) = ro.get("window") {
                        if let Some(w) = read_window(w, &r, d) {
                            windows.insert(r.clone(), w);
                        }
                    }
                    ro.finish(d);
                }
            }
            None => d.push(
                Diagnostic::error("wrong-type", "`regions` must be a mapping of region names to settings")
                    .at(regions.span)
                    .help("write `regions:` with one `us-east-1: {window: ...}` entry per region"),
            ),
        }
    }

    // Source.
    let mut source_stage = Stage {
        name: "Source".into(),
        ..Default::default()
    };
    // No `source` means the git repository the definition is in, on `main`.
    let default_source;
    let sn = match o.get("source") {
        Some(sn) => sn,
        None => {
            default_source = Node {
                span: root.span,
                value: Value::Map(Vec::new()),
            };
            &default_source
        }
    };
    if let Some(mut so) = Obj::new(sn, "`source`", d) {
        let branch = so.string("branch", d).map(|x| x.0).unwrap_or_else(|| "main".into());
        let mut a = action("Source".into(), ("Source", "Meridian", "LocalGit"), sn.span);
        if let Some((repo, span)) = so.string("github", d) {
            a = action("Source".into(), ("Source", "AWS", "CodeStarSourceConnection"), sn.span);
            a.configuration.insert("FullRepositoryId".into(), repo);
            a.configuration
                .insert("ConnectionArn".into(), "{{aws:CodeStar connection}}".into());
            a.loc.set("configuration.FullRepositoryId", span);
        } else if let Some((repo, span)) = so.string("codecommit", d) {
            a = action("Source".into(), ("Source", "AWS", "CodeCommit"), sn.span);
            a.configuration.insert("RepositoryName".into(), repo);
            a.loc.set("configuration.RepositoryName", span);
        } else {
            let (path, span) = so.string("path", d).unwrap_or_else(|| (".".into(), sn.span));
            a.configuration.insert("RepositoryPath".into(), path);
            a.loc.set("configuration.RepositoryPath", span);
        }
        a.configuration.insert("BranchName".into(), branch);
        a.output_artifacts = art("SourceOutput");
        a.namespace = Some("SourceVariables".into());
        so.finish(d);
        source_stage.actions.push(a);
    }
    source_stage.loc.node = o.key_span("source");
    p.stages.push(source_stage);

    // Build.
    let mut deploy_input = "SourceOutput";
    if let Some(bn) = o.get("build") {
        if let Some(mut bo) = Obj::new(bn, "`build`", d) {
            let mut project = BuildProject::default();
            project.loc.node = Some(bn.span);
            if let Some((spec, span)) = bo.string("buildspec", d) {
                project.buildspec = BuildSpecSource::Path(spec);
                project.loc.set("buildspec", span);
            }
            project.environment_variables = string_map(bo.get("env"), "`build.env`", d)
                .into_iter()
                .map(|(name, (value, _))| EnvironmentVariable {
                    name,
                    value,
                    var_type: "PLAINTEXT".into(),
                })
                .collect();
            if let Some((t, span)) = bo.int("timeout", d) {
                project.timeout_in_minutes = Some(t);
                project.loc.set("timeout", span);
            }
            bo.finish(d);
            let project_name = format!("{}-build", p.name);
            let mut a = action("Build".into(), ("Build", "AWS", "CodeBuild"), bn.span);
            a.configuration.insert("ProjectName".into(), project_name.clone());
            a.input_artifacts = art("SourceOutput");
            a.output_artifacts = art("BuildOutput");
            a.namespace = Some("BuildVariables".into());
            p.meridian.build_projects.insert(project_name, project);
            let mut st = Stage {
                name: "Build".into(),
                actions: vec![a],
                ..Default::default()
            };
            st.loc.node = Some(bn.span);
            p.stages.push(st);
            deploy_input = "BuildOutput";
        }
    }

    // Deploy: package once per region, then one stage per wave.
    let mut preference = None;
    let (mut traffic, mut judge, mut rollback) = (None, None, None);
    let mut validate_steps: Vec<(String, Vec<String>, Span)> = Vec::new();
    for vn in o.list("validate", d) {
        let Some(mut vo) = Obj::new(vn, "a validation step", d) else {
            continue;
        };
        let name = vo
            .string("name", d)
            .map(|x| x.0)
            .unwrap_or_else(|| format!("step{}", validate_steps.len() + 1));
        let commands: Vec<String> = match vo.get("commands") {
            Some(c) if c.as_str().is_some() => vec![c.as_str().unwrap_or_default().to_string()],
            Some(c) => o_strings_any(c),
            None => Vec::new(),
        };
        if commands.is_empty() {
            d.push(
                Diagnostic::error("missing-field", format!("validation step `{name}` has no `commands`"))
                    .at(vn.span)
                    .help("add `commands: [./scripts/smoke-test.sh]`"),
            );
        }
        vo.finish(d);
        validate_steps.push((name, commands, vn.span));
    }
    if let Some(dn) = o.get("deploy") {
        if let Some(mut dobj) = Obj::new(dn, "`deploy`", d) {
            let template = dobj.string("template", d);
            let stack = dobj.string("stack", d).map(|x| x.0).unwrap_or_else(|| p.name.clone());
            if let Some((pref, span)) = dobj.string("preference", d) {
                if let Err(e) = meridian_delivery::schedule::TrafficSchedule::parse(&pref) {
                    d.push(
                        Diagnostic::error(
                            "invalid-deployment-preference",
                            format!("`{pref}` is not a deployment preference"),
                        )
                        .at(span)
                        .help(format!("{e}")),
                    );
                }
                preference = Some(pref);
            }
            if let Some(t) = dobj.get("traffic") {
                traffic = read_traffic(t, d);
            }
            if let Some(j) = dobj.get("judge") {
                judge = read_judge(j, d);
            }
            if let Some((r, span)) = dobj.string("rollback", d) {
                if r != "region" && r != "execution" {
                    d.push(
                        Diagnostic::error("invalid-rollback", format!("`{r}` is not a rollback policy"))
                            .at(span)
                            .help("write `rollback: region` (only the failed region, the default) or `rollback: execution` (every region the execution deployed)"),
                    );
                } else {
                    rollback = Some(r);
                }
            }
            let params = string_map(dobj.get("parameters"), "`deploy.parameters`", d);
            let caps: Vec<String> = match dobj.get("capabilities") {
                Some(c) if c.as_str().is_some() => c
                    .as_str()
                    .unwrap_or_default()
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .collect(),
                Some(c) => o_strings_any(c),
                None => vec!["CAPABILITY_IAM".into(), "CAPABILITY_AUTO_EXPAND".into()],
            };
            dobj.finish(d);
            let (template, tspan) = template.unwrap_or_else(|| ("template.yaml".into(), dn.span));
            let regions_csv = all_regions
                .iter()
                .map(|r| r.0.as_str())
                .filter(|r| seen_regions.contains_key(*r))
                .collect::<Vec<_>>()
                .join(",");
            let mut pk = action("Package".into(), ("Build", "Meridian", "Package"), dn.span);
            pk.configuration
                .insert("TemplatePath".into(), format!("{deploy_input}::{template}"));
            pk.configuration.insert("Regions".into(), regions_csv);
            pk.loc.set("configuration.TemplatePath", tspan);
            pk.input_artifacts = art(deploy_input);
            pk.output_artifacts = art("PackagedOutput");
            let mut st = Stage {
                name: "Package".into(),
                actions: vec![pk],
                ..Default::default()
            };
            st.loc.node = Some(dn.span);
            p.stages.push(st);

            for (wave, regions, wspan) in &waves {
                let mut st = Stage {
                    name: format!("Deploy-{}", wave.name),
                    ..Default::default()
                };
                st.loc.node = Some(*wspan);
                st.loc.set("name", *wspan);
                let mut order = 1;
                if wave.approval {
                    st.actions
                        .push(action("Approve".into(), ("Approval", "AWS", "Manual"), *wspan));
                    order = 2;
                }
                for (r, rspan) in regions {
                    let mut a = action(format!("Deploy-{r}"), ("Deploy", "AWS", "CloudFormation"), *rspan);
                    a.run_order = order;
                    a.region = Some(r.clone());
                    a.loc.set("region", *rspan);
                    a.namespace = Some(format!("Deploy-{r}"));
                    a.input_artifacts = art("PackagedOutput");
                    let mut merged: BTreeMap<String, String> =
                        params.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect();
                    for (k, v) in region_params.get(r).into_iter().flatten() {
                        merged.insert(k.clone(), v.0.clone());
                    }
                    let c = &mut a.configuration;
                    c.insert("ActionMode".into(), "CREATE_UPDATE".into());
                    c.insert("StackName".into(), stack.clone());
                    c.insert(
                        "TemplatePath".into(),
                        format!("PackagedOutput::packaged-template-{r}.yaml"),
                    );
                    if !caps.is_empty() {
                        c.insert("Capabilities".into(), caps.join(","));
                    }
                    if !merged.is_empty() {
                        c.insert(
                            "ParameterOverrides".into(),
                            serde_json::to_string(&merged).unwrap_or_default(),
                        );
                    }
                    st.actions.push(a);
                    for (vname, commands, vspan) in &validate_steps {
                        let mut v = action(format!("Validate-{vname}-{r}"), ("Compute", "AWS", "Commands"), *vspan);
                        v.run_order = order + 1;
                        v.region = Some(r.clone());
                        v.loc.set("region", *rspan);
                        v.commands = commands.clone();
                        v.input_artifacts = art("SourceOutput");
                        st.actions.push(v);
                    }
                }
                p.stages.push(st);
            }
        }
    } else if !validate_steps.is_empty() {
        d.push(
            Diagnostic::warning(
                "validate-without-deploy",
                "validation steps run after deploys, but the definition has no `deploy`",
            )
            .at(o.key_span("validate").unwrap_or(root.span))
            .help("add a `deploy` section, or remove `validate`"),
        );
    }
    let max_parallel = match o.int("max-parallel-regions", d) {
        Some((n, span)) if n < 1 => {
            d.push(
                Diagnostic::error(
                    "invalid-value",
                    format!("`max-parallel-regions` must be at least 1, found {n}"),
                )
                .at(span)
                .help("give how many regions of a wave deploy at once (1 deploys them one by one), or remove the line to deploy a whole wave at once"),
            );
            None
        }
        other => other.map(|x| x.0),
    };
    o.finish(d);
    p.meridian.delivery = Some(Delivery {
        home_region: home,
        waves: waves.into_iter().map(|w| w.0).collect(),
        deployment_preference: preference,
        windows,
        max_parallel_regions: max_parallel,
        traffic,
        judge,
        rollback,
    });
    Some(p)
}

fn o_strings_any(n: &Node) -> Vec<String> {
    n.as_seq()
        .unwrap_or(&[])
        .iter()
        .filter_map(|i| i.as_str().map(str::to_string))
        .collect()
}

/// Reads the `meridian` key of a printed model back (see [`Extensions`]).
pub(crate) fn read_extensions(node: &Node, diags: &mut Vec<Diagnostic>) -> Extensions {
    let mut ext = Extensions::default();
    let Some(mut o) = Obj::new(node, "the Meridian extensions", diags) else {
        return ext;
    };
    if let Some(bp) = o.get("buildProjects").and_then(Node::as_map) {
        for (k, v) in bp {
            let Some(mut po) = Obj::new(v, "a build project", diags) else {
                continue;
            };
            let mut project = BuildProject::default();
            if let Some(spec) = po.get("buildspec") {
                if let Some(p) = spec.get("path").and_then(Node::as_str) {
                    project.buildspec = BuildSpecSource::Path(p.into());
                } else if let Some(i) = spec.get("inline").and_then(Node::as_str) {
                    project.buildspec = BuildSpecSource::Inline(i.into());
                }
            }
            for ev in po.list("environmentVariables", diags) {
                project.environment_variables.push(EnvironmentVariable {
                    name: ev.get("name").and_then(Node::as_str).unwrap_or_default().into(),
                    value: ev.get("value").and_then(Node::as_str).unwrap_or_default().into(),
                    var_type: ev.get("type").and_then(Node::as_str).unwrap_or("PLAINTEXT").into(),
                });
            }
            project.image = po.string("image", diags).map(|x| x.0);
            if let Some((t, span)) = po.int("timeoutInMinutes", diags) {
                project.timeout_in_minutes = Some(t);
                project.loc.set("timeout", span);
            }
            po.finish(diags);
            ext.build_projects
                .insert(k.as_str().unwrap_or_default().into(), project);
        }
    }
    if let Some(dn) = o.get("delivery") {
        if let Some(mut dobj) = Obj::new(dn, "the delivery plan", diags) {
            let mut del = Delivery {
                home_region: dobj.string("homeRegion", diags).map(|x| x.0).unwrap_or_default(),
                deployment_preference: dobj.string("deploymentPreference", diags).map(|x| x.0),
                max_parallel_regions: dobj.int("maxParallelRegions", diags).map(|x| x.0),
                rollback: dobj.string("rollback", diags).map(|x| x.0),
                ..Default::default()
            };
            if let Some(t) = dobj.get("traffic") {
                del.traffic = read_traffic(t, diags);
            }
            if let Some(j) = dobj.get("judge") {
                let mut jo = Obj::new(j, "the judge", diags);
                if let Some(jo) = jo.as_mut() {
                    del.judge = Some(JudgeSettings {
                        min_invocations: jo.int("minInvocations", diags).map(|x| x.0),
                        max_error_rate_increase: jo.float("maxErrorRateIncrease", diags).map(|x| x.0),
                        max_p99_ratio: jo.float("maxP99Ratio", diags).map(|x| x.0),
                    });
                }
                if let Some(jo) = jo {
                    jo.finish(diags);
                }
            }
            for w in dobj.list("waves", diags) {
                del.waves.push(Wave {
                    name: w.get("name").and_then(Node::as_str).unwrap_or_default().into(),
                    regions: w.get("regions").map(o_strings_any).unwrap_or_default(),
                    approval: w.get("approval").and_then(Node::as_bool).unwrap_or(false),
                });
            }
            for (k, v) in dobj.get("windows").and_then(Node::as_map).unwrap_or(&[]) {
                let region = k.as_str().unwrap_or_default();
                if let Some(w) = read_window(v, region, diags) {
                    del.windows.insert(region.into(), w);
                }
            }
            dobj.finish(diags);
            ext.delivery = Some(del);
        }
    }
    ext.placeholders = o.strings("placeholders", diags).into_iter().map(|x| x.0).collect();
    if let Some((b, span)) = o.string("defaultBackend", diags) {
        ext.default_backend = crate::backends::backend_name(&b, span, diags);
    }
    if let Some((b, span)) = o.string("builds", diags) {
        ext.builds = crate::backends::build_runner(&b, span, diags);
    }
    for (k, v) in o.get("backends").and_then(Node::as_map).into_iter().flatten() {
        if let (Some(region), Some(b)) = (k.as_str(), v.as_str()) {
            if let Some(b) = crate::backends::backend_name(b, v.span, diags) {
                ext.backends.insert(region.to_string(), b);
            }
        }
    }
    for (k, v) in o.get("roles").and_then(Node::as_map).into_iter().flatten() {
        if let (Some(region), Some(r)) = (k.as_str(), v.as_str()) {
            if let Some(r) = crate::backends::role_arn(r, v.span, diags) {
                ext.roles.insert(region.to_string(), r);
            }
        }
    }
    o.finish(diags);
    ext
}

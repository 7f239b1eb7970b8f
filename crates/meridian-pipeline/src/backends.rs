//! Which backend reaches each region: `backend: local | aws`, for every region or per region;
//! and where CodeBuild actions run: `builds: local | codebuild`.
//! The native format says it in `backend:` and `regions: {R: {backend:}}`; the CodePipeline forms
//! say it in a Meridian extension that AWS ignores: `x-meridian` beside `pipeline` in API JSON,
//! `Metadata: Meridian` in a CloudFormation template, with the same keys.

use crate::diag::Diagnostic;
use crate::model::{Extensions, BACKENDS, BUILD_RUNNERS};
use crate::node::Node;
use crate::read::Obj;
use crate::source::Span;
use meridian_core::region::edit_distance;

/// Checks a backend name; `None` (with an error) when Meridian has no such backend.
pub(crate) fn backend_name(name: &str, span: Span, diags: &mut Vec<Diagnostic>) -> Option<String> {
    if BACKENDS.contains(&name) {
        return Some(name.to_string());
    }
    let near = BACKENDS
        .iter()
        .find(|b| edit_distance(b, &name.to_ascii_lowercase()) <= 2);
    diags.push(
        Diagnostic::error("unknown-backend", format!("`{name}` is not a region backend"))
            .at(span)
            .help(match near {
                Some(b) => format!("did you mean `{b}`? Backends: {}", BACKENDS.join(", ")),
                None => format!("use one of: {} (`local` unless said)", BACKENDS.join(", ")),
            }),
    );
    None
}

/// Checks where builds run (`builds:`); `None` (with an error) for anything else.
pub(crate) fn build_runner(name: &str, span: Span, diags: &mut Vec<Diagnostic>) -> Option<String> {
    if BUILD_RUNNERS.contains(&name) {
        return Some(name.to_string());
    }
    let near = BUILD_RUNNERS
        .iter()
        .find(|b| edit_distance(b, &name.to_ascii_lowercase()) <= 2);
    diags.push(
        Diagnostic::error("unknown-build-runner", format!("`{name}` is not where builds can run"))
            .at(span)
            .help(match near {
                Some(b) => format!("did you mean `{b}`? Builds run on: {}", BUILD_RUNNERS.join(", ")),
                None => "write `local` (this machine, the default) or `codebuild` (AWS CodeBuild in the action's region, which must have `backend: aws`)".to_string(),
            }),
    );
    None
}

/// Checks the ARN of a role to assume; `None` (with an error) when it is not an IAM role's ARN.
pub(crate) fn role_arn(arn: &str, span: Span, diags: &mut Vec<Diagnostic>) -> Option<String> {
    let ok = arn
        .strip_prefix("arn:")
        .and_then(|r| r.split_once(":iam::"))
        .and_then(|(partition, rest)| {
            let (account, role) = rest.split_once(":role/")?;
            (partition.starts_with("aws")
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && !role.is_empty())
            .then_some(())
        })
        .is_some();
    if ok {
        return Some(arn.to_string());
    }
    diags.push(
        Diagnostic::error("invalid-role", format!("`{arn}` is not the ARN of an IAM role"))
            .at(span)
            .help("write the role to assume in that account, as `arn:aws:iam::123456789012:role/deploy`"),
    );
    None
}

/// Reads `{backend: B, regions: {R: {backend: B}}}` (first letters in either case) into `ext`.
pub(crate) fn read_extension(node: &Node, ext: &mut Extensions, diags: &mut Vec<Diagnostic>) {
    let Some(mut o) = Obj::new(node, "the Meridian extension", diags) else {
        return;
    };
    if let Some((b, span)) = o.string("backend", diags) {
        ext.default_backend = backend_name(&b, span, diags);
    }
    if let Some((r, span)) = o.string("role", diags) {
        if let Some(r) = role_arn(&r, span, diags) {
            ext.roles.insert("*".into(), r);
        }
    }
    if let Some((b, span)) = o.string("builds", diags) {
        ext.builds = build_runner(&b, span, diags);
    }
    if let Some(regions) = o.get("regions") {
        match regions.as_map() {
            Some(entries) => {
                for (k, v) in entries {
                    let region = k.as_str().unwrap_or_default().to_string();
                    if let Err(e) = meridian_core::RegionId::new(&region) {
                        diags.push(
                            Diagnostic::error("unknown-region", e.to_string())
                                .at(k.span)
                                .help("use an AWS region name such as us-east-1, eu-west-1 or ap-southeast-2"),
                        );
                        continue;
                    }
                    let Some(mut ro) = Obj::new(v, format!("the Meridian settings of `{region}`"), diags) else {
                        continue;
                    };
                    if let Some((r, span)) = ro.string("role", diags) {
                        if let Some(r) = role_arn(&r, span, diags) {
                            ext.roles.insert(region.clone(), r);
                        }
                    }
                    if let Some((b, span)) = ro.string("backend", diags) {
                        if let Some(b) = backend_name(&b, span, diags) {
                            ext.backends.insert(region, b);
                        }
                    }
                    ro.finish(diags);
                }
            }
            None => diags.push(
                Diagnostic::error(
                    "wrong-type",
                    "`regions` of the Meridian extension must be a mapping of region names",
                )
                .at(regions.span)
                .help("write `regions: {eu-west-1: {backend: aws, role: arn:aws:iam::123456789012:role/deploy}}`"),
            ),
        }
    }
    o.finish(diags);
}

//! `#{Namespace.Variable}` references, resolved in an action's configuration just before it runs.

use std::collections::BTreeMap;

/// Variables by namespace: action namespaces, `variables` (pipeline variables) and `codepipeline`.
pub type Namespaces = BTreeMap<String, BTreeMap<String, String>>;

/// Replaces every `#{ns.var}` in `text`. An unknown reference is an error naming it exactly.
pub fn resolve(text: &str, ns: &Namespaces) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("#{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[i..]);
            return Ok(out);
        };
        let inner = &after[..end];
        let Some((space, var)) = inner.split_once('.') else {
            return Err(format!(
                "`#{{{inner}}}` is not a variable reference: write #{{Namespace.Variable}}"
            ));
        };
        let value = match ns.get(space) {
            None => {
                let known: Vec<&str> = ns.keys().map(String::as_str).collect();
                return Err(format!(
                    "cannot resolve `#{{{inner}}}`: no action that ran before declares namespace `{space}` (namespaces available: {})",
                    known.join(", ")
                ));
            }
            Some(vars) => vars.get(var).ok_or_else(|| {
                let known: Vec<&str> = vars.keys().map(String::as_str).collect();
                format!(
                    "cannot resolve `#{{{inner}}}`: namespace `{space}` has no variable `{var}` (it has: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )
            })?,
        };
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_and_names_what_is_missing() {
        let mut ns = Namespaces::new();
        ns.entry("Src".into())
            .or_default()
            .insert("CommitId".into(), "abc123".into());
        ns.entry("variables".into())
            .or_default()
            .insert("Stage".into(), "prod".into());
        assert_eq!(
            resolve("v=#{Src.CommitId}-#{variables.Stage}", &ns).unwrap(),
            "v=abc123-prod"
        );
        assert_eq!(resolve("no refs, ${NOT_OURS}", &ns).unwrap(), "no refs, ${NOT_OURS}");
        let e = resolve("#{Src.Branch}", &ns).unwrap_err();
        assert_eq!(
            e,
            "cannot resolve `#{Src.Branch}`: namespace `Src` has no variable `Branch` (it has: CommitId)"
        );
        let e = resolve("#{Build.Version}", &ns).unwrap_err();
        assert!(e.contains("namespace `Build`"), "{e}");
    }
}

//! Drawings of a pipeline: stages, actions grouped by run order, regions, and the artifact flow.

use crate::model::{Action, Pipeline};
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphFormat {
    Text,
    Mermaid,
    Dot,
}

pub fn render(p: &Pipeline, format: GraphFormat) -> String {
    match format {
        GraphFormat::Text => text(p),
        GraphFormat::Mermaid => mermaid(p),
        GraphFormat::Dot => dot(p),
    }
}

fn groups(actions: &[Action]) -> BTreeMap<i64, Vec<&Action>> {
    let mut g: BTreeMap<i64, Vec<&Action>> = BTreeMap::new();
    for a in actions {
        g.entry(a.run_order).or_default().push(a);
    }
    g
}

fn names(list: &[crate::model::ArtifactRef]) -> String {
    list.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
}

fn text(p: &Pipeline) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "pipeline {} ({:?}, {:?})", p.name, p.pipeline_type, p.execution_mode);
    if !p.artifact_stores.is_empty() {
        let _ = writeln!(
            s,
            "artifact stores: {}",
            p.artifact_stores
                .iter()
                .map(|(r, st)| format!("{r} ({})", st.location))
                .collect::<Vec<_>>()
                .join(", ")
        );
    } else if let Some(st) = &p.artifact_store {
        let _ = writeln!(s, "artifact store: {}", st.location);
    }
    for (i, st) in p.stages.iter().enumerate() {
        let _ = writeln!(s, "\n{}. {}", i + 1, st.name);
        for (order, actions) in groups(&st.actions) {
            let parallel = if actions.len() > 1 {
                format!(" ({} in parallel)", actions.len())
            } else {
                String::new()
            };
            let _ = writeln!(s, "   run order {order}{parallel}");
            for a in actions {
                let region = a.region.as_deref().map(|r| format!(" @ {r}")).unwrap_or_default();
                let flow = match (a.input_artifacts.is_empty(), a.output_artifacts.is_empty()) {
                    (true, true) => String::new(),
                    _ => format!("  [{}] -> [{}]", names(&a.input_artifacts), names(&a.output_artifacts)),
                };
                let _ = writeln!(s, "     - {} ({}/{}){region}{flow}", a.name, a.category(), a.provider());
            }
        }
    }
    s
}

fn id(stage: usize, action: usize) -> String {
    format!("s{stage}a{action}")
}

/// Edges from the producer of each artifact to each of its consumers.
fn edges(p: &Pipeline) -> Vec<(String, String, String)> {
    let mut producer = BTreeMap::new();
    for (si, st) in p.stages.iter().enumerate() {
        for (ai, a) in st.actions.iter().enumerate() {
            for o in &a.output_artifacts {
                producer.entry(o.name.clone()).or_insert_with(|| id(si, ai));
            }
        }
    }
    let mut out = Vec::new();
    for (si, st) in p.stages.iter().enumerate() {
        for (ai, a) in st.actions.iter().enumerate() {
            for i in &a.input_artifacts {
                if let Some(from) = producer.get(&i.name) {
                    out.push((from.clone(), id(si, ai), i.name.clone()));
                }
            }
        }
    }
    out
}

fn quote(s: &str) -> String {
    s.replace('"', "'")
}

fn mermaid(p: &Pipeline) -> String {
    let mut s = String::from("flowchart LR\n");
    for (si, st) in p.stages.iter().enumerate() {
        let _ = writeln!(s, "  subgraph stage{si}[\"{}\"]", quote(&st.name));
        for (ai, a) in st.actions.iter().enumerate() {
            let region = a.region.as_deref().map(|r| format!("<br/>{r}")).unwrap_or_default();
            let _ = writeln!(
                s,
                "    {}[\"{}<br/>{}{region}<br/>run order {}\"]",
                id(si, ai),
                quote(&a.name),
                quote(a.provider()),
                a.run_order
            );
        }
        s.push_str("  end\n");
    }
    for (from, to, label) in edges(p) {
        let _ = writeln!(s, "  {from} -->|{}| {to}", quote(&label));
    }
    s
}

fn dot(p: &Pipeline) -> String {
    let mut s = format!(
        "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box];\n",
        quote(&p.name)
    );
    for (si, st) in p.stages.iter().enumerate() {
        let _ = writeln!(s, "  subgraph cluster_{si} {{\n    label=\"{}\";", quote(&st.name));
        for (ai, a) in st.actions.iter().enumerate() {
            let region = a.region.as_deref().map(|r| format!("\\n{r}")).unwrap_or_default();
            let _ = writeln!(
                s,
                "    {} [label=\"{}\\n{}{region}\\nrun order {}\"];",
                id(si, ai),
                quote(&a.name),
                quote(a.provider()),
                a.run_order
            );
        }
        s.push_str("  }\n");
    }
    for (from, to, label) in edges(p) {
        let _ = writeln!(s, "  {from} -> {to} [label=\"{}\"];", quote(&label));
    }
    s.push_str("}\n");
    s
}

//! A YAML/JSON document tree in which every node keeps its span.
//!
//! Both YAML (with CloudFormation's short-form tags) and JSON are read through one event parser, so
//! all three definition formats share positions, duplicate-key detection and tag handling. Short-form
//! tags (`!Ref X`, `!GetAtt A.B`, `!Sub ...`) are normalised here, in one pass, to the JSON form
//! (`{"Ref": "X"}`, `{"Fn::GetAtt": ["A", "B"]}`, ...).

use crate::diag::Diagnostic;
use crate::source::{FileId, SourceFile, Span};
use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

#[derive(Clone, Debug)]
pub struct Node {
    pub span: Span,
    pub value: Value,
}

#[derive(Clone, Debug)]
pub enum Value {
    /// A scalar as written; `plain` is false for quoted and block scalars, which are always strings.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    pub fn scalar(text: impl Into<String>, span: Span) -> Node {
        Node {
            span,
            value: Value::Scalar {
                text: text.into(),
                plain: false,
            },
        }
    }

    /// The scalar's text, when the node is a scalar that is not null.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } if !self.is_null() => Some(text),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, plain: true } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value of the first entry whose key is exactly `key`.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// A plain `true`/`false`/`yes`/`no`, or a quoted `"true"`/`"false"` as CloudFormation accepts.
    pub fn as_bool(&self) -> Option<bool> {
        match self.as_str()?.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" => Some(true),
            "false" | "no" | "off" => Some(false),
            _ => None,
        }
    }

    /// When the node is a one-entry map whose key is an intrinsic function (`Ref`, `Fn::*`,
    /// `Condition`), its name and argument.
    pub fn intrinsic(&self) -> Option<(&str, &Node)> {
        let entries = self.as_map()?;
        if entries.len() != 1 {
            return None;
        }
        let (k, v) = &entries[0];
        let name = k.as_str()?;
        (name == "Ref" || name == "Condition" || name.starts_with("Fn::")).then_some((name, v))
    }

    /// A short description of the node's kind, for messages.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Scalar { .. } if self.is_null() => "nothing (null)",
            Value::Scalar { .. } => "a scalar",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The node as JSON: plain scalars that read as numbers or booleans become those.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Scalar { .. } if self.is_null() => serde_json::Value::Null,
            Value::Scalar { text, plain } => {
                if *plain {
                    if let Ok(i) = text.parse::<i64>() {
                        return i.into();
                    }
                    if let Some(f) = text.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                        if text.chars().all(|c| c.is_ascii_digit() || c == '.' || c == '-') {
                            return serde_json::Value::Number(f);
                        }
                    }
                    match text.as_str() {
                        "true" | "True" | "TRUE" => return true.into(),
                        "false" | "False" | "FALSE" => return false.into(),
                        _ => {}
                    }
                }
                serde_json::Value::String(text.clone())
            }
            Value::Seq(items) => items.iter().map(Node::to_json).collect(),
            Value::Map(entries) => {
                let mut m = serde_json::Map::new();
                for (k, v) in entries {
                    m.insert(k.as_str().unwrap_or_default().to_string(), v.to_json());
                }
                serde_json::Value::Object(m)
            }
        }
    }
}

/// The deepest nesting of lists and mappings a document may have. Every walk of a tree
/// (validation, the SAM transform, intrinsic functions) recurses, so this bound keeps them all
/// off the end of the stack. No real template, pipeline or buildspec comes close.
pub const MAX_DEPTH: usize = 128;

/// The most nodes a document's tree may hold, aliases expanded.
pub const MAX_NODES: usize = 1_000_000;

/// Aliases may add at most this many nodes per byte of the file (and [`MIN_ALIAS_BUDGET`]
/// whatever its size): a "billion laughs" file of a few hundred bytes would otherwise expand
/// to billions of nodes.
pub const ALIAS_NODES_PER_BYTE: usize = 10;
pub const MIN_ALIAS_BUDGET: usize = 10_000;

/// Is the file JSON (by its name, or by its first character)? Messages name the format.
pub fn is_json_file(file: &SourceFile) -> bool {
    let lower = file.name.to_ascii_lowercase();
    if lower.ends_with(".json") {
        return true;
    }
    if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        return false;
    }
    file.text.trim_start().starts_with(['{', '['])
}

/// Parses a YAML or JSON document (the first one of a stream) into a spanned tree.
///
/// Syntax errors come back as a diagnostic with the position. Duplicate keys and unknown tags are
/// pushed to `diags` as errors: CloudFormation and CodePipeline reject both. A document nested
/// deeper than [`MAX_DEPTH`], or whose aliases expand past [`MAX_NODES`] nodes (or ten nodes per
/// byte of the file), is refused as it is read, before it takes the memory or the stack.
pub fn parse(file_id: FileId, file: &SourceFile, diags: &mut Vec<Diagnostic>) -> Result<Node, Box<Diagnostic>> {
    let mut root = parse_tree(file_id, file, diags)?;
    resolve_duplicate_keys(&mut root, file, DuplicateKeys::Error, diags);
    Ok(root)
}

/// [`parse`] without the check of repeated keys: the caller applies
/// [`resolve_duplicate_keys`] with the policy of the format it finds.
pub fn parse_tree(file_id: FileId, file: &SourceFile, diags: &mut Vec<Diagnostic>) -> Result<Node, Box<Diagnostic>> {
    let json = is_json_file(file);
    // Spaces added at the start of lines (original byte offset, count), and the text with them.
    let mut insertions: Vec<(usize, usize)> = Vec::new();
    let mut reindented: Option<String> = None;
    let mut warnings = Vec::new();
    loop {
        let text = reindented.as_deref().unwrap_or(&file.text);
        match parse_text(file_id, file, text, &insertions, json, diags) {
            Ok(root) => {
                diags.append(&mut warnings);
                return Ok(root);
            }
            // A quoted scalar whose continuation lines are indented no deeper than its key:
            // YAML 1.2 (and yaml-rust2) refuse it; PyYAML, SnakeYAML and so CloudFormation read
            // it. Leading spaces of a quoted scalar's continuation lines are not part of its
            // value, so the lines are indented further and the text parsed again; positions are
            // mapped back to the file as it is.
            Err(Failed::QuotedIndent { diag, quote }) => {
                let reparsed = (warnings.len() + 1).saturating_mul(text.len());
                let added = (warnings.len() < MAX_REINDENTED_SCALARS && reparsed <= MAX_REPARSED_BYTES)
                    .then(|| reindent_quoted(text, quote))
                    .flatten()
                    .ok_or(diag)?;
                let quote_at = original_offset(quote, &insertions);
                // offsets in the text parsed, mapped to the file's before any is merged
                let added: Vec<(usize, usize)> = added
                    .into_iter()
                    .map(|(at, count)| (original_offset(at, &insertions), count))
                    .collect();
                for (at, count) in added {
                    match insertions.binary_search_by_key(&at, |i| i.0) {
                        Ok(i) => insertions[i].1 += count,
                        Err(i) => insertions.insert(i, (at, count)),
                    }
                }
                let mut rebuilt =
                    String::with_capacity(file.text.len() + insertions.iter().map(|i| i.1).sum::<usize>());
                let mut from = 0;
                for &(at, count) in &insertions {
                    rebuilt.push_str(&file.text[from..at]);
                    rebuilt.extend(std::iter::repeat_n(' ', count));
                    from = at;
                }
                rebuilt.push_str(&file.text[from..]);
                reindented = Some(rebuilt);
                warnings.push(
                    Diagnostic::warning(
                        "quoted-indent",
                        "the lines of this quoted value are indented no deeper than its key: CloudFormation reads it, strict YAML parsers refuse it",
                    )
                    .at(Span::new(file_id, quote_at, 1))
                    .help("indent the lines after the first further than the key, so that every YAML parser reads the file"),
                );
            }
            Err(Failed::Other(d)) => return Err(d),
        }
    }
}

/// At most this many quoted scalars are re-indented in a file, and the parses this costs read
/// at most this many bytes in all (a hostile 10 MiB file gets six); past either, the syntax
/// error stands.
pub const MAX_REINDENTED_SCALARS: usize = 64;
pub const MAX_REPARSED_BYTES: usize = 64 * 1024 * 1024;

/// Why a parse of a text failed.
enum Failed {
    /// "invalid indentation in quoted scalar", at the scalar's opening quote (a byte offset in
    /// the text parsed).
    QuotedIndent {
        diag: Box<Diagnostic>,
        quote: usize,
    },
    Other(Box<Diagnostic>),
}

/// The offset in the file of `at`, an offset in the text parsed, given the spaces inserted.
fn original_offset(at: usize, insertions: &[(usize, usize)]) -> usize {
    let mut added = 0;
    for &(orig, count) in insertions {
        let start = orig + added;
        if at < start {
            break;
        }
        if at < start + count {
            return orig;
        }
        added += count;
    }
    at - added
}

/// The spaces to add (offset in `text`, count) so that every continuation line of the quoted
/// scalar opening at `quote` is indented deeper than the quote's column, which is deeper than
/// its key; `None` if it ends nowhere or no line needs more.
fn reindent_quoted(text: &str, quote: usize) -> Option<Vec<(usize, usize)>> {
    let q = text[quote..].chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let line_start = text[..quote].rfind('\n').map_or(0, |i| i + 1);
    let need = text[line_start..quote].chars().count() + 1;
    let body = &text[quote + 1..];
    let mut end = None;
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if q == '"' && c == '\\' {
            chars.next();
        } else if c == q {
            if q == '\'' && chars.peek().map(|p| p.1) == Some('\'') {
                chars.next();
                continue;
            }
            end = Some(quote + 1 + i);
            break;
        }
    }
    let end = end?;
    let mut added = Vec::new();
    let mut at = quote;
    while let Some(nl) = text[at..end].find('\n') {
        let start = at + nl + 1;
        let line = &text[start..];
        let spaces = line.len() - line.trim_start_matches(' ').len();
        let first = line[spaces..].chars().next();
        // blank lines have no indentation to keep
        if spaces < need && !matches!(first, None | Some('\n' | '\r' | '\t')) {
            added.push((start, need - spaces));
        }
        at = start;
    }
    (!added.is_empty()).then_some(added)
}

/// One parse of `text`: the file's text, or the file with `insertions` applied.
fn parse_text(
    file_id: FileId,
    file: &SourceFile,
    text: &str,
    insertions: &[(usize, usize)],
    json: bool,
    diags: &mut Vec<Diagnostic>,
) -> Result<Node, Failed> {
    let format = if json { "JSON" } else { "YAML" };
    if json {
        // serde_json's messages are the clearest for JSON syntax; the tree itself comes from the YAML
        // parser below, which reads JSON too and gives positions for every node.
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&file.text) {
            let msg = e.to_string();
            // serde_json stops at 128 levels; the depth limit below says it better
            if !msg.starts_with("recursion limit exceeded") {
                // serde_json counts columns in bytes
                let offset = file.offset_of_byte_col(e.line(), e.column());
                let msg = msg.split(" at line").next().unwrap_or(&msg).to_string();
                return Err(Failed::Other(Box::new(
                    Diagnostic::error("syntax", format!("invalid JSON: {msg}"))
                        .at(Span::new(file_id, offset, 1))
                        .help(
                            "fix the JSON syntax at this position (a missing comma, quote or bracket is the usual cause)",
                        ),
                )));
            }
        }
    }
    // yaml-rust2 counts its marks' index in characters, except over the lines of a block scalar
    // (`|`, `>`), where it adds their length in bytes: after a block scalar holding Japanese or
    // emoji, every index is too far. Lines and columns stay right, so non-ASCII text is placed by
    // line and column.
    let (char_to_byte, line_chars) = if text.is_ascii() {
        (None, Vec::new())
    } else {
        let mut v: Vec<u32> = Vec::with_capacity(file.text.len());
        let mut lines = vec![(0u32, 0u32)];
        for (n, (i, c)) in text.char_indices().enumerate() {
            v.push(i as u32);
            if c == '\n' {
                if let Some(last) = lines.last_mut() {
                    last.1 = n as u32;
                }
                lines.push((n as u32 + 1, n as u32 + 1));
            }
        }
        let total = v.len() as u32;
        if let Some(last) = lines.last_mut() {
            last.1 = total;
        }
        v.push(text.len() as u32);
        (Some(v), lines)
    };
    let mut builder = Builder {
        file_id,
        text: &file.text,
        parsed_len: text.len(),
        insertions,
        char_to_byte,
        line_chars,
        stack: Vec::new(),
        anchors: HashMap::new(),
        root: None,
        diags: Vec::new(),
        nodes: 0,
        alias_nodes: 0,
        alias_budget: (file.text.len().saturating_mul(ALIAS_NODES_PER_BYTE)).clamp(MIN_ALIAS_BUDGET, MAX_NODES),
        format,
        fatal: None,
    };
    // The parser is driven event by event (its own `load` recurses once per level, and could
    // not be stopped by the builder): a limit ends the parse at once.
    let mut parser = Parser::new_from_str(text);
    loop {
        let (ev, mark) = match parser.next_token() {
            Ok(x) => x,
            Err(e) => {
                let m = e.marker();
                let offset = builder.byte(m);
                if e.info() == "recursion limit exceeded" {
                    return Err(Failed::Other(Box::new(builder.too_deep(offset))));
                }
                let help = if json {
                    "fix the JSON syntax at this position (a missing comma, quote or bracket is the usual cause)"
                } else {
                    "fix the YAML syntax at this position (indentation and unclosed quotes are the usual causes)"
                };
                let diag = Box::new(
                    Diagnostic::error("syntax", format!("invalid {format}: {}", e.info()))
                        .at(Span::new(file_id, offset, 1))
                        .help(help),
                );
                if e.info() == "invalid indentation in quoted scalar" {
                    return Err(Failed::QuotedIndent {
                        diag,
                        quote: builder.parsed_byte(m),
                    });
                }
                return Err(Failed::Other(diag));
            }
        };
        let end = matches!(ev, Event::DocumentEnd | Event::StreamEnd);
        builder.on_event(ev, mark);
        if let Some(d) = builder.fatal.take() {
            return Err(Failed::Other(Box::new(d)));
        }
        if end {
            break;
        }
    }
    diags.append(&mut builder.diags);
    let root = builder.root.unwrap_or(Node {
        span: Span::new(file_id, 0, 0),
        value: Value::Scalar {
            text: String::new(),
            plain: true,
        },
    });
    Ok(root)
}

/// How a repeated key of a mapping is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DuplicateKeys {
    /// An error; every entry is kept (what [`parse`] does).
    Error,
    /// An error, and only the last entry is kept, so that nothing else is said of the repeated
    /// key (Meridian's own format).
    ErrorKeepLast,
    /// A warning naming both lines, and the last value is kept: what CloudFormation does with a
    /// template, and what the JSON parsers of AWS's CLI and SDKs do with CodePipeline JSON.
    /// `said` ends the message: who keeps the last value ("CloudFormation keeps the last value").
    KeepLast { said: &'static str },
}

/// Reports repeated keys (and keys that are not scalars) of every mapping of the tree, as
/// `policy` says, and with [`DuplicateKeys::KeepLast`] or [`DuplicateKeys::ErrorKeepLast`]
/// removes the earlier entries of a repeated key.
pub fn resolve_duplicate_keys(node: &mut Node, file: &SourceFile, policy: DuplicateKeys, diags: &mut Vec<Diagnostic>) {
    match &mut node.value {
        Value::Map(entries) => {
            let mut seen: HashMap<String, usize> = HashMap::new();
            let mut drop = vec![false; entries.len()];
            for (i, (k, _)) in entries.iter().enumerate() {
                if matches!(k.value, Value::Seq(_) | Value::Map(_)) && policy != DuplicateKeys::Error {
                    diags.push(
                        Diagnostic::error("complex-key", format!("a mapping key must be a string, found {}", k.kind()))
                            .at(k.span)
                            .label("this key")
                            .help("write the key as a plain name (`name: value`); CloudFormation and CodePipeline take only string keys"),
                    );
                    drop[i] = true;
                    continue;
                }
                let Some(name) = k.as_str() else { continue };
                let Some(first) = seen.insert(name.to_string(), i) else {
                    continue;
                };
                let first_span = entries[first].0.span;
                let first_line = file.line_col(first_span.start as usize).0;
                let d = match policy {
                    DuplicateKeys::KeepLast { said } => {
                        let line = file.line_col(k.span.start as usize).0;
                        Diagnostic::warning(
                            "duplicate-key",
                            format!(
                                "the key `{}` appears twice in this mapping (lines {first_line} and {line}); {said}",
                                crate::diag::clip(name)
                            ),
                        )
                        .at(k.span)
                        .label("this value is kept")
                        .related(first_span, "this one is ignored")
                        .help(format!("remove the entry on line {first_line}, which is ignored, or this one if it is the wrong one"))
                    }
                    DuplicateKeys::Error | DuplicateKeys::ErrorKeepLast => Diagnostic::error(
                        "duplicate-key",
                        format!("the key `{}` appears twice in this mapping", crate::diag::clip(name)),
                    )
                    .at(k.span)
                    .label("written again here")
                    .related(first_span, "first written here")
                    .help("remove one of the two entries; only one value can be kept"),
                };
                diags.push(d);
                drop[first] = policy != DuplicateKeys::Error;
            }
            if drop.iter().any(|d| *d) {
                let mut i = 0;
                entries.retain(|_| {
                    i += 1;
                    !drop[i - 1]
                });
            }
            for (_, v) in entries.iter_mut() {
                resolve_duplicate_keys(v, file, policy, diags);
            }
        }
        Value::Seq(items) => items
            .iter_mut()
            .for_each(|n| resolve_duplicate_keys(n, file, policy, diags)),
        Value::Scalar { .. } => {}
    }
}

enum Frame {
    Seq {
        start: usize,
        items: Vec<Node>,
        anchor: usize,
        tag: Option<(String, usize)>,
        /// Nodes inside so far.
        size: usize,
    },
    Map {
        start: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        anchor: usize,
        tag: Option<(String, usize)>,
        size: usize,
    },
}

struct Builder<'a> {
    file_id: FileId,
    /// The file's text: spans are offsets in it.
    text: &'a str,
    /// The length of the text parsed, and the spaces it has that the file has not (see
    /// [`parse_tree`]); the character maps below are of the text parsed.
    parsed_len: usize,
    insertions: &'a [(usize, usize)],
    /// The byte offset of each character, for a non-ASCII text.
    char_to_byte: Option<Vec<u32>>,
    /// The character index of the start and the end of each line, for a non-ASCII text.
    line_chars: Vec<(u32, u32)>,
    stack: Vec<Frame>,
    /// Anchored nodes, with the number of nodes each holds.
    anchors: HashMap<usize, (Node, usize)>,
    root: Option<Node>,
    diags: Vec<Diagnostic>,
    /// Nodes in the tree so far, aliases expanded.
    nodes: usize,
    /// Nodes aliases have added so far, and how many they may add.
    alias_nodes: usize,
    alias_budget: usize,
    /// `YAML` or `JSON`, for messages.
    format: &'static str,
    /// A limit was hit: the parse ends with this diagnostic.
    fatal: Option<Diagnostic>,
}

const INTRINSIC_TAGS: &[&str] = &[
    "Base64",
    "Cidr",
    "FindInMap",
    "GetAtt",
    "GetAZs",
    "ImportValue",
    "Join",
    "Select",
    "Split",
    "Sub",
    "Transform",
    "And",
    "Equals",
    "If",
    "Not",
    "Or",
    "GetParam",
    "Length",
    "ToJsonString",
    "GetStackOutput",
    // the functions of a template's `Rules` section
    "Contains",
    "EachMemberEquals",
    "EachMemberIn",
    "RefAll",
    "ValueOf",
    "ValueOfAll",
];

impl Builder<'_> {
    /// The byte offset in the file of a mark.
    fn byte(&self, mark: &Marker) -> usize {
        original_offset(self.parsed_byte(mark), self.insertions).min(self.text.len())
    }

    /// The byte offset of a mark in the text parsed.
    fn parsed_byte(&self, mark: &Marker) -> usize {
        match &self.char_to_byte {
            None => mark.index().min(self.parsed_len),
            Some(map) => {
                // `line` counts from 1, `col` from 0
                let Some(&(start, end)) = self.line_chars.get(mark.line().saturating_sub(1)) else {
                    return self.parsed_len;
                };
                let at = (start as usize + mark.col()).min(end as usize);
                map.get(at).copied().unwrap_or(self.parsed_len as u32) as usize
            }
        }
    }

    /// Length of a scalar's source text starting at `start`.
    fn scalar_len(&self, start: usize, value: &str, style: TScalarStyle) -> usize {
        let rest = &self.text[start.min(self.text.len())..];
        match style {
            TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => {
                let q = if style == TScalarStyle::SingleQuoted { '\'' } else { '"' };
                let mut escaped = false;
                for (i, c) in rest.char_indices().skip(1) {
                    if q == '"' && c == '\\' && !escaped {
                        escaped = true;
                        continue;
                    }
                    if c == q && !escaped {
                        if q == '\'' && rest[i + 1..].starts_with('\'') {
                            continue;
                        }
                        return i + 1;
                    }
                    escaped = false;
                }
                rest.len()
            }
            TScalarStyle::Plain if !value.contains('\n') && rest.starts_with(value) => value.len(),
            _ => rest.find('\n').unwrap_or(rest.len()),
        }
    }

    /// The diagnostic for a document nested deeper than [`MAX_DEPTH`].
    fn too_deep(&self, at: usize) -> Diagnostic {
        Diagnostic::error(
            "too-deep",
            format!(
                "the {} nests lists and mappings deeper than {MAX_DEPTH} levels",
                self.format
            ),
        )
        .at(Span::new(self.file_id, at, 1))
        .label(format!("level {} starts here", MAX_DEPTH + 1))
        .help(format!(
            "Meridian reads at most {MAX_DEPTH} nested levels, far more than any template, pipeline or buildspec needs: check that this is the right file, or flatten the structure"
        ))
    }

    /// Counts `size` more nodes in the tree (aliases expanded); false, with the fatal diagnostic
    /// set, when that passes [`MAX_NODES`].
    fn count(&mut self, size: usize, at: usize) -> bool {
        self.nodes = self.nodes.saturating_add(size);
        if self.nodes > MAX_NODES {
            self.fatal = Some(
                Diagnostic::error(
                    "too-many-nodes",
                    format!(
                        "the {} holds more than {MAX_NODES} values, aliases expanded",
                        self.format
                    ),
                )
                .at(Span::new(self.file_id, at, 1))
                .help("Meridian reads documents of at most 1,000,000 values: split the file, or use fewer aliases"),
            );
            return false;
        }
        true
    }

    fn push_node(&mut self, node: Node, size: usize, anchor: usize) {
        if anchor != 0 {
            // the copy kept for aliases counts as much as the node
            if !self.count(size, node.span.start as usize) {
                return;
            }
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::Seq { items, size: s, .. }) => {
                items.push(node);
                *s += size;
            }
            Some(Frame::Map {
                entries, key, size: s, ..
            }) => {
                *s += size;
                match key.take() {
                    None => *key = Some(node),
                    Some(k) => entries.push((k, node)),
                }
            }
        }
    }

    /// Applies a short-form tag: intrinsic functions become their JSON form.
    fn apply_tag(&mut self, node: Node, tag: Option<(String, usize)>) -> Node {
        let Some((tag, tag_start)) = tag else {
            return node;
        };
        let span = Span::new(self.file_id, tag_start, node.span.end().saturating_sub(tag_start));
        if let Some(name) = tag.strip_prefix('!').filter(|t| !t.starts_with('!')) {
            let key = match name {
                // The non-specific tag `!`: the value as written, a string for a scalar (YAML 1.2).
                "" => return node,
                "Ref" => "Ref".to_string(),
                "Condition" => "Condition".to_string(),
                n if INTRINSIC_TAGS.contains(&n) => format!("Fn::{n}"),
                _ => {
                    self.diags.push(
                        Diagnostic::error("unknown-tag", format!("unknown tag `{tag}`"))
                            .at(Span::new(self.file_id, tag_start, tag.len()))
                            .help("CloudFormation's short forms are !Ref, !Sub, !GetAtt, !Join, !If, !Select, !Split, !FindInMap, !ImportValue, !Base64, !GetAZs, !Cidr, !Equals, !And, !Or, !Not and !Condition"),
                    );
                    return node;
                }
            };
            let arg = if name == "GetAtt" {
                // `!GetAtt Res.Attr` is the list form `[Res, Attr]` in JSON.
                match node.as_str() {
                    Some(s) if !matches!(node.value, Value::Seq(_)) => {
                        let (res, attr) = s.split_once('.').unwrap_or((s, ""));
                        Node {
                            span: node.span,
                            value: Value::Seq(vec![Node::scalar(res, node.span), Node::scalar(attr, node.span)]),
                        }
                    }
                    _ => node,
                }
            } else {
                node
            };
            return Node {
                span,
                value: Value::Map(vec![(
                    Node::scalar(key, Span::new(self.file_id, tag_start, tag.len())),
                    arg,
                )]),
            };
        }
        // Standard tags (`!!str`, `!!int`, ...): a `!!str` forces a string; the rest are kept as is.
        if tag == "!!str" {
            if let Value::Scalar { text, .. } = node.value {
                return Node {
                    span: node.span,
                    value: Value::Scalar { text, plain: false },
                };
            }
        }
        node
    }

    fn tag_start(&self, start: usize) -> usize {
        // The parser reports the node after its tag; look back on the same line for `!Name `.
        let before = &self.text[..start.min(self.text.len())];
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        before[line_start..]
            .rfind('!')
            .map(|i| {
                // Include a `!!` handle.
                let i = line_start + i;
                if i > 0 && self.text.as_bytes()[i - 1] == b'!' {
                    i - 1
                } else {
                    i
                }
            })
            .unwrap_or(start)
    }
}

fn tag_name(tag: &Option<yaml_rust2::parser::Tag>) -> Option<String> {
    tag.as_ref().map(|t| format!("{}{}", t.handle, t.suffix))
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.fatal.is_some() {
            return;
        }
        let at = self.byte(&mark);
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                if !self.count(1, at) {
                    return;
                }
                let len = self.scalar_len(at, &text, style);
                let plain = style == TScalarStyle::Plain;
                let node = Node {
                    span: Span::new(self.file_id, at, len),
                    value: Value::Scalar { text, plain },
                };
                let tag = tag_name(&tag).map(|t| (t, self.tag_start(at)));
                let node = self.apply_tag(node, tag);
                self.push_node(node, 1, anchor);
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if self.stack.len() >= MAX_DEPTH => {
                self.fatal = Some(self.too_deep(at));
            }
            Event::SequenceStart(anchor, tag) => {
                if !self.count(1, at) {
                    return;
                }
                let tag = tag_name(&tag).map(|t| (t, self.tag_start(at)));
                self.stack.push(Frame::Seq {
                    start: at,
                    items: Vec::new(),
                    anchor,
                    tag,
                    size: 1,
                });
            }
            Event::MappingStart(anchor, tag) => {
                if !self.count(1, at) {
                    return;
                }
                let tag = tag_name(&tag).map(|t| (t, self.tag_start(at)));
                self.stack.push(Frame::Map {
                    start: at,
                    entries: Vec::new(),
                    key: None,
                    anchor,
                    tag,
                    size: 1,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (start, value, anchor, tag, size) = match self.stack.pop() {
                    Some(Frame::Seq {
                        start,
                        items,
                        anchor,
                        tag,
                        size,
                    }) => (start, Value::Seq(items), anchor, tag, size),
                    Some(Frame::Map {
                        start,
                        entries,
                        anchor,
                        tag,
                        size,
                        ..
                    }) => (start, Value::Map(entries), anchor, tag, size),
                    None => return,
                };
                let end = if self.text[..at.min(self.text.len())].ends_with(['}', ']'])
                    || self.text[at.min(self.text.len())..].starts_with(['}', ']'])
                {
                    (at + 1).min(self.text.len())
                } else {
                    self.text[..at.min(self.text.len())].trim_end().len()
                };
                let node = Node {
                    span: Span::new(self.file_id, start, end.saturating_sub(start).max(1)),
                    value,
                };
                let node = self.apply_tag(node, tag);
                self.push_node(node, size, anchor);
            }
            Event::Alias(id) => {
                let size = self.anchors.get(&id).map(|(_, size)| *size).unwrap_or(1);
                self.alias_nodes = self.alias_nodes.saturating_add(size);
                if self.alias_nodes > self.alias_budget {
                    self.fatal = Some(
                        Diagnostic::error(
                            "alias-expansion",
                            format!(
                                "aliases expand this {} to more than {} values (an alias bomb, like the \"billion laughs\")",
                                self.format, self.alias_budget
                            ),
                        )
                        .at(Span::new(self.file_id, at, 1))
                        .label("this alias passes the limit")
                        .help(format!(
                            "aliases may add at most {ALIAS_NODES_PER_BYTE} values per byte of the file ({}); write the repeated part out, or alias it fewer times",
                            self.alias_budget
                        )),
                    );
                    return;
                }
                if !self.count(size, at) {
                    return;
                }
                let node = match self.anchors.get(&id) {
                    Some((n, _)) => n.clone(),
                    None => Node {
                        span: Span::new(self.file_id, at, 1),
                        value: Value::Scalar {
                            text: String::new(),
                            plain: true,
                        },
                    },
                };
                self.push_node(node, size, 0);
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentStart | Event::DocumentEnd | Event::Nothing => {}
        }
    }
}

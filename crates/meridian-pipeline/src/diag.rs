//! Diagnostics: every problem found in a definition, with where it is and how to fix it.
//!
//! Validation collects all of them at once (never stopping at the first), and the CLI prints them
//! with miette (snippet, label, help) or as JSON.

use crate::source::{escape_controls, SourceFile, Sources, Span, MAX_SNIPPET_CHARS};
use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents, SourceSpan, SpanContents,
};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

/// The most characters of a value a message quotes; a longer one is cut, with an ellipsis.
pub const MAX_QUOTED_CHARS: usize = 80;

/// The most characters of a message or help line, whatever it quotes.
pub const MAX_MESSAGE_CHARS: usize = 2000;

/// A value as a message quotes it: at most [`MAX_QUOTED_CHARS`] characters, an ellipsis marking
/// the cut (a 100,000-character name must not become a 100,000-character message).
pub fn clip(value: &str) -> Cow<'_, str> {
    match value.char_indices().nth(MAX_QUOTED_CHARS) {
        None => Cow::Borrowed(value),
        Some((i, _)) => Cow::Owned(format!("{}…", &value[..i])),
    }
}

/// A message as shown: every `quoted` value clipped (see [`clip`]), and the whole at most
/// [`MAX_MESSAGE_CHARS`] characters.
pub fn clip_message(message: &str) -> Cow<'_, str> {
    let long_quote = message
        .split('`')
        .skip(1)
        .step_by(2)
        .any(|q| q.chars().nth(MAX_QUOTED_CHARS).is_some());
    let long = message.chars().nth(MAX_MESSAGE_CHARS).is_some();
    if !long_quote && !long {
        return Cow::Borrowed(message);
    }
    let mut out = String::new();
    let parts: Vec<&str> = message.split('`').collect();
    let last = parts.len() - 1;
    for (i, part) in parts.iter().enumerate() {
        // an odd part is quoted, unless it is the unclosed tail
        if i % 2 == 1 && i < last {
            out.push_str(&clip(part));
        } else {
            out.push_str(part);
        }
        if i < last {
            out.push('`');
        }
    }
    if let Some((i, _)) = out.char_indices().nth(MAX_MESSAGE_CHARS) {
        out.truncate(i);
        out.push('…');
    }
    Cow::Owned(out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A stable short name for the kind of problem (`unknown-input-artifact`, ...).
    pub code: &'static str,
    pub message: String,
    pub span: Option<Span>,
    pub label: Option<String>,
    pub help: Option<String>,
    /// Other places that explain the problem (the first of two duplicates, ...).
    pub related: Vec<(Span, String)>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span: None,
            label: None,
            help: None,
            related: Vec::new(),
        }
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    pub fn at(mut self, span: Span) -> Self {
        self.span = Some(span);
        self
    }

    pub fn at_opt(mut self, span: Option<Span>) -> Self {
        self.span = self.span.or(span);
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn related(mut self, span: Span, label: impl Into<String>) -> Self {
        self.related.push((span, label.into()));
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The JSON form printed by `meridian validate --output json`.
    pub fn to_json(&self, sources: &Sources) -> JsonDiagnostic {
        let (file, line, column, snippet) = match self.span {
            Some(span) => {
                let f = sources.get(span.file);
                let (line, column) = f.line_col(span.start as usize);
                (
                    Some(escape_controls(&f.name).into_owned()),
                    Some(line),
                    Some(column),
                    Some(f.display_snippet(span)),
                )
            }
            None => (None, None, None, None),
        };
        JsonDiagnostic {
            severity: self.severity,
            code: self.code,
            message: escape_controls(&clip_message(&self.message)).into_owned(),
            file,
            line,
            column,
            snippet,
            help: self
                .help
                .as_deref()
                .map(|h| escape_controls(&clip_message(h)).into_owned()),
        }
    }

    /// `file:line:column` of the diagnostic, when it has a place.
    pub fn location(&self, sources: &Sources) -> Option<String> {
        let span = self.span?;
        let f = sources.get(span.file);
        let (l, c) = f.line_col(span.start as usize);
        Some(format!("{}:{l}:{c}", escape_controls(&f.name)))
    }

    /// Renders the diagnostic as miette does: message, `file:line:col`, the snippet with a label,
    /// and the help line.
    pub fn render(&self, sources: &Sources, color: bool) -> String {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_width(100)
            .with_links(false);
        let report = MietteView::new(self, sources);
        let mut out = String::new();
        if handler.render_report(&mut out, &report).is_err() {
            out = format!("{}: {}\n", self.code, escape_controls(&clip_message(&self.message)));
        }
        out
    }
}

#[derive(Debug, Serialize)]
pub struct JsonDiagnostic {
    pub severity: Severity,
    pub code: &'static str,
    pub message: String,
    pub file: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub snippet: Option<String>,
    pub help: Option<String>,
}

/// A diagnostic bound to its file's text, in the shape miette renders.
#[derive(Debug)]
struct MietteView {
    message: String,
    code: String,
    severity: Severity,
    help: Option<String>,
    labels: Vec<LabeledSpan>,
    source: Option<Excerpt>,
}

impl MietteView {
    fn new(d: &Diagnostic, sources: &Sources) -> Self {
        let mut labels = Vec::new();
        let mut help = d.help.clone();
        let mut source = None;
        if let Some(span) = d.span {
            let f = sources.get(span.file);
            let mut spans = vec![(span, d.label.clone(), true)];
            for (rs, text) in &d.related {
                if rs.file == span.file {
                    spans.push((*rs, Some(text.clone()), false));
                } else {
                    let rf = sources.get(rs.file);
                    let (l, c) = rf.line_col(rs.start as usize);
                    let note = format!("{text}: {}:{l}:{c}", rf.name);
                    help = Some(match help {
                        Some(h) => format!("{h}\n({note})"),
                        None => note,
                    });
                }
            }
            let (excerpt, mapped) = Excerpt::new(f, &spans);
            for ((_, label, primary), (start, len)) in spans.into_iter().zip(mapped) {
                let label = label.map(|l| escape_controls(&l).into_owned());
                labels.push(if primary {
                    LabeledSpan::new_primary_with_span(label, (start, len))
                } else {
                    LabeledSpan::new_with_span(label, (start, len))
                });
            }
            source = Some(excerpt);
        }
        MietteView {
            message: escape_controls(&clip_message(&d.message)).into_owned(),
            code: d.code.to_string(),
            severity: d.severity,
            help: help.map(|h| escape_controls(&clip_message(&h)).into_owned()),
            labels,
            source,
        }
    }
}

/// What miette is given of a file: only the lines around the labels (the others are left empty,
/// so line numbers stay right), each at most [`MAX_SNIPPET_CHARS`] characters around its label,
/// with control characters escaped. miette counts columns in bytes; the columns it prints are
/// the file's, in characters, as [`SourceFile::line_col`] gives them.
#[derive(Debug)]
struct Excerpt {
    name: String,
    text: String,
    /// 0-based column in characters in the file, by a label's offset in `text`.
    columns: HashMap<usize, usize>,
}

impl Excerpt {
    /// The excerpt, and each span's `(offset, len)` in it.
    fn new(f: &SourceFile, spans: &[(Span, Option<String>, bool)]) -> (Excerpt, Vec<(usize, usize)>) {
        // the line of each span, and the lines shown around them (miette shows one line of
        // context before and after)
        let mut focus: HashMap<usize, usize> = HashMap::new();
        for (span, _, _) in spans.iter().rev() {
            let start = (span.start as usize).min(f.text.len());
            focus.insert(f.line_index(start), start);
        }
        let mut label_lines: Vec<usize> = focus.keys().copied().collect();
        label_lines.sort_unstable();
        let mut shown: Vec<usize> = label_lines
            .iter()
            .flat_map(|l| [l.saturating_sub(1), *l, l + 1])
            .collect();
        // miette shows two labels in one snippet, with every line between them, when the first
        // one's line count from the top of the file reaches the second (about twice its line)
        for w in label_lines.windows(2) {
            if w[1] <= 2 * w[0] + 4 {
                shown.extend(w[0]..w[1]);
            }
        }
        shown.retain(|l| *l < f.line_count());
        shown.sort_unstable();
        shown.dedup();
        let mut text = String::new();
        // per shown line: (line index, offset of the line in `text`, map of file byte -> text byte)
        let mut maps: HashMap<usize, (usize, Vec<(usize, usize)>)> = HashMap::new();
        let mut next = 0;
        for l in shown {
            while next < l {
                text.push('\n');
                next += 1;
            }
            let range = f.line_range(l);
            let line = &f.text[range.clone()];
            let at = focus.get(&l).map(|o| o - range.start).unwrap_or(0);
            let line_start = text.len();
            let map = display_line(line, at, &mut text);
            maps.insert(l, (line_start, map));
            if l + 1 < f.line_count() {
                text.push('\n');
            }
            next = l + 1;
        }
        let mut columns = HashMap::new();
        let mut mapped = Vec::new();
        for (span, _, _) in spans {
            let start = (span.start as usize).min(f.text.len());
            let l = f.line_index(start);
            let range = f.line_range(l);
            let end = (start + f.snippet(*span).len().max(1)).min(range.end.max(start + 1));
            let (line_start, map) = &maps[&l];
            let find = |b: usize| {
                let rel = b.saturating_sub(range.start);
                match map.binary_search_by_key(&rel, |(o, _)| *o) {
                    Ok(i) => map[i].1,
                    Err(0) => map.first().map(|m| m.1).unwrap_or(0),
                    Err(i) => map[i - 1].1,
                }
            };
            let s = line_start + find(start);
            let e = (line_start + find(end)).max(s + 1);
            columns.insert(s, f.line_col(start).1 - 1);
            mapped.push((s, e - s));
        }
        (
            Excerpt {
                name: escape_controls(&f.name).into_owned(),
                text,
                columns,
            },
            mapped,
        )
    }
}

/// Writes one line as shown into `out`: the [`MAX_SNIPPET_CHARS`] characters around byte `at`
/// (an ellipsis at a cut end), control characters escaped. Returns, for each character
/// boundary shown, its byte offset in the line and in `out` from where the line starts.
fn display_line(line: &str, at: usize, out: &mut String) -> Vec<(usize, usize)> {
    let start_len = out.len();
    let total = line.chars().count();
    let (from, to) = if total <= MAX_SNIPPET_CHARS {
        (0, total)
    } else {
        let at_char = line[..floor_boundary(line, at)].chars().count();
        let from = at_char
            .saturating_sub(MAX_SNIPPET_CHARS / 2)
            .min(total - MAX_SNIPPET_CHARS);
        (from, from + MAX_SNIPPET_CHARS)
    };
    let mut map = Vec::new();
    if from > 0 {
        out.push('…');
    }
    let mut chars = line.char_indices().skip(from).peekable();
    for _ in from..to {
        let Some((i, c)) = chars.next() else { break };
        map.push((i, out.len() - start_len));
        if crate::source::is_hostile_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    let end = chars.peek().map(|(i, _)| *i).unwrap_or(line.len());
    map.push((end, out.len() - start_len));
    if to < total {
        out.push('…');
    }
    map
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl miette::SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner = self.text.read_span(span, context_lines_before, context_lines_after)?;
        let column = match self.columns.get(&span.offset()) {
            Some(c) if context_lines_before == 0 => *c,
            _ => inner.column(),
        };
        Ok(Box::new(
            MietteSpanContents::new_named(
                self.name.clone(),
                inner.data(),
                *inner.span(),
                inner.line(),
                column,
                inner.line_count(),
            )
            .with_language("yaml"),
        ))
    }
}

impl fmt::Display for MietteView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for MietteView {}

impl miette::Diagnostic for MietteView {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(&self.code))
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.labels.clone().into_iter()))
        }
    }
}

//! Diagnostics: every problem found in a definition, with where it is and how to fix it.
//!
//! Validation collects all of them at once (never stopping at the first), and the CLI prints them
//! with miette (snippet, label, help) or as JSON.

use crate::source::{Sources, Span};
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};
use serde::Serialize;
use std::fmt;

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
                    Some(f.name.clone()),
                    Some(line),
                    Some(column),
                    Some(f.snippet(span).to_string()),
                )
            }
            None => (None, None, None, None),
        };
        JsonDiagnostic {
            severity: self.severity,
            code: self.code,
            message: self.message.clone(),
            file,
            line,
            column,
            snippet,
            help: self.help.clone(),
        }
    }

    /// `file:line:column` of the diagnostic, when it has a place.
    pub fn location(&self, sources: &Sources) -> Option<String> {
        let span = self.span?;
        let f = sources.get(span.file);
        let (l, c) = f.line_col(span.start as usize);
        Some(format!("{}:{l}:{c}", f.name))
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
            out = format!("{}: {}\n", self.code, self.message);
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
    source: Option<NamedSource<String>>,
}

impl MietteView {
    fn new(d: &Diagnostic, sources: &Sources) -> Self {
        let mut labels = Vec::new();
        let mut help = d.help.clone();
        let mut source = None;
        if let Some(span) = d.span {
            let f = sources.get(span.file);
            source = Some(NamedSource::new(f.name.clone(), f.text.clone()).with_language("yaml"));
            let len = f.snippet(span).len().max(1);
            labels.push(LabeledSpan::new_primary_with_span(
                d.label.clone(),
                (span.start as usize, len),
            ));
            for (rs, text) in &d.related {
                if rs.file == span.file {
                    let len = f.snippet(*rs).len().max(1);
                    labels.push(LabeledSpan::new_with_span(Some(text.clone()), (rs.start as usize, len)));
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
        }
        MietteView {
            message: d.message.clone(),
            code: d.code.to_string(),
            severity: d.severity,
            help,
            labels,
            source,
        }
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

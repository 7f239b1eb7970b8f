//! Source files and spans: every element of a definition remembers where it was written, so that
//! a diagnostic can name the file, line and column and show the snippet.

use std::borrow::Cow;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::diag::Diagnostic;

/// Identifies a file in a [`Sources`] set.
pub type FileId = u32;

/// A byte range in one source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub len: u32,
}

impl Span {
    pub fn new(file: FileId, start: usize, len: usize) -> Self {
        Span {
            file,
            start: start as u32,
            len: len as u32,
        }
    }
    pub fn end(&self) -> usize {
        (self.start + self.len) as usize
    }
}

/// One file's text and name as the user wrote it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub path: Option<PathBuf>,
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, path: Option<PathBuf>, text: String) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile {
            name: name.into(),
            path,
            text,
            line_starts,
        }
    }

    /// 1-based line and column (column counted in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line];
        let col = self.text[start..floor_char_boundary(&self.text, offset)]
            .chars()
            .count();
        (line + 1, col + 1)
    }

    /// Byte offset of a 1-based line and a 1-based column counted in bytes (as serde_json gives
    /// them), moved back to a character boundary.
    pub fn offset_of_byte_col(&self, line: usize, col: usize) -> usize {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        let end = self.line_starts.get(line).copied().unwrap_or(self.text.len());
        floor_char_boundary(&self.text, (start + col.saturating_sub(1)).min(end))
    }

    /// The 0-based index of the line holding a byte offset.
    pub fn line_index(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset.min(self.text.len())) {
            Ok(i) => i,
            Err(i) => i - 1,
        }
    }

    /// The byte range of a 0-based line, without its line break.
    pub fn line_range(&self, index: usize) -> std::ops::Range<usize> {
        let start = self.line_starts.get(index).copied().unwrap_or(self.text.len());
        let end = self
            .line_starts
            .get(index + 1)
            .map(|e| e - 1)
            .unwrap_or(self.text.len());
        start..end.max(start)
    }

    /// The number of lines.
    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// The snippet as shown to a user: control characters escaped, and at most
    /// [`MAX_SNIPPET_CHARS`] characters (an ellipsis marks what was cut).
    pub fn display_snippet(&self, span: Span) -> String {
        let s = self.snippet(span);
        let mut out: String = escape_controls(&s.chars().take(MAX_SNIPPET_CHARS).collect::<String>()).into_owned();
        if s.chars().nth(MAX_SNIPPET_CHARS).is_some() {
            out.push('…');
        }
        out
    }

    /// Byte offset of a 1-based line and column (column in characters).
    pub fn offset_of(&self, line: usize, col: usize) -> usize {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        let rest = &self.text[start..];
        rest.char_indices()
            .nth(col.saturating_sub(1))
            .map(|(i, _)| start + i)
            .unwrap_or(self.text.len())
    }

    /// The text of the span, cut at the end of its first line.
    pub fn snippet(&self, span: Span) -> &str {
        let start = floor_char_boundary(&self.text, span.start as usize);
        let end = floor_char_boundary(&self.text, span.end().max(start));
        let s = &self.text[start..end];
        s.split('\n').next().unwrap_or("").trim_end()
    }
}

/// The longest part of a line a diagnostic shows (a minified file can be one 20 MB line).
pub const MAX_SNIPPET_CHARS: usize = 200;

/// Characters never printed raw: control characters (NUL, ESC, carriage return, ...) but tab and
/// line feed, and the invisible formatting characters that reorder or hide text (U+202E
/// RIGHT-TO-LEFT OVERRIDE and its kin, zero-width characters, the byte order mark).
pub fn is_hostile_char(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Text with every [`is_hostile_char`] written as a Rust escape (`\u{202e}`), so that a message
/// or snippet shows what the file holds without a terminal acting on it.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_hostile_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_hostile_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The largest definition file (pipeline, template, buildspec) Meridian reads: 10 MiB, ten times
/// the largest template CloudFormation accepts (1 MB from S3; 51,200 bytes inline).
pub const MAX_INPUT_BYTES: u64 = 10 * 1024 * 1024;

/// Why a definition file could not be read as text.
#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    /// Over the limit; `size` is the file's real size when the file system knows it.
    TooLarge {
        size: Option<u64>,
        limit: u64,
    },
    /// Not UTF-8 (or holding a NUL byte) at `offset`; `text` is the file read lossily.
    NotText {
        offset: usize,
        nul: bool,
        text: String,
    },
}

impl ReadError {
    /// The diagnostic for a file named `name`. A `NotText` error adds the file (read lossily) to
    /// `sources` so that the diagnostic points at the line.
    pub fn to_diagnostic(self, name: &str, path: Option<&Path>, sources: &mut Sources) -> Diagnostic {
        let shown = escape_controls(name).into_owned();
        match self {
            ReadError::Io(e) => Diagnostic::error("unreadable", format!("cannot read `{shown}`: {e}"))
                .help("check the path and the file's permissions"),
            ReadError::TooLarge { size, limit } => Diagnostic::error(
                "too-large",
                match size {
                    Some(size) => format!("`{shown}` is {size} bytes, over Meridian's limit of {limit} bytes for a definition file"),
                    None => format!("`{shown}` holds more than {limit} bytes, Meridian's limit for a definition file"),
                },
            )
            .help("name the definition file itself: CloudFormation accepts templates of at most 1 MB (51,200 bytes inline), and Meridian reads files of up to 10 MiB"),
            ReadError::NotText { offset, nul, text } => {
                let file = SourceFile::new(name, path.map(Path::to_path_buf), text);
                let (line, _) = file.line_col(offset);
                let id = sources.add(file);
                let message = if nul {
                    format!("`{shown}` is not UTF-8 text at byte offset {offset} (line {line}): it holds a NUL byte")
                } else {
                    format!("`{shown}` is not UTF-8 text at byte offset {offset} (line {line})")
                };
                Diagnostic::error("not-text", message)
                    .at(Span::new(id, offset, 1))
                    .help("definition files are UTF-8 text: check that this is the right file (not a binary or an archive), or convert it (`iconv -t UTF-8`)")
            }
        }
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::TooLarge {
                size: Some(size),
                limit,
            } => {
                write!(f, "the file is {size} bytes, over Meridian's limit of {limit} bytes")
            }
            ReadError::TooLarge { size: None, limit } => {
                write!(f, "the file holds more than {limit} bytes, Meridian's limit")
            }
            ReadError::NotText { offset, nul, text } => {
                let line = text.as_bytes()[..(*offset).min(text.len())]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count()
                    + 1;
                write!(f, "not UTF-8 text at byte offset {offset} (line {line})")?;
                if *nul {
                    write!(f, ": it holds a NUL byte")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ReadError {}

/// Reads a definition file as text, reading at most `limit + 1` bytes whatever the file is
/// (`/dev/zero`, a pipe), and refusing what is not UTF-8 text.
pub fn read_text(path: &Path, limit: u64) -> Result<String, ReadError> {
    // A named pipe with no writer would block the open for ever: refuse it before opening.
    #[cfg(unix)]
    if let Ok(m) = std::fs::metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        let t = m.file_type();
        if t.is_fifo() || t.is_socket() {
            return Err(ReadError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "it is a named pipe or a socket, not a file: give the file itself",
            )));
        }
    }
    let f = std::fs::File::open(path).map_err(ReadError::Io)?;
    let known = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
    if let Some(size) = known.filter(|s| *s > limit) {
        return Err(ReadError::TooLarge {
            size: Some(size),
            limit,
        });
    }
    let mut bytes = Vec::with_capacity(known.unwrap_or(0).min(limit) as usize);
    f.take(limit + 1).read_to_end(&mut bytes).map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { size: None, limit });
    }
    text_of(bytes)
}

/// Bytes as text: UTF-8 without NUL bytes.
pub fn text_of(mut bytes: Vec<u8>) -> Result<String, ReadError> {
    // A UTF-8 byte order mark (editors on Windows write one) is not part of the text.
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        bytes.drain(..3);
    }
    match String::from_utf8(bytes) {
        Ok(text) => match text.find('\0') {
            Some(offset) => Err(ReadError::NotText {
                offset,
                nul: true,
                text,
            }),
            None => Ok(text),
        },
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            Err(ReadError::NotText {
                offset,
                nul: false,
                text,
            })
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// All files read for one command, so that spans from different files can be resolved.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
}

impl Sources {
    pub fn add(&mut self, file: SourceFile) -> FileId {
        self.files.push(file);
        (self.files.len() - 1) as FileId
    }
    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id as usize]
    }
    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let f = SourceFile::new("t", None, "ab\né: x\n".into());
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(3), (2, 1));
        let x = f.text.find('x').unwrap();
        assert_eq!(f.line_col(x), (2, 4));
        assert_eq!(f.offset_of(2, 4), x);
        assert_eq!(f.snippet(Span::new(0, 3, 100)), "é: x");
    }
}

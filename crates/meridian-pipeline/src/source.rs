//! Source files and spans: every element of a definition remembers where it was written, so that
//! a diagnostic can name the file, line and column and show the snippet.

use std::path::PathBuf;

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

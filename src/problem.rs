//! Problems found in a config or rules file, reported the way a compiler
//! reports errors: `file:line: key: message`, so the operator can jump to it.

use std::fmt;
use std::path::{Path, PathBuf};

/// How bad a problem is: errors make `check` exit 2, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in one file, located as precisely as we can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The dotted key path (`feeds[2].url`), when the problem is about a key.
    pub key: Option<String>,
    pub message: String,
}

impl Problem {
    pub fn error(file: &Path, line: Option<usize>, key: Option<String>, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Error,
            file: file.to_path_buf(),
            line,
            key,
            message: message.into(),
        }
    }

    pub fn warning(
        file: &Path,
        line: Option<usize>,
        key: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        Problem {
            severity: Severity::Warning,
            file: file.to_path_buf(),
            line,
            key,
            message: message.into(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// A toml/serde error as a located problem: file, line, and the key
    /// (`[[tag.rule]]` + `within = "x"` → `tag.rule.within`).
    pub fn from_toml_error(path: &Path, text: &str, e: &toml::de::Error) -> Problem {
        let line = e.span().map(|s| line_of_offset(text, s.start));
        let key = e.span().and_then(|s| key_at(text, s.start));
        Problem::error(path, line, key, e.message().trim().to_string())
    }
}

/// The key written on the line holding `offset`, prefixed by the table
/// header above it.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let start = text[..offset.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?;
    let table = text[..start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    let key = line.split('=').next()?.trim();
    if key.is_empty() || key.starts_with('[') || !line.contains('=') {
        return table;
    }
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_string(),
    })
}

/// 1-based line number of a byte offset in `text`.
pub fn line_of_offset(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Line numbers of byte offsets in one text, from one pass over it, for a
/// reader that notes the line of every entry it reads (the rules checker
/// keeps each term's line for later messages): counting newlines from the
/// start for each of 2,000 terms made loading the shipped rules quadratic.
pub struct LineIndex {
    /// Byte offset of every newline, ascending.
    newlines: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        LineIndex {
            newlines: (text.bytes().enumerate())
                .filter_map(|(i, b)| (b == b'\n').then_some(i))
                .collect(),
        }
    }

    /// 1-based line number of a byte offset, as [`line_of_offset`].
    pub fn line_of(&self, offset: usize) -> usize {
        self.newlines.partition_point(|&nl| nl < offset) + 1
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": {kind}: ")?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// A set of problems that stopped a file from loading.
#[derive(Debug, Clone)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_index_numbers_every_offset_as_counting_does() {
        for text in ["", "\n", "one", "a\nb\n\nc", "\n\nx\ny\n", "ժ\nԱ\r\nb"] {
            let index = LineIndex::new(text);
            for offset in 0..=text.len() + 2 {
                assert_eq!(
                    index.line_of(offset),
                    line_of_offset(text, offset),
                    "{text:?} at {offset}"
                );
            }
        }
    }
}

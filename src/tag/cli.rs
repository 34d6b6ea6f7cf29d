//! `cstowatch tag [FILE]`: JSON Lines in (`{"id"?, "url"?, "title",
//! "summary"?, "content"?}`), one JSON line out per input line, in order:
//! `{"id", "url", "relevant", "score", "tags", "matches": [{"tag", "term",
//! "field"}]}`. With `--explain`, the same decisions written for people.
//!
//! A bad input line does not stop the run: it gets `{"line": N, "error":
//! "..."}` in its place (so output stays aligned with input), a message on
//! stderr, and counts as an error so the command can exit 1 at the end.
//! Blank lines are skipped, as JSON Lines readers do.

use std::io::{BufRead, Write};

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

use super::{Document, Rules, Tagging, explain};

/// What a `tag` run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TagRunSummary {
    /// Items tagged (input lines that were valid).
    pub items: usize,
    /// Of those, how many are relevant.
    pub relevant: usize,
    /// Input lines that were not valid items.
    pub errors: usize,
}

#[derive(Serialize)]
struct OutputLine<'a> {
    id: &'a Value,
    url: &'a Value,
    #[serde(flatten)]
    tagging: &'a Tagging,
}

#[derive(Serialize)]
struct ErrorLine<'a> {
    line: usize,
    error: &'a str,
}

/// Tags every JSON line of `input`, writing results to `out` (see the module
/// documentation). Errors are only for failures to read or write.
pub fn run_tag_command(
    rules: &Rules,
    input: impl BufRead,
    out: &mut impl Write,
    explain: bool,
) -> anyhow::Result<TagRunSummary> {
    let mut summary = TagRunSummary::default();
    for (i, line) in input.lines().enumerate() {
        let number = i + 1;
        let line = line.with_context(|| format!("reading input line {number}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let item = match parse_item(&line) {
            Ok(item) => item,
            Err(message) => {
                summary.errors += 1;
                eprintln!("cstowatch tag: line {number}: {message}");
                if explain {
                    writeln!(out, "line {number}: error: {message}\n")?;
                } else {
                    serde_json::to_writer(
                        &mut *out,
                        &ErrorLine {
                            line: number,
                            error: &message,
                        },
                    )?;
                    writeln!(out)?;
                }
                continue;
            }
        };
        let doc = Document {
            title: &item.title,
            summary: &item.summary,
            content: &item.content,
        };
        summary.items += 1;
        if explain {
            let label = match &item.id {
                Value::String(s) => s.clone(),
                Value::Null => format!("line {number}"),
                other => other.to_string(),
            };
            let (tagging, text) = explain::explain(rules, &label, &doc);
            summary.relevant += usize::from(tagging.relevant);
            writeln!(out, "{text}")?;
        } else {
            let tagging = rules.tag(&doc);
            summary.relevant += usize::from(tagging.relevant);
            serde_json::to_writer(
                &mut *out,
                &OutputLine {
                    id: &item.id,
                    url: &item.url,
                    tagging: &tagging,
                },
            )?;
            writeln!(out)?;
        }
    }
    out.flush().context("writing output")?;
    Ok(summary)
}

struct InputItem {
    id: Value,
    url: Value,
    title: String,
    summary: String,
    content: String,
}

fn parse_item(line: &str) -> Result<InputItem, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(mut map) = value else {
        return Err("expected a JSON object like {\"title\": \"...\"}".to_string());
    };
    let mut text = |key: &str, required: bool| -> Result<String, String> {
        match map.remove(key) {
            Some(Value::String(s)) => Ok(s),
            None | Some(Value::Null) if !required => Ok(String::new()),
            None | Some(Value::Null) => Err(format!("\"{key}\" is missing; every item needs a title")),
            Some(other) => Err(format!("\"{key}\" must be a string, not {}", kind(&other))),
        }
    };
    let title = text("title", true)?;
    let summary = text("summary", false)?;
    let content = text("content", false)?;
    Ok(InputItem {
        id: map.remove("id").unwrap_or(Value::Null),
        url: map.remove("url").unwrap_or(Value::Null),
        title,
        summary,
        content,
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

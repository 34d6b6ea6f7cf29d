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
    tagging: &'a Tagging<'a>,
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn rules() -> Rules {
        let text = r#"
            [[tag]]
            name = "csto"
            primary = true
            terms = ["CSTO", "ОДКБ"]
            [[tag]]
            name = "russia"
            terms = ["Russia"]
        "#;
        match Rules::from_toml(text, Path::new("test-rules.toml")) {
            Ok((r, _)) => r,
            Err(p) => panic!("{p}"),
        }
    }

    fn run(input: &str, explain: bool) -> (TagRunSummary, String) {
        let mut out = Vec::new();
        let summary = run_tag_command(&rules(), input.as_bytes(), &mut out, explain).expect("run");
        (summary, String::from_utf8(out).expect("utf-8 output"))
    }

    #[test]
    fn one_output_line_per_input_line_in_order_with_errors_in_place() {
        let input = concat!(
            "{\"id\": \"a\", \"url\": \"https://x.test/a\", \"title\": \"CSTO summit\", \"summary\": \"Russia\"}\n",
            "not json\n",
            "\n",
            "{\"id\": 7, \"summary\": \"no title\"}\n",
            "{\"title\": \"Weather\", \"content\": null}\n",
            "{\"title\": 3}\n",
        );
        let (summary, out) = run(input, false);
        assert_eq!(
            summary,
            TagRunSummary {
                items: 2,
                relevant: 1,
                errors: 3
            }
        );
        let lines: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect();
        assert_eq!(lines.len(), 5, "{out}");
        assert_eq!(lines[0]["id"], "a");
        assert_eq!(lines[0]["url"], "https://x.test/a");
        assert_eq!(lines[0]["relevant"], true);
        assert_eq!(lines[0]["score"], 1.5);
        assert_eq!(lines[0]["tags"], serde_json::json!(["csto", "russia"]));
        assert_eq!(
            lines[0]["matches"],
            serde_json::json!([
                {"tag": "csto", "term": "CSTO", "field": "title"},
                {"tag": "russia", "term": "Russia", "field": "summary"},
            ])
        );
        assert_eq!(lines[1]["line"], 2);
        assert!(
            lines[1]["error"]
                .as_str()
                .is_some_and(|e| e.contains("not valid JSON"))
        );
        assert_eq!(lines[2]["line"], 4);
        assert!(
            lines[2]["error"]
                .as_str()
                .is_some_and(|e| e.contains("\"title\" is missing"))
        );
        assert_eq!(lines[3]["id"], Value::Null);
        assert_eq!(lines[3]["url"], Value::Null);
        assert_eq!(lines[3]["relevant"], false);
        assert_eq!(lines[3]["tags"], serde_json::json!([]));
        assert_eq!(lines[4]["line"], 6);
        assert!(
            lines[4]["error"]
                .as_str()
                .is_some_and(|e| e.contains("must be a string"))
        );
    }

    #[test]
    fn explain_shows_tags_score_terms_and_snippets() {
        let input = "{\"id\": \"x-1\", \"title\": \"Quiet week\", \"summary\": \"Leaders of the ОДКБ met in Minsk on Friday.\"}\n";
        let (summary, out) = run(input, true);
        assert_eq!(summary.relevant, 1);
        assert!(out.starts_with("x-1: RELEVANT, score 1.00"), "{out}");
        assert!(out.contains("tags: csto"), "{out}");
        assert!(
            out.contains("csto (primary): 1.00 of 1.00 needed, given"),
            "{out}"
        );
        assert!(
            out.contains("\"ОДКБ\" in summary: Leaders of the [ОДКБ] met in Minsk on Friday."),
            "{out}"
        );
    }
}

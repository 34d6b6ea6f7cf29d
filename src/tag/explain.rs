//! `cstowatch tag --explain`: the tagger's decision written for people —
//! tags, score, and for every tag with evidence, each contribution with the
//! terms that made it and a snippet of the text around them.

use std::fmt::Write as _;

use super::Rules;
use super::engine::Evaluation;
use super::rules::EntityTermKind;
use super::rules::TagSpec;
use super::score::{Evidence, Reason};
use super::{Document, Tagging};

/// Characters of context shown on each side of a hit.
const CONTEXT_CHARS: usize = 50;

/// Writes the explanation of one item. `label` names the item (its id, or
/// its line number). Returns the decision with its explanation.
pub fn explain<'r>(rules: &'r Rules, label: &str, doc: &Document) -> (Tagging<'r>, String) {
    let eval = rules.evaluate(doc);
    let tagging = rules.tagging(doc, &eval);
    let text = render(rules, label, doc, &eval, &tagging);
    (tagging, text)
}

fn render(rules: &Rules, label: &str, doc: &Document, eval: &Evaluation, tagging: &Tagging) -> String {
    let mut out = String::new();
    let verdict = if tagging.relevant {
        "RELEVANT"
    } else {
        "not relevant"
    };
    let _ = writeln!(out, "{label}: {verdict}, score {:.2}", tagging.score);
    let _ = writeln!(out, "  title: {}", one_line(doc.title, 120));
    if tagging.tags.is_empty() {
        let _ = writeln!(out, "  tags: (none)");
    } else {
        let _ = writeln!(out, "  tags: {}", tagging.tags.join(", "));
    }
    let mut entities: Vec<&str> = Vec::new();
    for occ in &eval.occurrences {
        if let Some(e) = rules
            .term(occ.term)
            .entity
            .filter(|e| e.kind == EntityTermKind::Name)
        {
            let name = rules.entity_name(e.entity);
            if !entities.contains(&name) {
                entities.push(name);
            }
        }
    }
    if !entities.is_empty() {
        let _ = writeln!(
            out,
            "  entities (their names' words count for no tag): {}",
            entities.join(", ")
        );
    }
    for &t in rules.order() {
        let outcome = &eval.outcomes[t];
        if eval.evidence(outcome).is_empty() && !outcome.vetoed {
            continue;
        }
        let spec = rules.tag_spec(t);
        let status = match (outcome.given, outcome.vetoed) {
            (true, _) => "given",
            (false, true) => "vetoed by an `unless` term",
            (false, false) => "below threshold",
        };
        let kind = if spec.primary { "primary" } else { "secondary" };
        let _ = writeln!(
            out,
            "  {} ({kind}): {:.2} of {:.2} needed, {status}",
            spec.name, outcome.score, spec.threshold
        );
        for ev in eval.evidence(outcome) {
            let what = describe(spec, ev);
            let _ = writeln!(out, "    {:+.2} {} {what}", ev.points, ev.zone.as_str());
            for &o in eval.picked(ev) {
                let occ = &eval.occurrences[o as usize];
                let (start, end) = eval.original_range(doc, occ);
                let _ = writeln!(
                    out,
                    "        {:?} in {}: {}",
                    rules.term(occ.term).written,
                    occ.field.as_str(),
                    snippet(doc.field(occ.field), start, end)
                );
            }
        }
    }
    out
}

/// What one contribution to a tag's score was, in words.
fn describe(spec: &TagSpec, ev: &Evidence) -> String {
    match ev.reason {
        Reason::Mentions(1) => "1 mention".to_string(),
        Reason::Mentions(n) => format!("{n} mentions"),
        Reason::Rule(r) => match &spec.rules[r].note {
            Some(note) => format!("rule {}: {note}", r + 1),
            None => format!("rule {}", r + 1),
        },
        Reason::Body {
            raw,
            diminished,
            covered,
            segments,
            paragraphs,
            factor,
        } => format!(
            "salience: body points {raw:.2}, {diminished:.2} after diminishing returns, \
                     × {factor:.2} for the subject in {covered} of {segments} body {}",
            if paragraphs { "paragraphs" } else { "segments" }
        ),
    }
}

/// Where an item stands against the relevance line: its primary tag with
/// the highest score above (or least below) its threshold, and the largest
/// contributions to that score. What `cstowatch review` lists.
#[derive(Debug, Clone, PartialEq)]
pub struct Margin {
    pub tag: String,
    pub score: f64,
    pub threshold: f64,
    /// The tag was given (so the item is relevant).
    pub given: bool,
    /// Contributions, largest first ("+0.50 title rule 3: ... [Tavush, Baku]").
    pub reasons: Vec<String>,
}

impl Margin {
    /// Score minus threshold: ≥ 0 passed, < 0 missed.
    pub fn distance(&self) -> f64 {
        self.score - self.threshold
    }
}

/// The item's [`Margin`]; `None` when no primary tag has any evidence.
pub fn primary_margin(rules: &Rules, doc: &Document) -> Option<Margin> {
    let eval = rules.evaluate(doc);
    let (tag, outcome) = rules
        .order()
        .iter()
        .map(|&t| (t, &eval.outcomes[t]))
        // A vetoed tag was decided by an `unless` term, not by its threshold.
        .filter(|(t, o)| rules.tag_spec(*t).primary && !o.vetoed && !eval.evidence(o).is_empty())
        .max_by(|(a, x), (b, y)| {
            let da = x.score - rules.tag_spec(*a).threshold;
            let db = y.score - rules.tag_spec(*b).threshold;
            da.total_cmp(&db)
        })?;
    let spec = rules.tag_spec(tag);
    let mut evidence: Vec<&Evidence> = eval.evidence(outcome).iter().collect();
    evidence.sort_by(|a, b| b.points.abs().total_cmp(&a.points.abs()));
    let reasons = evidence
        .into_iter()
        .map(|ev| {
            let mut terms: Vec<&str> = Vec::new();
            for &o in eval.picked(ev) {
                let term = rules.term(eval.occurrences[o as usize].term).written.as_str();
                if !terms.contains(&term) {
                    terms.push(term);
                }
            }
            let terms = if terms.is_empty() {
                String::new()
            } else {
                format!(" [{}]", terms.join(", "))
            };
            format!(
                "{:+.2} {} {}{terms}",
                ev.points,
                ev.zone.as_str(),
                describe(spec, ev)
            )
        })
        .collect();
    Some(Margin {
        tag: spec.name.clone(),
        score: outcome.score,
        threshold: spec.threshold,
        given: outcome.given,
        reasons,
    })
}

/// The text around `start..end`, with the hit in brackets, on one line.
fn snippet(text: &str, start: usize, end: usize) -> String {
    let before: String = {
        let chars: Vec<char> = text[..start].chars().rev().take(CONTEXT_CHARS).collect();
        chars.into_iter().rev().collect()
    };
    let after: String = text[end..].chars().take(CONTEXT_CHARS).collect();
    let lead = if before.len() < start { "…" } else { "" };
    let tail = if after.len() < text.len() - end { "…" } else { "" };
    one_line(
        &format!("{lead}{before}[{}]{after}{tail}", &text[start..end]),
        usize::MAX,
    )
}

fn one_line(text: &str, max_chars: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max_chars {
        let cut: String = flat.chars().take(max_chars).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tag::Document;

    #[test]
    fn snippet_brackets_the_hit_and_marks_cuts() {
        let text = "a".repeat(80) + " CSTO " + &"b".repeat(80);
        let start = text.find("CSTO").unwrap();
        let s = snippet(&text, start, start + 4);
        assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
        assert!(s.contains(" [CSTO] "), "{s}");
        assert_eq!(snippet("the CSTO", 4, 8), "the [CSTO]");
    }

    #[test]
    fn explain_shows_the_salience_adjustment_and_the_entities_found() {
        let (rules, _) = Rules::from_toml(
            r#"
            [[tag]]
            name = "t"
            primary = true
            terms = ["Karabakh", "Zangezur"]
            [[entity]]
            name = "the combine"
            names = ["Zangezur combine"]
            "#,
            std::path::Path::new("test-rules.toml"),
        )
        .unwrap_or_else(|p| panic!("{p}"));
        let filler = "Officials said the plan would be discussed again next week.";
        let content = format!("{filler}\n\nKarabakh was mentioned here.\n\n{filler}\n\n{filler}\n\n{filler}");
        let doc = Document {
            title: "Zangezur combine budget",
            summary: "A summary.",
            content: &content,
        };
        let (tagging, text) = explain(&rules, "x", &doc);
        assert!(!tagging.relevant);
        assert!(
            text.contains("entities (their names' words count for no tag): the combine"),
            "{text}"
        );
        assert!(
            text.contains("body salience: body points 0.50, 0.50 after diminishing returns, × 0.40 for the subject in 1 of 5 body paragraphs"),
            "{text}"
        );
        assert!(text.contains("-0.30 body salience"), "{text}");
    }
}

//! The rules file (`config/rules.toml`): its format, and its validation into
//! a checked [`Spec`] the engine compiles. Every error and warning names the
//! file, the line and the key, so `cstowatch check` can point at it.
//!
//! The format, in short (the shipped file explains each block at length):
//!
//! ```toml
//! [scoring]
//! threshold = 1.0                 # score a tag needs, unless it sets its own
//! title = 1.5                     # field weights: a hit counts weight × field weight
//! summary = 1.0
//! content = 0.5
//! mention_gap = 2                 # hits of one tag this few words apart count once
//!
//! [lists]                         # named term lists, used as "@name"
//! armenian-side = ["@armenia", "Tavush", "Syunik"]
//!
//! [[tag]]
//! name = "csto"
//! primary = true                  # primary tags decide relevance
//! weight = 1.0                    # each mention of a term below
//! terms = ["CSTO", "Collective Security Treaty Organization", "ОДКБ"]
//! except = ["fellow members of"]  # a hit inside or just after these does not count
//! except_before = 3               # "just after" = within this many words
//! unless = ["..."]                # any of these anywhere: the tag is not given
//!
//! [[tag.rule]]                    # co-occurrence: every slot must match
//! all = ["@armenian-side", "@azerbaijani-side", ["clash*", "shelling"]]
//! within = 20                     # ...in one field, within 20 words
//! fields = ["title", "summary"]   # default: all three
//! unless = ["..."]                # any of these in the same field: the rule does not fire
//! weight = 1.0                    # may be negative: a penalty
//! ```
//!
//! A term is a word or phrase, matched on whole words after normalisation
//! (see `normalise`); a trailing `*` makes the last word a stem
//! (`Azerbaijan*` matches "Azerbaijani" and "Azerbaijan's"). A term written
//! `@name` stands for every term of that list or tag.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::Field;
use super::normalise::{is_word_char, normalise};
use crate::problem::{LineIndex, Problem, Problems};

/// Field weights and thresholds that apply to every tag.
#[derive(Debug, Clone)]
pub(crate) struct Scoring {
    pub threshold: f64,
    pub field_weights: [f64; 3],
    pub mention_gap: u32,
    pub salience: Salience,
}

/// How the body beyond the lead counts (see the shipped file's header).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Salience {
    /// Without a summary, this many first words of the body are the lead
    /// and count at the summary's weight.
    pub lead_words: u32,
    /// A tag's body points count in full up to this much...
    pub body_full: f64,
    /// ...then with diminishing returns, never above this.
    pub body_max: f64,
    /// The share of the body's segments that must hold the tag's subject
    /// for its body points to count in full; below it they shrink in
    /// proportion.
    pub body_share: f64,
    /// Words per segment of the body.
    pub segment_words: u32,
}

impl Default for Salience {
    fn default() -> Salience {
        Salience {
            lead_words: 40,
            body_full: 1.0,
            body_max: 2.0,
            body_share: 0.5,
            segment_words: 30,
        }
    }
}

/// One literal term as written in the file, checked and normalised.
#[derive(Debug, Clone)]
pub(crate) struct TermSpec {
    /// As written (for explanations), without surrounding spaces.
    pub written: String,
    /// Normalised, without the wildcard.
    pub pattern: String,
    /// Ends in `*`: the last word may continue.
    pub wildcard: bool,
    /// Hits do not count when an `except` phrase of the owning tag covers them.
    pub except: Option<Except>,
    /// A name or short name of an `[[entity]]`.
    pub entity: Option<EntityTerm>,
}

/// A term that names an entity (a company, club or brand built on a place
/// name): its hits void every other term's hits they overlap.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EntityTerm {
    /// Index of the entity.
    pub entity: u32,
    pub kind: EntityTermKind,
}

/// What an entity's term is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntityTermKind {
    /// A full name ("Qarabag FK"): it voids the hits it overlaps.
    Name,
    /// A short name ("Qarabag"): it voids the hits it overlaps in items
    /// where a full name or a context term of the entity occurs.
    Short,
    /// A word that shows the entity is meant ("Champions League"); it
    /// voids nothing itself.
    Context,
}

/// An `[[entity]]`, checked.
#[derive(Debug, Clone)]
pub(crate) struct EntitySpec {
    pub name: String,
}

/// A tag's `except` phrases as they apply to one of its terms.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Except {
    pub vocab: usize,
    pub before: u32,
}

/// A tag, checked. Its vocabularies (and its rules') index
/// [`Spec::vocabs`]; once compiled, they are the numbers scoring groups
/// hits under (see `compile::number_scored_vocabularies`).
#[derive(Debug, Clone)]
pub(crate) struct TagSpec {
    pub name: String,
    pub primary: bool,
    pub threshold: f64,
    pub weight: f64,
    /// The vocabulary of its own `terms`.
    pub terms: usize,
    pub unless: Option<usize>,
    /// Hits that mark a body segment as being about the tag (its own terms
    /// when the file names none).
    pub subject: usize,
    pub rules: Vec<RuleSpec>,
}

/// A co-occurrence rule, checked.
#[derive(Debug, Clone)]
pub(crate) struct RuleSpec {
    pub note: Option<String>,
    pub slots: Vec<usize>,
    pub within: Option<u32>,
    pub weight: f64,
    pub fields: [bool; 3],
    pub unless: Option<usize>,
    /// The rule fires only on items given this tag (an index of a tag
    /// defined above it).
    pub needs: Option<usize>,
    /// Its body points are not scaled by the subject's share of the body.
    pub body_in_full: bool,
}

/// A whole rules file, checked: terms, the flattened vocabularies (term ids
/// per list, tag or inline slot), and the tags in file order.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub scoring: Scoring,
    pub terms: Vec<TermSpec>,
    pub vocabs: Vec<Vec<usize>>,
    pub tags: Vec<TagSpec>,
    pub entities: Vec<EntitySpec>,
}

// ---------------------------------------------------------------------------
// The file as written.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    #[serde(default)]
    scoring: RawScoring,
    #[serde(default)]
    lists: BTreeMap<String, Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    tag: Vec<RawTag>,
    #[serde(default)]
    entity: Vec<RawEntity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntity {
    name: Spanned<String>,
    names: Vec<Spanned<String>>,
    #[serde(default)]
    short: Vec<Spanned<String>>,
    #[serde(default)]
    context: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawScoring {
    threshold: Option<Spanned<f64>>,
    title: Option<Spanned<f64>>,
    summary: Option<Spanned<f64>>,
    content: Option<Spanned<f64>>,
    mention_gap: Option<u32>,
    lead_words: Option<u32>,
    body_full: Option<Spanned<f64>>,
    body_max: Option<Spanned<f64>>,
    body_share: Option<Spanned<f64>>,
    segment_words: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTag {
    name: Spanned<String>,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
    weight: Option<Spanned<f64>>,
    threshold: Option<Spanned<f64>>,
    #[serde(default)]
    terms: Vec<Spanned<String>>,
    #[serde(default)]
    except: Vec<Spanned<String>>,
    except_before: Option<u32>,
    #[serde(default)]
    unless: Vec<Spanned<String>>,
    #[serde(default)]
    subject: Vec<Spanned<String>>,
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    note: Option<String>,
    all: Spanned<Vec<Spanned<toml::Value>>>,
    within: Option<Spanned<u32>>,
    weight: Spanned<f64>,
    fields: Option<Vec<Field>>,
    #[serde(default)]
    unless: Vec<Spanned<String>>,
    needs: Option<Spanned<String>>,
    #[serde(default)]
    body_in_full: bool,
}

// ---------------------------------------------------------------------------
// Checking.

/// One entry of a term list: a literal term or a reference to a named list.
enum Entry {
    Term(usize),
    Ref(usize),
}

struct Checker<'a> {
    path: &'a Path,
    lines: LineIndex,
    problems: Vec<Problem>,
    terms: Vec<TermSpec>,
    /// Where each term was written: line, key.
    term_sites: Vec<(usize, String)>,
    /// Unflattened vocabularies.
    entries: Vec<Vec<Entry>>,
    /// Named vocabularies (lists and tags) by name.
    names: HashMap<String, usize>,
}

impl Checker<'_> {
    fn line(&self, span: std::ops::Range<usize>) -> Option<usize> {
        Some(self.lines.line_of(span.start))
    }

    fn error(&mut self, line: Option<usize>, key: String, message: impl Into<String>) {
        self.problems
            .push(Problem::error(self.path, line, Some(key), message));
    }

    fn warning(&mut self, line: Option<usize>, key: String, message: impl Into<String>) {
        self.problems
            .push(Problem::warning(self.path, line, Some(key), message));
    }

    fn new_vocab(&mut self) -> usize {
        self.entries.push(Vec::new());
        self.entries.len() - 1
    }

    /// Checks one written term and adds it (or the reference) to `vocab`.
    fn add_entry(
        &mut self,
        vocab: usize,
        written: &str,
        line: Option<usize>,
        key: &str,
        except: Option<Except>,
        entity: Option<EntityTerm>,
    ) {
        let trimmed = written.trim();
        if trimmed.is_empty() {
            self.error(
                line,
                key.to_string(),
                "empty term; remove it or write a word or phrase",
            );
            return;
        }
        if let Some(name) = trimmed.strip_prefix('@') {
            match self.names.get(name) {
                Some(&v) => self.entries[vocab].push(Entry::Ref(v)),
                None => self.error(
                    line,
                    key.to_string(),
                    format!(
                        "unknown tag or list referenced: \"@{name}\"; define it under [lists] or as a [[tag]]"
                    ),
                ),
            }
            return;
        }
        let (stem, wildcard) = match trimmed.strip_suffix('*') {
            Some(stem) => (stem, true),
            None => (trimmed, false),
        };
        if stem.contains('*') {
            self.error(
                line,
                key.to_string(),
                format!("term {trimmed:?}: `*` is only allowed at the end of a term, as a stem wildcard"),
            );
            return;
        }
        let pattern = normalise(stem).as_str().to_string();
        if pattern.is_empty() {
            self.error(
                line,
                key.to_string(),
                format!(
                    "term {trimmed:?} normalises to nothing (only dashes, spaces or invisible characters)"
                ),
            );
            return;
        }
        if wildcard && !stem.chars().next_back().is_some_and(char::is_alphanumeric) {
            self.error(
                line,
                key.to_string(),
                format!("term {trimmed:?}: the `*` must follow a letter or digit, as in \"Azerbaijan*\""),
            );
            return;
        }
        let renormalised = normalise(&pattern);
        if renormalised.as_str() != pattern
            || pattern.starts_with(|c: char| unicode_normalization::char::is_combining_mark(c))
        {
            self.warning(
                line,
                key.to_string(),
                format!("term {trimmed:?} can never match: its normal form {pattern:?} is not stable under normalisation"),
            );
        }
        self.terms.push(TermSpec {
            written: trimmed.to_string(),
            pattern,
            wildcard,
            except,
            entity,
        });
        self.term_sites.push((line.unwrap_or(0), key.to_string()));
        let id = self.terms.len() - 1;
        self.entries[vocab].push(Entry::Term(id));
    }

    fn add_list(&mut self, vocab: usize, items: &[Spanned<String>], key: &str, except: Option<Except>) {
        self.add_list_of(vocab, items, key, except, None);
    }

    fn add_list_of(
        &mut self,
        vocab: usize,
        items: &[Spanned<String>],
        key: &str,
        except: Option<Except>,
        entity: Option<EntityTerm>,
    ) {
        for (i, item) in items.iter().enumerate() {
            let line = self.line(item.span());
            self.add_entry(
                vocab,
                item.get_ref(),
                line,
                &format!("{key}[{i}]"),
                except,
                entity,
            );
        }
    }

    /// An anonymous vocabulary from a list of terms, or `None` when empty.
    fn anonymous(&mut self, items: &[Spanned<String>], key: &str) -> Option<usize> {
        if items.is_empty() {
            return None;
        }
        let v = self.new_vocab();
        self.add_list(v, items, key, None);
        Some(v)
    }
}

fn finite(
    c: &mut Checker,
    value: &Option<Spanned<f64>>,
    key: &str,
    default: f64,
    check: fn(f64) -> bool,
    must: &str,
) -> f64 {
    match value {
        None => default,
        Some(v) => {
            let x = *v.get_ref();
            if x.is_finite() && check(x) {
                x
            } else {
                let line = c.line(v.span());
                c.error(
                    line,
                    key.to_string(),
                    format!("{x} is not allowed here: it must be {must}"),
                );
                default
            }
        }
    }
}

/// Parses and checks rules text read from `path`. `Ok` carries the checked
/// rules and the warnings; `Err` every error found (and the warnings).
pub(crate) fn check(text: &str, path: &Path) -> Result<(Spec, Vec<Problem>), Problems> {
    let raw: RawRules =
        toml::from_str(text).map_err(|e| Problems(vec![Problem::from_toml_error(path, text, &e)]))?;
    let mut c = Checker {
        path,
        lines: LineIndex::new(text),
        problems: Vec::new(),
        terms: Vec::new(),
        term_sites: Vec::new(),
        entries: Vec::new(),
        names: HashMap::new(),
    };

    let s = &raw.scoring;
    let scoring = Scoring {
        threshold: finite(
            &mut c,
            &s.threshold,
            "scoring.threshold",
            1.0,
            |x| x > 0.0,
            "more than 0",
        ),
        field_weights: [
            finite(&mut c, &s.title, "scoring.title", 1.5, |x| x >= 0.0, "0 or more"),
            finite(
                &mut c,
                &s.summary,
                "scoring.summary",
                1.0,
                |x| x >= 0.0,
                "0 or more",
            ),
            finite(
                &mut c,
                &s.content,
                "scoring.content",
                0.5,
                |x| x >= 0.0,
                "0 or more",
            ),
        ],
        mention_gap: s.mention_gap.unwrap_or(2),
        salience: Salience::default(),
    };
    let d = Salience::default();
    let body_full = finite(
        &mut c,
        &s.body_full,
        "scoring.body_full",
        d.body_full,
        |x| x >= 0.0,
        "0 or more",
    );
    let body_max = finite(
        &mut c,
        &s.body_max,
        "scoring.body_max",
        d.body_max.max(body_full),
        |x| x >= 0.0,
        "0 or more",
    );
    if body_max < body_full
        && let Some(v) = &s.body_max
    {
        let line = c.line(v.span());
        c.error(
            line,
            "scoring.body_max".to_string(),
            format!("{body_max} is less than body_full ({body_full}): the body's cap must be at least its full part"),
        );
    }
    let body_share = finite(
        &mut c,
        &s.body_share,
        "scoring.body_share",
        d.body_share,
        |x| x > 0.0 && x <= 1.0,
        "more than 0 and at most 1",
    );
    let segment_words = match &s.segment_words {
        Some(v) if *v.get_ref() == 0 => {
            let line = c.line(v.span());
            c.error(
                line,
                "scoring.segment_words".to_string(),
                "`segment_words` is a number of words, at least 1",
            );
            d.segment_words
        }
        Some(v) => *v.get_ref(),
        None => d.segment_words,
    };
    let scoring = Scoring {
        salience: Salience {
            lead_words: s.lead_words.unwrap_or(d.lead_words),
            body_full,
            body_max,
            body_share,
            segment_words,
        },
        ..scoring
    };

    // Names first, so references may point forwards.
    let mut list_vocabs = Vec::new();
    for (name, items) in &raw.lists {
        let line = items
            .get_ref()
            .first()
            .and_then(|i| c.line(i.span()))
            .or(c.line(items.span()));
        if !valid_name(name) {
            c.error(line, format!("lists.{name}"), bad_name_message(name));
        }
        let v = c.new_vocab();
        c.names.insert(name.clone(), v);
        list_vocabs.push((name, items, v));
    }
    let mut tag_vocabs = Vec::new();
    for (i, t) in raw.tag.iter().enumerate() {
        let name = t.name.get_ref().trim();
        let line = c.line(t.name.span());
        let key = format!("tag[{i}].name");
        if !valid_name(name) {
            c.error(line, key, bad_name_message(name));
        } else if c.names.contains_key(name) {
            c.error(
                line,
                key,
                format!("the name {name:?} is used twice (tags and lists share one namespace)"),
            );
        }
        let v = c.new_vocab();
        c.names.insert(name.to_string(), v);
        tag_vocabs.push(v);
    }

    for (name, items, v) in &list_vocabs {
        c.add_list(*v, items.get_ref(), &format!("lists.{name}"), None);
    }

    let mut tags = Vec::new();
    for (i, t) in raw.tag.iter().enumerate() {
        let key = format!("tag[{i}]");
        let name = t.name.get_ref().trim().to_string();
        let except = c
            .anonymous(&t.except, &format!("{key}.except"))
            .map(|vocab| Except {
                vocab,
                before: t.except_before.unwrap_or(0),
            });
        c.add_list(tag_vocabs[i], &t.terms, &format!("{key}.terms"), except);
        let unless = c.anonymous(&t.unless, &format!("{key}.unless"));
        let subject = c
            .anonymous(&t.subject, &format!("{key}.subject"))
            .unwrap_or(tag_vocabs[i]);
        let weight = finite(
            &mut c,
            &t.weight,
            &format!("{key}.weight"),
            1.0,
            |x| x > 0.0,
            "more than 0",
        );
        let threshold = finite(
            &mut c,
            &t.threshold,
            &format!("{key}.threshold"),
            scoring.threshold,
            |x| x > 0.0,
            "more than 0",
        );
        let mut rules = Vec::new();
        for (j, r) in t.rule.iter().enumerate() {
            let rkey = format!("{key}.rule[{j}]");
            if r.all.get_ref().is_empty() {
                let line = c.line(r.all.span());
                c.error(line, format!("{rkey}.all"), "`all` needs at least one slot");
            }
            let mut slots = Vec::new();
            for (k, slot) in r.all.get_ref().iter().enumerate() {
                let skey = format!("{rkey}.all[{k}]");
                let line = c.line(slot.span());
                let v = c.new_vocab();
                match slot.get_ref() {
                    toml::Value::String(s) => c.add_entry(v, s, line, &skey, None, None),
                    toml::Value::Array(items) if !items.is_empty() => {
                        for (m, item) in items.iter().enumerate() {
                            match item.as_str() {
                                Some(s) => c.add_entry(v, s, line, &format!("{skey}[{m}]"), None, None),
                                None => c.error(
                                    line,
                                    format!("{skey}[{m}]"),
                                    "a slot lists terms as strings, like \"clash*\" or \"@conflict\"",
                                ),
                            }
                        }
                    }
                    _ => c.error(
                        line,
                        skey,
                        "a slot is a term (\"ceasefire\"), a reference (\"@conflict\") or a non-empty list of them",
                    ),
                }
                slots.push(v);
            }
            let within = match &r.within {
                Some(w) if *w.get_ref() == 0 => {
                    let line = c.line(w.span());
                    c.error(
                        line,
                        format!("{rkey}.within"),
                        "`within` is a number of words, at least 1",
                    );
                    None
                }
                Some(w) => Some(*w.get_ref()),
                None => None,
            };
            let wline = c.line(r.weight.span());
            let weight = *r.weight.get_ref();
            if !weight.is_finite() || weight == 0.0 {
                c.error(
                    wline,
                    format!("{rkey}.weight"),
                    "a rule's weight must be a non-zero number",
                );
            }
            let mut fields = [true; 3];
            if let Some(fs) = &r.fields {
                fields = [false; 3];
                for f in fs {
                    fields[*f as usize] = true;
                }
                if fs.is_empty() {
                    c.error(
                        wline,
                        format!("{rkey}.fields"),
                        "`fields` must name at least one field",
                    );
                }
            }
            let unless = c.anonymous(&r.unless, &format!("{rkey}.unless"));
            let needs = r.needs.as_ref().and_then(|n| {
                let wanted = n.get_ref().trim();
                let found = raw.tag[..i].iter().position(|t| t.name.get_ref().trim() == wanted);
                if found.is_none() {
                    let line = c.line(n.span());
                    c.error(
                        line,
                        format!("{rkey}.needs"),
                        format!("`needs` names {wanted:?}, which is not a tag defined above this one (tags are scored in file order)"),
                    );
                }
                found
            });
            rules.push(RuleSpec {
                note: r.note.clone(),
                slots,
                within,
                weight,
                fields,
                unless,
                needs,
                body_in_full: r.body_in_full,
            });
        }
        if t.terms.is_empty() && t.rule.is_empty() {
            let line = c.line(t.name.span());
            c.warning(
                line,
                format!("{key}.name"),
                format!("tag {name:?} has no terms and no rules: it can never be given"),
            );
        }
        tags.push(TagSpec {
            name,
            primary: t.primary,
            threshold,
            weight,
            terms: tag_vocabs[i],
            unless,
            subject,
            rules,
        });
    }

    // Entities: their names and short names are terms of no tag; the
    // engine voids what they overlap.
    let mut entities = Vec::new();
    for (e, raw_entity) in raw.entity.iter().enumerate() {
        let key = format!("entity[{e}]");
        let name = raw_entity.name.get_ref().trim().to_string();
        if raw_entity.names.is_empty() {
            let line = c.line(raw_entity.name.span());
            c.error(
                line,
                format!("{key}.names"),
                "an entity needs at least one name, like names = [\"Zangezur Copper-Molybdenum Combine\"]",
            );
        }
        let v = c.new_vocab();
        for (list, kind, k) in [
            (&raw_entity.names, EntityTermKind::Name, "names"),
            (&raw_entity.short, EntityTermKind::Short, "short"),
            (&raw_entity.context, EntityTermKind::Context, "context"),
        ] {
            let term = EntityTerm {
                entity: e as u32,
                kind,
            };
            c.add_list_of(v, list, &format!("{key}.{k}"), None, Some(term));
        }
        entities.push(EntitySpec { name });
    }

    if !tags.iter().any(|t| t.primary) {
        c.problems.push(Problem::error(
            path,
            None,
            Some("tag".to_string()),
            "no tag is `primary = true`: nothing could ever be relevant",
        ));
    }

    let vocabs = flatten(&mut c);
    warn_unmatchable(&mut c, &vocabs, &tags);

    if c.problems.iter().any(Problem::is_error) {
        return Err(Problems(c.problems));
    }
    Ok((
        Spec {
            scoring,
            terms: c.terms,
            vocabs,
            tags,
            entities,
        },
        c.problems,
    ))
}

/// Resolves references: each vocabulary becomes the sorted set of its term
/// ids. A reference cycle is an error at the list that closes it.
fn flatten(c: &mut Checker) -> Vec<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Todo,
        Doing,
        Done,
    }
    fn visit(
        v: usize,
        entries: &[Vec<Entry>],
        state: &mut [State],
        out: &mut [Vec<usize>],
        cycles: &mut Vec<usize>,
    ) {
        if state[v] == State::Done {
            return;
        }
        if state[v] == State::Doing {
            cycles.push(v);
            return;
        }
        state[v] = State::Doing;
        let mut ids = Vec::new();
        for e in &entries[v] {
            match *e {
                Entry::Term(t) => ids.push(t),
                Entry::Ref(r) => {
                    visit(r, entries, state, out, cycles);
                    ids.extend_from_slice(&out[r]);
                }
            }
        }
        ids.sort_unstable();
        ids.dedup();
        out[v] = ids;
        state[v] = State::Done;
    }
    let n = c.entries.len();
    let mut state = vec![State::Todo; n];
    let mut out = vec![Vec::new(); n];
    let mut cycles = Vec::new();
    for v in 0..n {
        visit(v, &c.entries, &mut state, &mut out, &mut cycles);
    }
    cycles.sort_unstable();
    cycles.dedup();
    let names: HashMap<usize, String> = c.names.iter().map(|(k, &v)| (v, k.clone())).collect();
    for v in cycles {
        let name = names.get(&v).cloned().unwrap_or_default();
        c.problems.push(Problem::error(
            c.path,
            None,
            Some(name.clone()),
            format!("\"@{name}\" refers to itself through its references; break the cycle"),
        ));
    }
    out
}

/// Warnings for terms no text can match because their own tag's `except`
/// phrases void every occurrence, for duplicate terms, and for rules whose
/// slots are empty.
fn warn_unmatchable(c: &mut Checker, vocabs: &[Vec<usize>], tags: &[TagSpec]) {
    let mut warnings = Vec::new();
    for (t, term) in c.terms.iter().enumerate() {
        let Some(except) = term.except else { continue };
        for &e in &vocabs[except.vocab] {
            let phrase = &c.terms[e];
            if contains_on_word_boundaries(&term.pattern, &phrase.pattern, phrase.wildcard) {
                let (line, key) = &c.term_sites[t];
                warnings.push((
                    *line,
                    key.clone(),
                    format!(
                        "term {:?} can never count: the tag's except phrase {:?} covers every occurrence",
                        term.written, phrase.written
                    ),
                ));
                break;
            }
        }
    }
    for tag in tags {
        let mut seen = HashSet::new();
        for &t in &vocabs[tag.terms] {
            let term = &c.terms[t];
            if !seen.insert((term.pattern.clone(), term.wildcard)) {
                let (line, key) = &c.term_sites[t];
                warnings.push((
                    *line,
                    key.clone(),
                    format!("term {:?} is listed twice for this tag", term.written),
                ));
            }
        }
        for (j, rule) in tag.rules.iter().enumerate() {
            if rule.slots.iter().any(|&s| vocabs[s].is_empty()) {
                warnings.push((
                    0,
                    format!("tag {:?} rule[{j}]", tag.name),
                    "this rule can never fire: one of its slots has no terms".to_string(),
                ));
            }
        }
    }
    warnings.sort();
    warnings.dedup();
    for (line, key, message) in warnings {
        let line = (line > 0).then_some(line);
        c.warning(line, key, message);
    }
}

/// Whether `needle` occurs in `haystack` starting and ending on word boundaries.
fn contains_on_word_boundaries(haystack: &str, needle: &str, needle_wildcard: bool) -> bool {
    haystack.match_indices(needle).any(|(i, m)| {
        let before_ok = !haystack[..i].chars().next_back().is_some_and(is_word_char);
        let after_ok = needle_wildcard || !haystack[i + m.len()..].chars().next().is_some_and(is_word_char);
        before_ok && after_ok
    })
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn bad_name_message(name: &str) -> String {
    format!(
        "name {name:?} must be lower-case letters, digits and inner hyphens (like \"armenia-azerbaijan\"): it becomes a Telegram hashtag"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::Severity;

    fn errors(text: &str) -> Vec<Problem> {
        match check(text, Path::new("rules.toml")) {
            Ok(_) => panic!("expected errors for:\n{text}"),
            Err(Problems(p)) => p.into_iter().filter(Problem::is_error).collect(),
        }
    }

    fn warnings(text: &str) -> Vec<Problem> {
        match check(text, Path::new("rules.toml")) {
            Ok((_, w)) => w,
            Err(p) => panic!("unexpected errors:\n{p}"),
        }
    }

    const HEAD: &str = "[[tag]]\nname = \"csto\"\nprimary = true\n";

    #[test]
    fn unknown_key_is_reported_with_its_line() {
        let e = errors(&format!("{HEAD}terms = [\"CSTO\"]\nwieght = 2\n"));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line, Some(5));
        assert!(e[0].message.contains("wieght"), "{}", e[0]);
        assert_eq!(e[0].key.as_deref(), Some("tag.wieght"));
    }

    #[test]
    fn bad_type_is_reported_with_its_line() {
        let e = errors(&format!("{HEAD}terms = [\"CSTO\"]\nweight = \"heavy\"\n"));
        assert_eq!(e[0].line, Some(5), "{}", e[0]);
        let e = errors(&format!("{HEAD}terms = \"CSTO\"\n"));
        assert_eq!(e[0].line, Some(4), "{}", e[0]);
    }

    #[test]
    fn every_term_error_is_reported_at_once_with_lines_and_keys() {
        let text = format!(
            "{HEAD}terms = [\n  \"CSTO\",\n  \"\",\n  \"—\",\n  \"Az*er\",\n  \"@nowhere\",\n  \"- *\",\n]\n"
        );
        let e = errors(&text);
        let lines: Vec<_> = e.iter().map(|p| p.line).collect();
        assert_eq!(
            lines,
            vec![Some(6), Some(7), Some(8), Some(9), Some(10)],
            "{e:#?}"
        );
        assert!(e[0].message.contains("empty term"));
        assert!(e[1].message.contains("normalises to nothing"));
        assert!(e[2].message.contains("only allowed at the end"));
        assert!(
            e[3].message
                .contains("unknown tag or list referenced: \"@nowhere\"")
        );
        assert_eq!(e[3].key.as_deref(), Some("tag[0].terms[4]"));
        assert!(e[4].message.contains("normalises to nothing") || e[4].message.contains("must follow"));
        let shown = e[3].to_string();
        assert!(
            shown.starts_with("rules.toml:9: error: tag[0].terms[4]: "),
            "{shown}"
        );
    }

    #[test]
    fn rule_errors_name_the_rule() {
        let text = format!(
            "{HEAD}terms = [\"CSTO\"]\n[[tag.rule]]\nall = [\"@csto\", 3]\nwithin = 0\nweight = 1.0\n"
        );
        let e = errors(&text);
        assert!(
            e.iter()
                .any(|p| p.key.as_deref() == Some("tag[0].rule[0].all[1]") && p.line == Some(6))
        );
        assert!(
            e.iter()
                .any(|p| p.key.as_deref() == Some("tag[0].rule[0].within") && p.line == Some(7))
        );
    }

    #[test]
    fn names_are_checked() {
        let e = errors(&format!(
            "{HEAD}terms = [\"CSTO\"]\n[[tag]]\nname = \"Big Tag\"\nterms = [\"x\"]\n"
        ));
        assert!(e[0].message.contains("lower-case"), "{}", e[0]);
        assert_eq!(e[0].line, Some(6));
        let e = errors(&format!(
            "{HEAD}terms = [\"CSTO\"]\n[[tag]]\nname = \"csto\"\nterms = [\"x\"]\n"
        ));
        assert!(e[0].message.contains("used twice"));
    }

    #[test]
    fn reference_cycles_and_missing_primary_are_errors() {
        let e = errors(&format!(
            "[lists]\na = [\"@b\"]\nb = [\"@a\"]\n{HEAD}terms = [\"@a\"]\n"
        ));
        assert!(e.iter().any(|p| p.message.contains("refers to itself")), "{e:#?}");
        let e = errors("[[tag]]\nname = \"russia\"\nterms = [\"Russia\"]\n");
        assert!(e[0].message.contains("primary"));
    }

    #[test]
    fn warns_about_terms_no_text_can_match() {
        let w = warnings(&format!(
            "{HEAD}terms = [\"CSTO\", \"fellow members of the CSTO\", \"CSTO\"]\nexcept = [\"fellow members\"]\n"
        ));
        assert!(w.iter().all(|p| p.severity == Severity::Warning));
        assert!(
            w.iter().any(|p| p.line == Some(4)
                && p.message
                    .contains("\"fellow members of the CSTO\" can never count")),
            "{w:#?}"
        );
        assert!(w.iter().any(|p| p.message.contains("listed twice")), "{w:#?}");
        let w = warnings(&format!("{HEAD}terms = [\"CSTO\"]\n[[tag]]\nname = \"empty\"\n"));
        assert!(w[0].message.contains("can never be given"), "{w:#?}");
    }

    #[test]
    fn references_resolve_forwards_and_through_lists() {
        let (spec, w) = check(
            &format!(
                "{HEAD}terms = [\"@names\"]\n[lists]\nnames = [\"CSTO\", \"@more\"]\nmore = [\"ОДКБ\"]\n"
            ),
            Path::new("rules.toml"),
        )
        .unwrap_or_else(|p| panic!("{p}"));
        assert!(w.is_empty());
        let csto = &spec.vocabs[spec.tags[0].terms];
        let mut patterns: Vec<&str> = csto.iter().map(|&t| spec.terms[t].pattern.as_str()).collect();
        patterns.sort_unstable();
        assert_eq!(patterns, vec!["csto", "одкб"]);
    }

    #[test]
    fn salience_needs_and_entities_are_checked() {
        let e = errors(&format!(
            "[scoring]\nbody_share = 1.5\nsegment_words = 0\n{HEAD}terms = [\"CSTO\"]\n[[tag.rule]]\nall = [\"CSTO\"]\nneeds = \"later\"\nweight = 1.0\n[[tag]]\nname = \"later\"\nterms = [\"x\"]\n[[entity]]\nname = \"nothing\"\nnames = []\n"
        ));
        let keys: Vec<_> = e
            .iter()
            .map(|p| (p.key.clone().unwrap_or_default(), p.line))
            .collect();
        assert!(
            keys.contains(&("scoring.body_share".to_string(), Some(2))),
            "{keys:?}"
        );
        assert!(
            keys.contains(&("scoring.segment_words".to_string(), Some(3))),
            "{keys:?}"
        );
        assert!(
            keys.contains(&("tag[0].rule[0].needs".to_string(), Some(10))),
            "{keys:?}"
        );
        assert!(keys.iter().any(|(k, _)| k == "entity[0].names"), "{keys:?}");
        let needs = e
            .iter()
            .find(|p| p.key.as_deref() == Some("tag[0].rule[0].needs"));
        assert!(
            needs.is_some_and(|p| p.message.contains("defined above")),
            "{e:#?}"
        );
    }
}

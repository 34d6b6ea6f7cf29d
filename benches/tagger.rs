//! Tagger throughput: `Rules::tag` (normalisation included) over the five
//! seed articles replicated to about 10 MB, beside a naive baseline over the
//! same text and terms — one case-insensitive regex per term, and one
//! `RegexSet` of them all. Also prints the compiled rules' memory.
//!
//! A second input is ordinary news text, not the term-dense seeds: every
//! item of the real blog and news feeds in `../shared/realfeeds/corpus/`
//! (feedjira's captured feeds, NetNewsWire's, rss-parser's: English,
//! German, Portuguese ... with full `content:encoded` bodies), parsed by
//! our own parser and replicated to about 10 MB; tagged, and searched by
//! the `RegexSet` baseline. It is skipped, with a message, when that
//! folder is absent.
//!
//! Run: `cargo bench --bench tagger` (short samples: the machine is shared).

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use cstowatch::tag::Rules;
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

#[path = "support/tag_inputs.rs"]
mod tag_inputs;
use tag_inputs::{news, replicate, seeds, tag_all};

const TARGET_BYTES: usize = 10 * 1024 * 1024;
/// The per-term baseline scans the text once per term; it runs on a slice.
const NAIVE_BYTES: usize = 512 * 1024;

/// A term as the regex a naive implementation would write. The word
/// boundaries are ASCII ones: with Unicode `\b` the regex crate cannot use
/// its DFAs on non-ASCII text (the seeds have typographic quotes) and falls
/// back to engines far slower still, so this favours the baseline.
fn term_regex(term: &str) -> String {
    let words: Vec<String> = term.split(['-', ' ']).map(regex::escape).collect();
    let phrase = words.join(r"[\s\-\u{2010}-\u{2015}]+");
    match phrase.strip_suffix(r"\*") {
        Some(stem) => format!(r"(?-u:\b){stem}\w*"),
        None => format!(r"(?-u:\b){phrase}(?-u:\b)"),
    }
}

fn bench(c: &mut Criterion) {
    let rules_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rules.toml");
    let (rules, _) = Rules::load(&rules_path).expect("shipped rules load");
    let terms: Vec<&str> = rules.terms_written().collect();
    eprintln!(
        "compiled rules: {} terms, {} patterns, ~{:.2} MB",
        terms.len(),
        rules.pattern_count(),
        rules.memory_usage() as f64 / 1_048_576.0
    );
    let seeds = seeds();
    let (docs, total) = replicate(&seeds, TARGET_BYTES);
    let (naive_docs, naive_total) = replicate(&seeds, NAIVE_BYTES);
    eprintln!("input: {} articles, {total} bytes", docs.len());

    let regexes: Vec<Regex> = terms
        .iter()
        .map(|t| {
            RegexBuilder::new(&term_regex(t))
                .case_insensitive(true)
                .build()
                .expect("regex")
        })
        .collect();
    let set: RegexSet = RegexSetBuilder::new(terms.iter().map(|t| term_regex(t)))
        .case_insensitive(true)
        .size_limit(256 << 20)
        .dfa_size_limit(256 << 20)
        .build()
        .expect("regex set");

    let mut group = c.benchmark_group("tagger");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));

    group.throughput(Throughput::Bytes(total as u64));
    group.bench_function("tag (normalise + automaton + rules)", |b| {
        b.iter(|| black_box(tag_all(&rules, &docs)))
    });
    group.bench_function("part: normalise only", |b| {
        b.iter(|| {
            let mut n = 0;
            for a in &docs {
                n += cstowatch::tag::normalise::normalise(&a.title).as_str().len();
                n += cstowatch::tag::normalise::normalise(&a.body).as_str().len();
            }
            black_box(n)
        })
    });
    group.bench_function("naive RegexSet (which terms match)", |b| {
        b.iter(|| {
            let mut hits = 0;
            for a in &docs {
                hits += set.matches(&a.title).iter().count();
                hits += set.matches(&a.body).iter().count();
            }
            black_box(hits)
        })
    });

    group.throughput(Throughput::Bytes(naive_total as u64));
    group.bench_function("naive regex per term (every hit)", |b| {
        b.iter(|| {
            let mut hits = 0;
            for a in &naive_docs {
                for re in &regexes {
                    hits += re.find_iter(&a.title).count();
                    hits += re.find_iter(&a.body).count();
                }
            }
            black_box(hits)
        })
    });
    group.finish();

    let Some(news) = news() else {
        eprintln!("skipped the ordinary-news input: ../shared/realfeeds/corpus is absent");
        return;
    };
    let (news_docs, news_total) = replicate(&news, TARGET_BYTES);
    let relevant = tag_all(&rules, &news_docs);
    eprintln!(
        "news input: {} items from the real feeds, replicated to {} items, {news_total} bytes ({relevant} tagged relevant)",
        news.len(),
        news_docs.len()
    );
    let mut group = c.benchmark_group("tagger-news");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Bytes(news_total as u64));
    group.bench_function("tag, ordinary news (real feeds)", |b| {
        b.iter(|| black_box(tag_all(&rules, &news_docs)))
    });
    group.bench_function("naive RegexSet, ordinary news", |b| {
        b.iter(|| {
            let mut hits = 0;
            for a in &news_docs {
                hits += set.matches(&a.title).iter().count();
                hits += set.matches(&a.summary).iter().count();
                hits += set.matches(&a.body).iter().count();
            }
            black_box(hits)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

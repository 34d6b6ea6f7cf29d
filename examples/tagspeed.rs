//! A measuring instrument for work on the tagger, beside the criterion
//! bench (`benches/tagger.rs`, whose inputs it builds the same way):
//!
//! - `tagspeed time N [seeds|news|ru|hy]`: times `Rules::tag` over the
//!   bench's seeds input (and the ordinary-news input) N times, printing
//!   the fastest and the median pass. One pass is also what to run under
//!   `valgrind --tool=callgrind` for an instruction count, which a shared
//!   machine does not disturb. `ru` and `hy` time the Russian or Armenian
//!   items of `tests/fixtures/tagger/realstyle.jsonl`, replicated to the
//!   same size: text that is nearly all two-byte characters.
//! - `tagspeed check FILE`: writes the tagging (JSON, with match offsets)
//!   and the `--explain` text of some 9,000 documents (seed paragraphs in
//!   each field and mutated, every labelled fixture item five ways, the
//!   real-feed items) to FILE. Built before and after a change to the
//!   engine, the two files must be the same bytes.
//!
//! Run: `cargo run --release --example tagspeed -- time 20`.

use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use cstowatch::tag::{Document, Rules, explain::explain};

#[path = "../benches/support/tag_inputs.rs"]
mod tag_inputs;
use tag_inputs::{Article, replicate, seeds, tag_all};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The real-feed items, or none when `../shared/realfeeds` is absent.
fn news() -> Vec<Article> {
    tag_inputs::news().unwrap_or_default()
}

/// The items of the real-style evaluation set in language `lang`.
fn realstyle(lang: &str) -> Vec<Article> {
    let path = root().join("tests/fixtures/tagger/realstyle.jsonl");
    let text = std::fs::read_to_string(path).expect("tagspeed input");
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|v| v.get("lang").and_then(|l| l.as_str()) == Some(lang))
        .map(|v| {
            let g = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
            Article {
                title: g("title"),
                summary: g("summary"),
                body: g("content"),
            }
        })
        .collect()
}

fn time(rules: &Rules, docs: &[&Article], total: usize, n: usize, label: &str) {
    let mut times = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        black_box(tag_all(rules, docs));
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let min = times[0];
    let med = times[times.len() / 2];
    println!(
        "{label}: min {min:.2} ms ({:.0} MB/s)  median {med:.2} ms ({:.0} MB/s)",
        total as f64 / min / 1e3,
        total as f64 / med / 1e3
    );
}

fn mutate(s: &str, k: usize) -> String {
    match k % 6 {
        0 => s.to_uppercase(),
        1 => s
            .replace('\'', "&#8217;")
            .replace(" - ", " &mdash; ")
            .replace(", ", "&nbsp;, "),
        2 => s
            .replace('\'', "\u{2019}")
            .replace('-', "\u{2013}")
            .replace(' ', "\u{a0} "),
        3 => s.replace("e", "e\u{301}").replace("a", "а"),
        4 => s.replace(". ", ".\n\n"),
        _ => s.to_lowercase().replace(' ', "  "),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (rules, _) = Rules::load(&root().join("config/rules.toml")).expect("tagspeed input");
    let seeds = seeds();
    match args.get(1).map(String::as_str) {
        Some("time") => {
            let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20).max(1);
            let (docs, total) = replicate(&seeds, 10 * 1024 * 1024);
            let which = args.get(3).map(String::as_str).unwrap_or("both");
            if which == "ru" || which == "hy" {
                let items = realstyle(which);
                let (docs, total) = replicate(&items, 10 * 1024 * 1024);
                time(&rules, &docs, total, n, which);
                return;
            }
            if which != "news" {
                time(&rules, &docs, total, n, "seeds");
            }
            if which != "seeds" {
                let news = news();
                if news.is_empty() {
                    eprintln!("skipped the news input: ../shared/realfeeds/corpus is absent");
                } else {
                    let (nd, nt) = replicate(&news, 10 * 1024 * 1024);
                    time(&rules, &nd, nt, n, "news ");
                }
            }
        }
        Some("check") => {
            let mut out = std::io::BufWriter::new(std::fs::File::create(&args[2]).expect("tagspeed input"));
            let mut docs: Vec<(String, String, String)> = Vec::new();
            for a in &seeds {
                docs.push((a.title.clone(), a.summary.clone(), a.body.clone()));
                let paras: Vec<&str> = a.body.split('\n').filter(|p| !p.trim().is_empty()).collect();
                for (k, p) in paras.iter().enumerate() {
                    docs.push((p.to_string(), String::new(), String::new()));
                    docs.push((String::new(), p.to_string(), String::new()));
                    docs.push((String::new(), String::new(), p.to_string()));
                    let m = mutate(p, k);
                    docs.push((a.title.clone(), String::new(), m.clone()));
                    docs.push((String::new(), m.clone(), paras[(k + 1) % paras.len()].to_string()));
                    docs.push((mutate(&a.title, k + 1), String::new(), paras[k..].join("\n")));
                }
            }
            for f in [
                "tests/fixtures/corpus/dev.jsonl",
                "tests/fixtures/tagger/blind.jsonl",
                "tests/fixtures/tagger/challenge.jsonl",
                "tests/fixtures/tagger/realstyle.jsonl",
                "tests/fixtures/stories/clusters.jsonl",
            ] {
                for line in std::fs::read_to_string(root().join(f))
                    .expect("tagspeed input")
                    .lines()
                {
                    let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                        continue;
                    };
                    let g = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
                    let (t, s, c) = (g("title"), g("summary"), g("content"));
                    docs.push((t.clone(), s.clone(), c.clone()));
                    docs.push((t.clone(), String::new(), c.clone()));
                    docs.push((String::new(), String::new(), format!("{t}\n{s}\n{c}")));
                    docs.push((mutate(&t, 0), mutate(&s, 2), mutate(&c, 4)));
                    docs.push((mutate(&t, 1), mutate(&s, 3), mutate(&c, 5)));
                }
            }
            for a in news() {
                docs.push((a.title, a.summary, a.body));
            }
            for (i, (t, s, c)) in docs.iter().enumerate() {
                let doc = Document {
                    title: t,
                    summary: s,
                    content: c,
                };
                let tagging = rules.tag(&doc);
                let (t2, text) = explain(&rules, &format!("doc {i}"), &doc);
                assert_eq!(tagging, t2);
                let spans: Vec<(usize, usize)> = tagging.matches.iter().map(|m| (m.start, m.end)).collect();
                writeln!(
                    out,
                    "{}\t{:?}",
                    serde_json::to_string(&tagging).expect("tagspeed input"),
                    spans
                )
                .expect("tagspeed input");
                writeln!(out, "{text}").expect("tagspeed input");
            }
            eprintln!("{} docs", docs.len());
        }
        _ => eprintln!("usage: tagspeed time N [seeds|news|ru|hy] | check FILE"),
    }
}

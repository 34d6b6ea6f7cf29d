//! The differential test on real feeds: every document of
//! `../shared/realfeeds/corpus/` (1,185 feeds from public parsers' test
//! suites and captured real feeds, nobody on this project wrote them) is
//! served over the fixture server, one feed per file, and polled by the real
//! binary. Per file, what the state database holds is compared with
//! `tests/fixtures/realfeeds/expected.tsv`: entries stored, entries with
//! text, dated entries (generated with feedparser 6.0.14 by `generate.py`,
//! every difference reviewed by hand and explained there), and no title
//! holds U+FFFD.
//!
//! Speed: files are polled in batches (one binary run and one database per
//! batch). A batch shares dedup state between its feeds, which can only
//! hide entries (two test documents with the same link), never add any; so
//! a file whose batch result falls short is polled again alone, on a fresh
//! state, and that result is the one compared.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use support::cli::{Install, repo_path};
use support::feed_server::{FeedServer, Route};

/// The gzip bodies among the corpus files (served with `Content-Encoding: gzip`).
const GZIP_BODIES: &[&str] = &[
    "node-feedparser/compressed.xml",
    "node-feedparser/invalid-characters-gzipped.xml",
];

/// Files per binary run.
const BATCH: usize = 150;

/// Tag rules with one term each: the test counts entries, not relevance,
/// and compiling the shipped rules per run would dominate its time.
const RULES: &str = "[[tag]]\nname = \"csto\"\nprimary = true\nterms = [\"CSTO\"]\n\n\
                     [[tag]]\nname = \"armenia-azerbaijan\"\nprimary = true\nterms = [\"Nagorno-Karabakh\"]\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Counts {
    entries: u64,
    text: u64,
    dated: u64,
}

#[derive(Debug)]
struct Expected {
    reference: Counts,
    expected: Counts,
    reason: String,
}

fn corpus_dir() -> PathBuf {
    repo_path("../shared/realfeeds/corpus")
}

fn read_expectations() -> BTreeMap<String, Expected> {
    let text = std::fs::read_to_string(repo_path("tests/fixtures/realfeeds/expected.tsv")).unwrap();
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let cols: Vec<&str> = line.split('\t').collect();
        assert!(cols.len() >= 7, "expected.tsv: a short line: {line}");
        let n = |i: usize| -> u64 { cols[i].parse().unwrap_or_else(|_| panic!("expected.tsv: {line}")) };
        out.insert(
            cols[0].to_string(),
            Expected {
                reference: Counts {
                    entries: n(1),
                    text: n(2),
                    dated: n(3),
                },
                expected: Counts {
                    entries: n(4),
                    text: n(5),
                    dated: n(6),
                },
                reason: cols.get(7).unwrap_or(&"").to_string(),
            },
        );
    }
    out
}

/// The headers a file is served with: feedparser's `Header:` comments as its
/// own test server sends them, `application/xml` (or JSON) otherwise.
fn headers_of(rel: &str, body: &[u8]) -> Vec<(String, String)> {
    let mut headers = Vec::new();
    let text = String::from_utf8_lossy(body);
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Header:")
            && let Some((name, value)) = rest.split_once(':')
        {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    if !headers.iter().any(|(n, _)| n == "content-type") {
        let ty = if rel.ends_with(".json") {
            "application/json"
        } else {
            "application/xml"
        };
        headers.push(("content-type".into(), ty.into()));
    }
    if GZIP_BODIES.contains(&rel) {
        headers.push(("content-encoding".into(), "gzip".into()));
    }
    headers
}

fn feed_name(index: usize) -> String {
    format!("f{index:04}")
}

/// Polls the given files (index, path) in one run on a fresh state and
/// returns each file's counts and its titles that hold U+FFFD.
fn poll(server: &FeedServer, files: &[(usize, &str)]) -> BTreeMap<usize, (Counts, Vec<String>)> {
    let mut config = String::from(
        "[poll]\ntimeout = \"10s\"\nconcurrency = 16\nbackfill = \"100000d\"\n\n[state]\npath = \"../state/cstowatch.db\"\n",
    );
    for (index, _) in files {
        config.push_str(&format!(
            "\n[[feeds]]\nname = \"{}\"\nurl = \"{}\"\n",
            feed_name(*index),
            server.url(&format!("/{index}"))
        ));
    }
    let install = Install::new(&config);
    std::fs::write(install.dir.path().join("config/rules.toml"), RULES).unwrap();
    install.run(&["run", "--once", "--dry-run"]).expect_code(0);
    let conn = rusqlite::Connection::open(install.db_path()).unwrap();
    let mut counts: BTreeMap<usize, (Counts, Vec<String>)> = files
        .iter()
        .map(|(i, _)| (*i, (Counts::default(), Vec::new())))
        .collect();
    let mut stmt = conn
        .prepare(
            "SELECT feed, count(*), sum(summary != '' OR content != ''), sum(NOT undated) FROM items GROUP BY feed",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (feed, entries, text, dated) = row.unwrap();
        let index: usize = feed[1..].parse().unwrap();
        counts.get_mut(&index).unwrap().0 = Counts {
            entries: entries as u64,
            text: text as u64,
            dated: dated as u64,
        };
    }
    let mut stmt = conn
        .prepare("SELECT feed, title FROM items WHERE instr(title, char(65533)) > 0")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap();
    for row in rows {
        let (feed, title) = row.unwrap();
        let index: usize = feed[1..].parse().unwrap();
        counts.get_mut(&index).unwrap().1.push(title);
    }
    counts
}

/// Runs `work` over `items` on two threads (the machine's cores).
fn in_parallel<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let results = Mutex::new(Vec::new());
    let next = Mutex::new(0usize);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let i = {
                        let mut next = next.lock().unwrap();
                        let i = *next;
                        *next += 1;
                        i
                    };
                    let Some(item) = items.get(i) else { break };
                    let r = work(item);
                    results.lock().unwrap().push((i, r));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

#[test]
fn real_feeds_match_the_reviewed_expectations() {
    let corpus = corpus_dir();
    if !corpus.is_dir() {
        eprintln!(
            "SKIPPED: {} is absent (the real-feed corpus lives beside the repository)",
            corpus.display()
        );
        return;
    }
    let started = std::time::Instant::now();
    let expectations = read_expectations();
    let server = FeedServer::start();
    let files: Vec<(usize, &str)> = expectations
        .keys()
        .enumerate()
        .map(|(i, p)| (i, p.as_str()))
        .collect();
    for (index, rel) in &files {
        let path = corpus.join(rel);
        let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let headers = if GZIP_BODIES.contains(rel) {
            let mut plain = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut plain).unwrap();
            headers_of(rel, &plain)
        } else {
            headers_of(rel, &body)
        };
        server.set(&format!("/{index}"), Route::Raw { body, headers });
    }
    assert_eq!(
        count_files(&corpus),
        files.len(),
        "expected.tsv lists every corpus file (re-run generate.py when the corpus changes)"
    );

    let batches: Vec<&[(usize, &str)]> = files.chunks(BATCH).collect();
    let mut got: BTreeMap<usize, (Counts, Vec<String>)> = BTreeMap::new();
    for batch in in_parallel(&batches, |batch| poll(&server, batch)) {
        got.extend(batch);
    }
    let short: Vec<(usize, &str)> = files
        .iter()
        .filter(|(i, rel)| got[i].0 != expectations[*rel].expected)
        .copied()
        .collect();
    for alone in in_parallel(&short, |file| poll(&server, std::slice::from_ref(file))) {
        got.extend(alone);
    }

    let mut problems = Vec::new();
    let (mut ours, mut reference) = (Counts::default(), Counts::default());
    for (index, rel) in &files {
        let exp = &expectations[*rel];
        let (counts, bad_titles) = &got[index];
        ours.entries += counts.entries;
        ours.text += counts.text;
        ours.dated += counts.dated;
        reference.entries += exp.reference.entries;
        reference.text += exp.reference.text;
        reference.dated += exp.reference.dated;
        if *counts != exp.expected {
            problems.push(format!(
                "{rel}: stored {}/{}/{} (entries/text/dated), expected {}/{}/{} {}",
                counts.entries,
                counts.text,
                counts.dated,
                exp.expected.entries,
                exp.expected.text,
                exp.expected.dated,
                exp.reason
            ));
        }
        for title in bad_titles {
            problems.push(format!("{rel}: a title holds U+FFFD: {title:?}"));
        }
    }
    eprintln!(
        "real feeds: {} files in {:.1} s ({} re-polled alone); stored {} entries ({} with text, {} dated), reference {} ({} with text, {} dated)",
        files.len(),
        started.elapsed().as_secs_f64(),
        short.len(),
        ours.entries,
        ours.text,
        ours.dated,
        reference.entries,
        reference.text,
        reference.dated
    );
    assert!(
        problems.is_empty(),
        "{} files differ from expected.tsv:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            if p.is_dir() {
                count_files(&p)
            } else {
                usize::from(p.file_name().is_some_and(|n| n != "SOURCES.md"))
            }
        })
        .sum()
}

//! The tagger's measuring inputs, shared by the criterion bench
//! (`benches/tagger.rs`) and the `tagspeed` example, so both measure the
//! same text: the five seed articles, replicated to a size, and every item of
//! the real blog and news feeds in `../shared/realfeeds/corpus/`.

use std::path::Path;

use cstowatch::tag::{Document, Rules};

/// One article's fields as the tagger reads them.
pub struct Article {
    pub title: String,
    pub summary: String,
    pub body: String,
}

/// The five seed articles (`tests/fixtures/seeds/*.txt`: title on the first line).
pub fn seeds() -> Vec<Article> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seeds");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("seeds directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).expect("seed text");
            let (title, body) = text.split_once('\n').unwrap_or((&text, ""));
            Article {
                title: title.trim().to_string(),
                summary: String::new(),
                body: body.to_string(),
            }
        })
        .collect()
}

/// `seeds` repeated until they hold at least `bytes` of text; the articles and their size.
pub fn replicate(seeds: &[Article], bytes: usize) -> (Vec<&Article>, usize) {
    let mut out = Vec::new();
    let mut total = 0;
    for a in seeds.iter().cycle() {
        if total >= bytes {
            break;
        }
        total += a.title.len() + a.summary.len() + a.body.len();
        out.push(a);
    }
    (out, total)
}

/// Feed folders of real blog and news feeds (see SOURCES.md there).
const NEWS_FEEDS: [&str; 4] = ["feedjira/2009", "feedjira/current", "rsparser", "rss-parser"];

/// Every item of the real feeds under `../shared/realfeeds/corpus/`, or
/// `None` when the folder is absent.
pub fn news() -> Option<Vec<Article>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/realfeeds/corpus");
    if !root.is_dir() {
        return None;
    }
    let url = url::Url::parse("https://feeds.example/").expect("url");
    let now = jiff::Timestamp::now();
    let mut out = Vec::new();
    for dir in NEWS_FEEDS {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths.iter().filter(|p| p.is_file()) {
            let Ok(bytes) = std::fs::read(path) else { continue };
            let Ok(feed) = cstowatch::parse::parse_feed(&bytes, None, &url, "bench", now) else {
                continue;
            };
            out.extend(feed.items.into_iter().map(|i| Article {
                title: i.title,
                summary: i.summary,
                body: i.content,
            }));
        }
    }
    Some(out)
}

/// Tags every article, as the pipeline does; returns how many are relevant.
pub fn tag_all(rules: &Rules, docs: &[&Article]) -> usize {
    docs.iter()
        .filter(|a| {
            rules
                .tag(&Document {
                    title: &a.title,
                    summary: &a.summary,
                    content: &a.body,
                })
                .relevant
        })
        .count()
}

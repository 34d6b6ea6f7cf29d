//! The repository's labelled texts (the title, summary and content of each
//! JSON line), read by the benches that need realistic news items.

use std::path::Path;

use serde::Deserialize;

#[derive(Deserialize)]
pub struct Text {
    pub title: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub content: String,
}

/// Every item of `files` (JSON Lines under `tests/fixtures`), in order.
pub fn read(files: &[&str]) -> Vec<Text> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(root.join(f)).expect("a labelled set");
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str::<Text>(l).expect("a JSON line"))
                .collect::<Vec<_>>()
        })
        .collect()
}

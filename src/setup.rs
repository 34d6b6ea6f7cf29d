//! What every command and the service start from: loading the config and
//! the rules (problems are exit status 2), the failure type that decides the
//! exit status, and the async runtime. `commands` and `service` both build
//! on it, so neither has to import the other's internals.

use std::path::Path;

use anyhow::Context;

use crate::config::Config;
use crate::problem::{Problem, Problems};
use crate::tag::Rules;

/// The most threads the runtime's blocking pool grows to (parsing, tagging,
/// article extraction, DNS lookups).
const MAX_BLOCKING_THREADS: usize = 16;

/// Why a command failed, deciding the exit status.
#[derive(Debug)]
pub enum Failure {
    /// Bad usage, config or rules: exit 2. The message names file, line and key.
    Usage(String),
    /// Anything else: exit 1.
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Self {
        Failure::Other(e.into())
    }
}

pub type CommandResult = Result<(), Failure>;

pub(crate) fn problems_failure(problems: &Problems) -> Failure {
    Failure::Usage(format!(
        "{problems}\n(run `cstowatch check` to see every problem in config and rules)"
    ))
}

/// Loads and validates the config; problems are a usage failure (exit 2).
pub fn load_config(path: &Path) -> Result<Config, Failure> {
    Config::load(path).map_err(|p| problems_failure(&p))
}

/// Loads the config's rules and checks that the tags the config names exist.
/// Warnings are logged; errors are a usage failure (exit 2).
pub fn load_rules(config: &Config) -> Result<Rules, Failure> {
    let (rules, warnings) = Rules::load(&config.rules_path).map_err(|p| problems_failure(&p))?;
    release_free_heap();
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let unknown = unknown_config_tags(config, &rules);
    if !unknown.is_empty() {
        return Err(problems_failure(&Problems(unknown)));
    }
    Ok(rules)
}

/// Hands the heap's free pages back to the kernel. Compiling the rules is
/// the process's peak of short-lived allocations (about 51,000 trie nodes,
/// 1.4 MB, freed once the automaton is built); glibc returns freed memory
/// by itself only from the top of the heap, so without this those pages
/// stayed resident for the life of the service, a third of its anonymous
/// memory at idle. Only free memory is released: a later allocation that
/// needs it simply faults fresh pages in.
fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes glibc's arena locks itself and only gives
    // back whole pages of free chunks; no live allocation is touched.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Config keys that name tags (`digest.alert_tags`, `telegram.chats[].tags`)
/// must name tags the rules define, or nothing would ever match them.
pub(crate) fn unknown_config_tags(config: &Config, rules: &Rules) -> Vec<Problem> {
    let text = std::fs::read_to_string(&config.path).unwrap_or_default();
    let line_of = |tag: &str| {
        text.lines()
            .position(|l| l.contains(&format!("\"{tag}\"")) && !l.trim_start().starts_with('#'))
            .map(|i| i + 1)
    };
    let mut problems = Vec::new();
    let mut check = |tag: &str, key: String| {
        if !rules.is_tag(tag) {
            problems.push(Problem::error(
                &config.path,
                line_of(tag),
                Some(key),
                format!("tag {tag:?} is not defined in {}", config.rules_path.display()),
            ));
        }
    };
    for tag in &config.digest.alert_tags {
        check(tag, "digest.alert_tags".into());
    }
    for (i, chat) in config.telegram.chats.iter().enumerate() {
        for tag in &chat.tags {
            check(tag, format!("telegram.chats[{i}].tags"));
        }
    }
    problems
}

/// The multi-threaded runtime every async command runs on. The blocking pool
/// is capped: CPU work is bounded by the pipeline and the store has a thread
/// of its own, so a burst of thousands of feeds answering at once never
/// grows it to hundreds of threads.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
        .context("cannot start the async runtime")?)
}

//! The subcommands behind `src/main.rs`: each loads what it needs (config,
//! rules, state), calls the pipeline stages, and maps failures to the exit
//! statuses SPEC.md fixes (2 for bad usage, config or rules; 1 otherwise).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use jiff::Timestamp;

use crate::config::Config;
use crate::deliver::{Deliverer, DeliveryError, Mode};
use crate::digest::truncate;
use crate::pipeline::{Outcome, Pipeline, tag_text};
pub use crate::setup::{CommandResult, Failure};
use crate::setup::{load_config, load_rules, problems_failure, runtime, unknown_config_tags};
use crate::store::StoreHandle;
use crate::store::items::ItemTags;
use crate::story::assign::group_before_delivery;
use crate::tag::Rules;

/// `cstowatch check`: every problem in config and rules, with file and line.
pub fn check(config_path: &Path) -> CommandResult {
    let mut problems = Vec::new();
    let config = match Config::load(config_path) {
        Ok(c) => {
            problems.extend(crate::alerts::config_warnings(&c));
            Some(c)
        }
        Err(p) => {
            problems.extend(p.0);
            None
        }
    };
    if let Some(warning) = config.as_ref().and_then(|c| c.http.exposure_warning(&c.path)) {
        problems.push(warning);
    }
    let rules_path = match &config {
        Some(c) => c.rules_path.clone(),
        None => rules_beside(config_path),
    };
    match Rules::load(&rules_path) {
        Ok((rules, warnings)) => {
            problems.extend(warnings);
            if let Some(c) = &config {
                problems.extend(unknown_config_tags(c, &rules));
            }
        }
        Err(p) => problems.extend(p.0),
    }
    let errors = problems.iter().filter(|p| p.is_error()).count();
    let warnings = problems.len() - errors;
    let mut out = std::io::stdout().lock();
    for p in &problems {
        let _ = writeln!(out, "{p}");
    }
    if errors > 0 {
        let _ = writeln!(out, "{errors} error(s), {warnings} warning(s)");
        return Err(Failure::Usage(String::new()));
    }
    let _ = match &config {
        Some(c) => writeln!(
            out,
            "ok: {} ({} feeds, {} enabled) and {}{}",
            config_path.display(),
            c.feeds.len(),
            c.enabled_feeds().count(),
            rules_path.display(),
            if warnings > 0 {
                format!(" ({warnings} warning(s))")
            } else {
                String::new()
            }
        ),
        None => Ok(()),
    };
    Ok(())
}

/// Where the rules are when the config file does not exist: beside where it would be.
fn rules_beside(config_path: &Path) -> PathBuf {
    config_path.parent().unwrap_or(Path::new(".")).join("rules.toml")
}

/// `cstowatch tag`: JSON Lines in, JSON Lines out (or `--explain` for people).
pub fn tag(config_path: &Path, rules: Option<&Path>, file: Option<&Path>, explain: bool) -> CommandResult {
    let rules_path = match rules {
        Some(p) => p.to_path_buf(),
        None if config_path.exists() => load_config(config_path)?.rules_path,
        None => rules_beside(config_path),
    };
    let (rules, warnings) = Rules::load(&rules_path).map_err(|p| problems_failure(&p))?;
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let input: Box<dyn BufRead> = match file {
        None => Box::new(std::io::stdin().lock()),
        Some(p) if p == Path::new("-") => Box::new(std::io::stdin().lock()),
        Some(p) => Box::new(BufReader::new(
            std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
        )),
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let summary = crate::tag::run_tag_command(&rules, input, &mut out, explain)?;
    out.flush().context("cannot write to stdout")?;
    if summary.errors > 0 {
        return Err(Failure::Other(anyhow::anyhow!(
            "{} of {} input line(s) could not be tagged (see the messages above)",
            summary.errors,
            summary.items + summary.errors
        )));
    }
    Ok(())
}

/// `cstowatch retag`: re-tags undelivered items after a rules change.
pub fn retag(config_path: &Path, dry_run: bool) -> CommandResult {
    let config = load_config(config_path)?;
    let rules = load_rules(&config)?;
    let store = StoreHandle::open(&config.state.path)?;
    let items = store.call_blocking(|s| s.undelivered_items())?;
    let mut updates: Vec<(i64, ItemTags)> = Vec::new();
    let mut changed = Vec::new();
    let mut shown = Vec::new();
    for stored in &items {
        let tags = tag_text(&rules, &stored.title, &stored.summary, &stored.content);
        if tags.relevant != stored.tags.relevant {
            changed.push(stored);
        }
        // What a dry run lists: a change of relevance or of the tags given.
        if tags.relevant != stored.tags.relevant || tags.tags != stored.tags.tags {
            shown.push((stored, tags.clone()));
        }
        if tags != stored.tags {
            updates.push((stored.id, tags));
        }
    }
    let changed_tags = updates.len();
    let mut out = std::io::stdout().lock();
    if dry_run {
        for (item, new) in &shown {
            let marker = match (item.tags.relevant, new.relevant) {
                (false, true) => "+relevant  ",
                (true, false) => "-irrelevant",
                _ => "~tags      ",
            };
            let _ = writeln!(
                out,
                "{marker} {} [{}] {}  (tags: {} -> {})",
                item.id,
                item.feed,
                item.title,
                item.tags.tags.join(" "),
                new.tags.join(" ")
            );
        }
    } else {
        store.call_blocking(move |s| s.update_tags(&updates))?;
    }
    let _ = writeln!(
        out,
        "{} item(s) re-tagged, {} changed tags, {} changed relevance{}",
        items.len(),
        changed_tags,
        changed.len(),
        if dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        }
    );
    Ok(())
}

/// `cstowatch status`: feed health, pending and delivered counts.
pub fn status(config_path: &Path) -> CommandResult {
    let config = Arc::new(load_config(config_path)?);
    let store = StoreHandle::open(&config.state.path)?;
    let (states, undated, counts, destinations, alerts) = {
        let config = Arc::clone(&config);
        store.call_blocking(move |s| {
            Ok((
                s.feed_states()?,
                s.undated_counts()?,
                s.item_counts()?,
                crate::deliver::destination_status(s, &config)?,
                crate::alerts::current(s, &config)?,
            ))
        })?
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<20} {:<8} {:<20} {:>5} {:>6} {:>7}  LAST ERROR OR WARNING",
        "FEED", "STATUS", "LAST SUCCESS", "FAILS", "SEEN", "UNDATED"
    );
    // By name, so 10,000 feeds are not 10,000 scans of 10,000 states.
    let by_name: std::collections::HashMap<&str, &crate::store::feeds::FeedState> =
        states.iter().map(|s| (s.name.as_str(), s)).collect();
    for feed in &config.feeds {
        let state = by_name.get(feed.name.as_str()).copied();
        let status = match state {
            _ if !feed.enabled => "disabled".to_string(),
            None => "never".to_string(),
            Some(s) => s.last_status.clone().unwrap_or_else(|| "-".into()),
        };
        let last_success = state
            .and_then(|s| s.last_success_at)
            .map_or("never".to_string(), short_time);
        // The last error, while it is still the feed's latest outcome.
        let error = state
            .filter(|s| s.consecutive_failures > 0 || s.last_success_at < s.last_error_at)
            .and_then(|s| {
                Some(format!(
                    "{} ({})",
                    s.last_error.as_ref()?,
                    short_time(s.last_error_at?)
                ))
            })
            .or_else(|| Some(format!("warning: {}", state?.last_warning.as_ref()?)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<20} {:<8} {:<20} {:>5} {:>6} {:>7}  {}",
            truncate(&feed.name, 20),
            status,
            last_success,
            state.map_or(0, |s| s.consecutive_failures),
            state.map_or(0, |s| s.items_seen),
            undated.get(&feed.name).copied().unwrap_or(0),
            error
        );
    }
    let configured: std::collections::HashSet<&str> = config.feeds.iter().map(|f| f.name.as_str()).collect();
    for s in states.iter().filter(|s| !configured.contains(s.name.as_str())) {
        let _ = writeln!(
            out,
            "{:<20} (no longer configured; {} items seen)",
            truncate(&s.name, 20),
            s.items_seen
        );
    }
    let _ = writeln!(
        out,
        "\nitems: {} seen, {} relevant, {} backfilled (never posted)",
        counts.total, counts.relevant, counts.backfill
    );
    let _ = writeln!(
        out,
        "{:<32} {:>8} {:>10}  LAST ERROR",
        "DESTINATION", "PENDING", "DELIVERED"
    );
    for d in destinations {
        let _ = writeln!(
            out,
            "{:<32} {:>8} {:>10}  {}",
            d.destination,
            d.pending,
            d.delivered,
            d.last_error.unwrap_or_default()
        );
    }
    // Under the tables, so the rows above keep their columns for scripts.
    if !alerts.is_empty() {
        let _ = writeln!(out);
    }
    for line in alerts {
        let _ = writeln!(out, "alert: {line}");
    }
    print!("{out}");
    Ok(())
}

fn short_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// The delivery side, with its token, built from the config.
fn deliverer(config: &Config) -> Result<Deliverer, Failure> {
    let token = config.telegram_token()?;
    Ok(Deliverer::new(config, token)?)
}

fn delivery_failure(e: DeliveryError) -> Failure {
    Failure::Other(anyhow::Error::new(e))
}

/// `cstowatch digest`: everything pending, now.
pub fn digest(config_path: &Path, dry_run: bool) -> CommandResult {
    let config = load_config(config_path)?;
    let rules = Arc::new(load_rules(&config)?);
    let deliverer = deliverer(&config)?;
    let store = StoreHandle::open(&config.state.path)?;
    let report = runtime()?
        .block_on(async {
            group_before_delivery(&store, rules).await;
            deliverer
                .deliver(&store, Timestamp::now(), Mode::Force, dry_run)
                .await
        })
        .map_err(delivery_failure)?;
    tracing::info!("{report}");
    // `digest` is an explicit "send now": a destination that failed is a failed command.
    let errors: Vec<String> = report.errors().map(|(dest, e)| format!("{dest}: {e}")).collect();
    if !errors.is_empty() {
        return Err(Failure::Other(anyhow::anyhow!(
            "delivery failed, the items stay pending and go out on the next attempt:\n  {}",
            errors.join("\n  ")
        )));
    }
    Ok(())
}

/// `cstowatch run`: the service, or one cycle with `--once`.
pub fn run(config_path: &Path, once: bool, dry_run: bool) -> CommandResult {
    if !once {
        return crate::service::run(config_path, dry_run);
    }
    let config = Arc::new(load_config(config_path)?);
    let rules = Arc::new(load_rules(&config)?);
    let deliverer = deliverer(&config)?;
    let store = StoreHandle::open(&config.state.path)?;
    runtime()?.block_on(async {
        let pipeline = Arc::new(Pipeline::new(Arc::clone(&config), Arc::clone(&rules), store.clone()).await?);
        let reports = pipeline.poll_all().await?;
        let failed = reports
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
            .count();
        tracing::info!(feeds = reports.len(), failed, "poll cycle done");
        group_before_delivery(&store, rules).await;
        crate::alerts::check(&store, &config, deliverer.admin_destination()).await;
        // The weekly report, when its slot has passed and it was not queued
        // yet; a report that cannot be built must not hold up delivery.
        let destinations = deliverer
            .reader_destination_ids()
            .into_iter()
            .map(String::from)
            .collect();
        if let Err(e) =
            crate::report::queue_due(&store, pipeline.rules(), &config, destinations, Timestamp::now()).await
        {
            tracing::error!("cannot queue the weekly report: {e:#}");
        }
        let report = deliverer
            .deliver(&store, Timestamp::now(), Mode::Scheduled, dry_run)
            .await
            .map_err(delivery_failure)?;
        tracing::info!("{report}");
        Ok::<_, Failure>(())
    })
}

/// How near the line an item must be to be listed by `review`: items that
/// missed with at least this share of the threshold, and items that passed
/// with at most `1 + (1 - NEAR)` of it (0.5 → from half the threshold up to
/// one and a half times it).
const NEAR: f64 = 0.5;

/// `cstowatch review`: near misses among the items seen in the last
/// `since` — stored items whose best primary tag fell just below its
/// threshold, and relevant items that only just passed — closest to the
/// line first, each with its largest contributions (as `tag --explain`
/// gives them) and its link. Judged with the rules in force now, so an
/// operator sees what a rules change moved.
pub fn review(config_path: &Path, since: std::time::Duration, limit: usize, json: bool) -> CommandResult {
    let config = load_config(config_path)?;
    let rules = load_rules(&config)?;
    let store = StoreHandle::open(&config.state.path)?;
    let from = Timestamp::now()
        .checked_sub(jiff::SignedDuration::try_from(since).context("--since is too long")?)
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let items = store.call_blocking(move |s| s.items_seen_since(from))?;
    let mut near = Vec::new();
    for item in &items {
        let doc = crate::tag::Document {
            title: &item.title,
            summary: &item.summary,
            content: &item.content,
        };
        let Some(margin) = crate::tag::explain::primary_margin(&rules, &doc) else {
            continue;
        };
        let ratio = margin.score / margin.threshold;
        if (NEAR..=2.0 - NEAR).contains(&ratio) {
            near.push((item, margin));
        }
    }
    near.sort_by(|(_, a), (_, b)| a.distance().abs().total_cmp(&b.distance().abs()));
    let shown = near.len().min(limit);
    let mut out = std::io::stdout().lock();
    if json {
        for (item, m) in &near[..shown] {
            let line = serde_json::json!({
                "id": item.id,
                "feed": item.feed,
                "title": item.title,
                "url": item.url,
                "relevant": m.given,
                "tag": m.tag,
                "score": m.score,
                "threshold": m.threshold,
                "reasons": m.reasons,
            });
            let _ = writeln!(out, "{line}");
        }
        return Ok(());
    }
    let _ = writeln!(
        out,
        "{shown} near miss(es) of {} item(s) seen since {} (closest to the line first; --limit {limit}):",
        items.len(),
        short_time(from)
    );
    for (item, m) in &near[..shown] {
        let verdict = if m.given { "passed" } else { "below " };
        let _ = writeln!(
            out,
            "\n{verdict} {} {:.2} of {:.2}  [{}] {}",
            m.tag,
            m.score,
            m.threshold,
            item.feed,
            truncate(&item.title, 100)
        );
        let _ = writeln!(out, "       {}", item.url.as_deref().unwrap_or("(no link)"));
        for reason in m.reasons.iter().take(3) {
            let _ = writeln!(out, "       {}", truncate(reason, 160));
        }
    }
    Ok(())
}

/// `cstowatch report --week`: the weekly chart of the last seven whole days
/// (in the digest's time zone). With `--out` (or `--dry-run`) it is written
/// to a file and nothing is sent; otherwise it is queued for every
/// destination and sent at once through the outbox, like any notice.
pub fn report(config_path: &Path, out: Option<&Path>, dry_run: bool) -> CommandResult {
    let config = load_config(config_path)?;
    let rules = Arc::new(load_rules(&config)?);
    let posting = out.is_none() && !dry_run;
    let deliverer = if posting { Some(deliverer(&config)?) } else { None };
    let store = StoreHandle::open(&config.state.path)?;
    runtime()?.block_on(async {
        let now = Timestamp::now();
        let week = crate::report::Week::before_time(now, &config.digest)?;
        let key = week.key();
        let built = crate::report::build(&store, rules, week).await?;
        let (report, png) = crate::report::render(built).await?;
        let caption = report.caption();
        let summary = format!(
            "{} ({}×{} PNG, {} KB): {} relevant stories, {}",
            report.week.title(),
            crate::report::chart::WIDTH,
            crate::report::chart::HEIGHT,
            png.len().div_ceil(1024),
            report.stories_this_week,
            report.week.zone_name
        );
        let Some(deliverer) = deliverer else {
            let path = match out {
                Some(path) => path.to_path_buf(),
                // `report:2026-W48` → `cstowatch-report-2026-W48.png`, in the working directory.
                None => PathBuf::from(format!("cstowatch-{}.png", key.replace(':', "-"))),
            };
            std::fs::write(&path, &png).with_context(|| format!("cannot write the chart to {}", path.display()))?;
            println!("wrote {}: {summary}", path.display());
            if dry_run {
                println!("caption (dry run: nothing sent):\n{caption}");
            }
            return Ok(());
        };
        // Its own key per request: asking for the chart again posts it again
        // (even within the same second: the key is to the nanosecond), and
        // never stands in for the scheduled report of the same week.
        let key = format!("{key}:on-demand:{}", now.as_nanosecond());
        let destinations: Vec<String> = deliverer.reader_destination_ids().into_iter().map(String::from).collect();
        crate::report::queue(&store, destinations, key, caption, png, now).await?;
        let delivery = deliverer
            .deliver(&store, now, Mode::NoticesOnly, false)
            .await
            .map_err(delivery_failure)?;
        tracing::info!("{delivery}");
        let errors: Vec<String> = delivery.errors().map(|(dest, e)| format!("{dest}: {e}")).collect();
        if !errors.is_empty() {
            return Err(Failure::Other(anyhow::anyhow!(
                "the chart was not accepted everywhere; it stays queued and goes out with the next delivery:\n  {}",
                errors.join("\n  ")
            )));
        }
        eprintln!("posted {summary}");
        Ok::<_, Failure>(())
    })
}

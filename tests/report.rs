//! The weekly report on the real binary, from a state with two weeks of
//! items polled from fixture feeds (a real SQLite file):
//! - `report --week --out chart.png` writes a 1280×720 PNG whose plot has
//!   both series drawn, this week's and the week before's;
//! - `--dry-run` prints the caption: stories (not items) counted, hashtags;
//! - with `[report] weekly = true` the service, then two `run --once`,
//!   post the chart through the fake Bot API's multipart `sendPhoto` exactly
//!   once;
//! - a `sendPhoto` answered 500 stays queued and goes out once on the next run.
//!
//! `CSTOWATCH_UPDATE_SAMPLE_CHART=1 cargo test --test report` also writes the
//! chart to `docs/weekly-chart.png`, the sample the README shows.

mod support;

use std::time::{Duration, Instant};

use cstowatch::report::chart::{HEIGHT, SERIES_COLOURS, WIDTH, faint};
use support::cli::{Install, hours_ago, repo_path};
use support::fake_telegram::{CHANNEL, Failure, FakeTelegram, TOKEN};
use support::feed_server::{FeedServer, Route};
use support::service::Service;

/// (hours ago, title, summary) of feed A: six CSTO and six
/// Armenia–Azerbaijan events over six days of this week, five
/// Armenia–Azerbaijan events in the week before, each a story of its own,
/// on days chosen so that no two lines coincide. `24 k + 12` hours ago
/// lands on a whole day before today in Yerevan: days 1–6 in this week,
/// 8–12 in the week before.
const FEED_A: &[(i64, &str, &str)] = &[
    (
        36,
        "CSTO Secretary General Tasmagambetov visits Dushanbe to discuss the Afghan border",
        "He met Tajik officials on the border with Afghanistan.",
    ),
    (
        36,
        "Azerbaijani troops fire on Armenian positions near Khoznavar",
        "The defence ministry in Yerevan reported gunfire overnight.",
    ),
    (
        60,
        "CSTO defence ministers approve the 2027 joint exercise plan in Minsk",
        "The plan covers drills in Belarus and Kazakhstan.",
    ),
    (
        60,
        "Mirzoyan and Bayramov meet in Abu Dhabi on the peace treaty text",
        "The foreign ministers discussed the remaining articles.",
    ),
    (
        84,
        "Armenia will not pay its CSTO budget share this year, Pashinyan says",
        "The prime minister spoke in parliament.",
    ),
    (
        84,
        "Armenian and Azerbaijani border commissions agree on a stretch near Tavush",
        "The commissions met on the border.",
    ),
    (
        108,
        "Kazakhstan hosts CSTO rapid reaction force drills near Almaty",
        "Troops from five member states take part.",
    ),
    (
        108,
        "Azerbaijan accuses Armenia of building fortifications on the border near Sotk",
        "Azerbaijan's defence ministry said Armenian troops were digging in on the border.",
    ),
    (
        132,
        "Russia urges Armenia to return to the CSTO, Lavrov says in Moscow",
        "The Russian foreign minister spoke to journalists.",
    ),
    (
        132,
        "Aliyev says the Zangezur corridor will open next year",
        "The Azerbaijani president spoke at a forum in Baku.",
    ),
    (
        84,
        "CSTO parliamentary assembly meets in Saint Petersburg without Armenia",
        "Delegations from five states attended.",
    ),
    (
        156,
        "Armenian villagers in Tegh report shots from Azerbaijani posts",
        "Nobody was hurt, the village head said.",
    ),
    (
        204,
        "Azerbaijan returns two Armenian detainees at the Margara crossing",
        "The handover was mediated by the ICRC.",
    ),
    (
        206,
        "Armenia and Azerbaijan exchange drafts of the peace treaty in Washington",
        "Officials met at the State Department.",
    ),
    (
        252,
        "Azerbaijani drone strikes an Armenian army truck near Jermuk",
        "The Armenian defence ministry said one soldier was wounded.",
    ),
    (
        276,
        "Pashinyan and Aliyev talk by phone about the border delimitation in Gegharkunik",
        "Both offices published statements.",
    ),
    (
        300,
        "Azerbaijan opens a new checkpoint on the Lachin road",
        "Armenian officials protested.",
    ),
];

/// Feed B reports one of feed A's events again (another outlet, other words):
/// the report counts it once, as one story.
const FEED_B: &[(i64, &str, &str)] = &[(
    37,
    "Armenian positions near Khoznavar come under fire from Azerbaijani troops",
    "Yerevan said Azerbaijani forces fired overnight on the border near Khoznavar.",
)];

/// Stories in this week: 12 events (the Khoznavar report counted once).
const STORIES_THIS_WEEK: usize = 12;

fn rss(server: &FeedServer, feed: &str, items: &[(i64, &str, &str)]) -> String {
    let mut s = String::from("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>News</title>");
    for (i, (hours, title, summary)) in items.iter().enumerate() {
        s.push_str(&format!(
            "<item><title>{title}</title><link>{}</link><guid>{feed}-{i}</guid>\
             <pubDate>{}</pubDate><description>{summary}</description></item>",
            server.url(&format!("/{feed}/{i}")),
            hours_ago(*hours)
        ));
    }
    s.push_str("</channel></rss>");
    s
}

/// Two fixture feeds, and an install whose config adds `extra`.
fn install(server: &FeedServer, extra: &str) -> Install {
    server.set("/a/feed", Route::feed(rss(server, "a", FEED_A), "\"a1\""));
    server.set("/b/feed", Route::feed(rss(server, "b", FEED_B), "\"b1\""));
    Install::new(&format!(
        "[poll]\ntimeout = \"5s\"\n\
         [[feeds]]\nname = \"A\"\nurl = \"{}\"\n[[feeds]]\nname = \"B\"\nurl = \"{}\"\n\
         [state]\npath = \"../state/cstowatch.db\"\n{extra}",
        server.url("/a/feed"),
        server.url("/b/feed"),
    ))
}

/// How many pixels of `rgb` (RGB triples) are exactly `colour`.
fn pixels_of(rgb: &[u8], (r, g, b): (u8, u8, u8)) -> usize {
    rgb.chunks_exact(3).filter(|p| p == &[r, g, b]).count()
}

/// Decodes a PNG into (width, height, RGB pixels).
fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).expect("a PNG frame");
    assert_eq!(frame.color_type, png::ColorType::Rgb);
    pixels.truncate(frame.buffer_size());
    (frame.width, frame.height, pixels)
}

/// The plot is not empty: each primary tag's line of this week and of the
/// week before is drawn. The legend alone holds about 32×5 pixels of a
/// colour; a series' line across the plot holds thousands.
fn assert_both_series_drawn(rgb: &[u8]) {
    for colour in SERIES_COLOURS {
        let bold = pixels_of(rgb, colour);
        assert!(bold > 1500, "this week's line in {colour:?}: {bold} pixels");
    }
    // Only Armenia–Azerbaijan had stories the week before (the CSTO line is flat at 0).
    let washed = pixels_of(rgb, faint(SERIES_COLOURS[1]));
    assert!(washed > 1500, "the week before's line: {washed} pixels");
}

#[test]
fn report_week_out_renders_two_weeks_of_stories_as_a_png() {
    let server = FeedServer::start();
    let install = install(&server, "");
    install.run(&["run", "--once", "--dry-run"]).expect_code(0);
    assert_eq!(
        install.count("SELECT count(*) FROM items WHERE relevant = 1"),
        (FEED_A.len() + FEED_B.len()) as i64,
        "every fixture item is relevant"
    );

    let out = install.dir.path().join("chart.png");
    let run = install.run(&["report", "--week", "--out", out.to_str().unwrap()]);
    run.expect_code(0);
    assert!(run.stdout().contains("chart.png"), "{}", run.stdout());
    let png_bytes = std::fs::read(&out).unwrap();
    let (width, height, rgb) = decode(&png_bytes);
    assert_eq!((width, height), (WIDTH, HEIGHT));
    assert_eq!((width, height), (1280, 720));
    assert_both_series_drawn(&rgb);
    if std::env::var_os("CSTOWATCH_UPDATE_SAMPLE_CHART").is_some() {
        std::fs::create_dir_all(repo_path("docs")).unwrap();
        std::fs::write(repo_path("docs/weekly-chart.png"), &png_bytes).unwrap();
    }

    // --dry-run: the file under the week's name, the caption printed, nothing sent.
    let run = install.run(&["report", "--week", "--dry-run"]);
    run.expect_code(0);
    let stdout = run.stdout();
    assert!(
        stdout.contains(&format!("{STORIES_THIS_WEEK} relevant stories")),
        "stories, not items (the Khoznavar report comes from two feeds):\n{stdout}"
    );
    assert!(stdout.contains("Top tags: #"), "{stdout}");
    assert!(stdout.contains("(dry run: nothing sent)"), "{stdout}");
    let written: Vec<_> = std::fs::read_dir(install.dir.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("cstowatch-report-") && name.ends_with(".png"))
        .collect();
    assert_eq!(written.len(), 1, "{written:?}");
}

#[test]
fn report_without_week_is_bad_usage() {
    let server = FeedServer::start();
    let install = install(&server, "");
    let run = install.run(&["report"]);
    run.expect_code(2);
    assert!(run.stderr().contains("--week"), "{}", run.stderr());
}

/// Config for posting to the fake: one channel, the weekly report on.
fn posting(fake: &FakeTelegram) -> String {
    format!(
        "[telegram]\napi_url = \"{}\"\nchat = \"{CHANNEL}\"\n[report]\nweekly = true\n",
        fake.url
    )
}

fn photos(fake: &FakeTelegram) -> Vec<support::fake_telegram::Accepted> {
    fake.accepted()
        .into_iter()
        .filter(|a| a.photo.is_some())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_weekly_report_goes_out_once_across_the_service_two_runs_and_restarts() {
    let fake = FakeTelegram::start().await;
    let server = FeedServer::start();
    // The items first, polled with the report off.
    let mut install = install(&server, "");
    install.run(&["run", "--once", "--dry-run"]).expect_code(0);
    let config = std::fs::read_to_string(install.config_path()).unwrap();
    install.write_config(&(config + &posting(&fake)));
    install
        .env
        .push(("CSTOWATCH_TELEGRAM_TOKEN".into(), TOKEN.into()));

    // The service: at start the latest weekly slot has passed (it is at most
    // a week old), so it queues that week's report and sends it.
    let mut service = Service::start(&install);
    let deadline = Instant::now() + Duration::from_secs(20);
    while photos(&fake).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    service.signal("TERM");
    let (code, _) = service.wait_exit(Duration::from_secs(20));
    let log = service.whole_log();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("weekly report queued"), "{log}");

    // Two more runs after the restart: nothing new to queue or send.
    for _ in 0..2 {
        install.run(&["run", "--once"]).expect_code(0);
    }
    let sent = photos(&fake);
    assert_eq!(sent.len(), 1, "exactly one weekly chart: {sent:#?}");
    let chart = &sent[0];
    assert_eq!(chart.chat, CHANNEL);
    assert_eq!(chart.parse_mode.as_deref(), Some("HTML"));
    assert!(chart.visible.starts_with("📈 Week of "), "{}", chart.visible);
    assert!(
        chart
            .visible
            .contains(&format!("{STORIES_THIS_WEEK} relevant stories")),
        "{}",
        chart.visible
    );
    let photo = chart.photo.as_ref().unwrap();
    assert_eq!((photo.width, photo.height), (WIDTH, HEIGHT));
    assert_both_series_drawn(&photo.rgb);
    assert_eq!(
        install.count("SELECT count(*) FROM notices WHERE kind = 'weekly-report' AND sent_at IS NOT NULL"),
        1
    );
    // The digest went out too, once: the chart is a notice beside it, not instead of it.
    let texts: Vec<_> = fake
        .accepted()
        .into_iter()
        .filter(|a| a.photo.is_none())
        .collect();
    assert!(!texts.is_empty());
    // (Items older than the 48 h backfill window were never to be posted;
    // the chart counts them all the same: they are the week's news.)
    assert_eq!(
        install.count("SELECT count(*) FROM deliveries"),
        install.count("SELECT count(*) FROM items WHERE status = 'pending' AND relevant = 1")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_send_photo_is_retried_and_delivered_once() {
    let fake = FakeTelegram::start().await;
    let server = FeedServer::start();
    let mut install = install(&server, &posting(&fake));
    install
        .env
        .push(("CSTOWATCH_TELEGRAM_TOKEN".into(), TOKEN.into()));
    // The chart is the first message of the cycle: it gets the 500.
    fake.fail_next([Failure::ServerError(500)]);
    install.run(&["run", "--once"]).expect_code(0);
    assert!(photos(&fake).is_empty());
    assert!(
        fake.accepted().is_empty(),
        "the first failure stops the destination's cycle"
    );
    assert_eq!(
        install.count("SELECT count(*) FROM notices WHERE sent_at IS NULL"),
        1,
        "the chart stays queued"
    );

    install.run(&["run", "--once"]).expect_code(0);
    install.run(&["run", "--once"]).expect_code(0);
    assert_eq!(photos(&fake).len(), 1);
    let photo_requests = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.to_ascii_lowercase().ends_with("/sendphoto"))
        .count();
    assert_eq!(photo_requests, 2, "one refused, one accepted");
}

#[tokio::test(flavor = "multi_thread")]
async fn report_week_without_out_posts_the_chart_now_and_nothing_else() {
    let fake = FakeTelegram::start().await;
    let server = FeedServer::start();
    let mut install = install(&server, "");
    install.run(&["run", "--once", "--dry-run"]).expect_code(0);
    // The weekly slot off: only the on-demand chart may go out.
    let config = std::fs::read_to_string(install.config_path()).unwrap();
    install
        .write_config(&(config + &format!("[telegram]\napi_url = \"{}\"\nchat = \"{CHANNEL}\"\n", fake.url)));
    install
        .env
        .push(("CSTOWATCH_TELEGRAM_TOKEN".into(), TOKEN.into()));

    install.run(&["report", "--week"]).expect_code(0);
    let accepted = fake.accepted();
    assert_eq!(accepted.len(), 1, "the chart only, no digest: {accepted:#?}");
    let photo = accepted[0].photo.as_ref().expect("a photo");
    assert_eq!((photo.width, photo.height), (WIDTH, HEIGHT));
    assert!(
        accepted[0]
            .visible
            .contains(&format!("{STORIES_THIS_WEEK} relevant stories"))
    );
    assert_eq!(
        install.count("SELECT count(*) FROM deliveries"),
        0,
        "items stay pending"
    );

    // Asked again, posted again: each request is its own notice.
    install.run(&["report", "--week"]).expect_code(0);
    assert_eq!(photos(&fake).len(), 2);
}

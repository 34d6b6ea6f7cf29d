//! Stories end to end on the real binary: three fixture feeds report the
//! same two events (a shooting at the border, a CSTO ministers' meeting),
//! plus an event only one of them reports and items off topic. The channel
//! (the fake Bot API) gets one entry per story — the headline linked, the
//! other outlets after "also:" — nothing twice across runs and restarts,
//! and a later report on a posted story once, as "more on".
//!
//! The fixture items are written for this test.

mod support;

use support::cli::{Install, hours_ago};
use support::fake_telegram::{Accepted, CHANNEL, FakeTelegram, TOKEN};
use support::feed_server::{FeedServer, Route};

/// One fixture entry: (title, summary, hours ago).
type Entry = (&'static str, &'static str, i64);

const MASSIS: &[Entry] = &[
    (
        "Azerbaijani troops open fire on Armenian positions near Sotk",
        "The Armenian Defence Ministry said Azerbaijani units fired small arms at Armenian positions near Sotk in Gegharkunik late on Tuesday. No one was hurt.",
        9,
    ),
    (
        "CSTO foreign ministers meet in Minsk without Armenia",
        "Foreign ministers of the CSTO met in Minsk on Wednesday to discuss the bloc's budget and joint exercises; Armenia sent no delegation.",
        7,
    ),
    (
        "Yerevan opens a new metro station after ten years of works",
        "The station in the Achapnyak district welcomed its first passengers on Wednesday morning.",
        6,
    ),
];

const EVN: &[Entry] = &[
    (
        "Shooting near Sotk as Azerbaijani forces fire on Armenian posts",
        "Azerbaijani forces fired on Armenian posts near Sotk on Tuesday night, according to the Armenian Defence Ministry, which reported no casualties.",
        8,
    ),
    (
        "Armenia skips CSTO foreign ministers' meeting in Minsk",
        "Armenia stayed away from the meeting of CSTO foreign ministers in Minsk, continuing its freeze of participation in the bloc.",
        6,
    ),
    (
        "Armenian wine exports grow by a fifth this year",
        "Producers in Areni and Vayots Dzor shipped more bottles abroad than ever, the economy ministry said.",
        5,
    ),
];

const JAMESTOWN: &[Entry] = &[
    (
        "Azerbaijani forces fire on Armenian border posts near Sotk, Armenian ministry says",
        "Armenian positions near Sotk came under fire from Azerbaijani forces on Tuesday night, the Armenian Defence Ministry reported.",
        7,
    ),
    (
        "In Minsk, CSTO foreign ministers convene while Armenia stays away",
        "CSTO foreign ministers convened in Minsk without Armenia, whose seat at the table stayed empty.",
        5,
    ),
    (
        "Pashinyan and Aliyev agree to resume border delimitation talks in Tbilisi",
        "The leaders of Armenia and Azerbaijan agreed to send their delimitation commissions to Tbilisi next month.",
        4,
    ),
];

/// A report on the shooting that comes after the first digest.
const LATER: Entry = (
    "Armenian Defence Ministry details Azerbaijani fire on positions near Sotk",
    "The Armenian Defence Ministry said the Azerbaijani fire on positions near Sotk lasted about twenty minutes on Tuesday night.",
    3,
);

const SHOOTING: [&str; 3] = [MASSIS[0].0, EVN[0].0, JAMESTOWN[0].0];
const MEETING: [&str; 3] = [MASSIS[1].0, EVN[1].0, JAMESTOWN[1].0];
const OFF_TOPIC: [&str; 2] = [MASSIS[2].0, EVN[2].0];

fn feed(server: &FeedServer, slug: &str, entries: &[Entry]) -> String {
    let mut s = format!("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>{slug}</title>");
    for (i, (title, summary, hours)) in entries.iter().enumerate() {
        s.push_str(&format!(
            "<item><title>{title}</title><link>{}</link><guid>{slug}-{i}</guid>\
             <pubDate>{}</pubDate><description>{summary}</description></item>",
            server.url(&format!("/{slug}/{i}")),
            hours_ago(*hours)
        ));
    }
    s.push_str("</channel></rss>");
    s
}

fn install(server: &FeedServer, fake: &FakeTelegram) -> Install {
    let config = format!(
        "[poll]\ntimeout = \"5s\"\n\
         [[feeds]]\nname = \"MassisPost\"\nurl = \"{}\"\n\
         [[feeds]]\nname = \"EVN Report\"\nurl = \"{}\"\n\
         [[feeds]]\nname = \"Jamestown\"\nurl = \"{}\"\n\
         [telegram]\napi_url = \"{}\"\nchat = \"{CHANNEL}\"\n\
         [digest]\nat = [\"09:00\"]\n[state]\npath = \"../state/cstowatch.db\"\n",
        server.url("/massis"),
        server.url("/evn"),
        server.url("/jamestown"),
        fake.url
    );
    let mut install = Install::new(&config);
    install
        .env
        .push(("CSTOWATCH_TELEGRAM_TOKEN".into(), TOKEN.into()));
    install
}

/// The digest entries of the accepted messages: blocks starting with "• ".
fn entries(accepted: &[Accepted]) -> Vec<String> {
    accepted
        .iter()
        .flat_map(|m| m.visible.split("\n\n"))
        .filter(|block| block.starts_with("• "))
        .map(str::to_string)
        .collect()
}

/// The entry whose text contains any of `titles`, which must be exactly one.
fn entry_of(entries: &[String], titles: &[&str]) -> String {
    let found: Vec<&String> = entries
        .iter()
        .filter(|e| titles.iter().any(|t| e.contains(t)))
        .collect();
    assert_eq!(found.len(), 1, "one entry for {titles:?} in:\n{entries:#?}");
    found[0].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_outlets_two_events_two_stories_then_more_on_once() {
    let server = FeedServer::start();
    server.set("/massis", Route::feed(feed(&server, "massis", MASSIS), "\"m1\""));
    server.set("/evn", Route::feed(feed(&server, "evn", EVN), "\"e1\""));
    server.set(
        "/jamestown",
        Route::feed(feed(&server, "jamestown", JAMESTOWN), "\"j1\""),
    );
    let fake = FakeTelegram::start().await;
    let install = install(&server, &fake);

    // First run: the channel never had a digest, so it gets one at once.
    install.run(&["run", "--once"]).expect_code(0);
    let first = fake.accepted();
    assert!(!first.is_empty(), "no digest sent");
    let shown = entries(&first);
    let text: String = first.iter().map(|m| m.visible.clone()).collect();

    for (story, slug_titles) in [("shooting", SHOOTING), ("meeting", MEETING)] {
        let entry = entry_of(&shown, &slug_titles);
        // One headline of the three, the other two outlets after "also:".
        let headlines = slug_titles.iter().filter(|t| entry.contains(**t)).count();
        assert_eq!(headlines, 1, "{story}: one headline shown:\n{entry}");
        let also = entry
            .lines()
            .find(|l| l.starts_with("also: "))
            .unwrap_or_else(|| panic!("{story}: no also line:\n{entry}"));
        let outlets: Vec<&str> = also.trim_start_matches("also: ").split(" · ").collect();
        assert_eq!(outlets.len(), 2, "{story}: {also}");
        for outlet in ["MassisPost", "EVN Report", "Jamestown"] {
            assert_eq!(
                entry.matches(outlet).count(),
                1,
                "{story}: {outlet} once in:\n{entry}"
            );
        }
        // A lede under the headline: the first sentence of a summary.
        let lede = entry.lines().nth(1).unwrap_or_default();
        assert!(lede.ends_with('.') && lede.len() > 20, "{story}: lede {lede:?}");
    }
    // The event only Jamestown reports is a story of its own; off-topic items are not posted.
    let talks = entry_of(&shown, &[JAMESTOWN[2].0]);
    assert!(!talks.contains("also:"), "{talks}");
    assert_eq!(shown.len(), 3, "three stories:\n{shown:#?}");
    for title in OFF_TOPIC {
        assert!(!text.contains(title), "off topic posted: {title}");
    }
    // Every item's link exactly once: 3 + 3 + 1.
    let mut links: Vec<String> = first.iter().flat_map(|m| m.links.clone()).collect();
    assert_eq!(links.len(), 7, "{links:?}");
    links.sort();
    links.dedup();
    assert_eq!(links.len(), 7, "a link twice");

    // A second run and a restart with a forced digest: nothing again.
    install.run(&["run", "--once"]).expect_code(0);
    install.run(&["digest"]).expect_code(0);
    assert_eq!(fake.accepted().len(), first.len(), "something posted twice");
    assert_eq!(
        install.count("SELECT count(DISTINCT story_id) FROM story_items"),
        3
    );

    // A later report on the shooting: once, as "more on" the story the channel saw.
    let mut evn = EVN.to_vec();
    evn.push(LATER);
    server.set("/evn", Route::feed(feed(&server, "evn", &evn), "\"e2\""));
    install.run(&["run", "--once"]).expect_code(0);
    install.run(&["digest"]).expect_code(0);
    let after = fake.accepted();
    assert_eq!(after.len(), first.len() + 1, "one message more");
    let update = &after[first.len()];
    let update_entries = entries(std::slice::from_ref(update));
    assert_eq!(update_entries.len(), 1, "{update_entries:#?}");
    let more_on = &update_entries[0];
    let shooting_headline = SHOOTING
        .iter()
        .find(|t| entry_of(&shown, &SHOOTING).contains(**t))
        .unwrap();
    assert!(
        more_on.starts_with(&format!("• more on: {shooting_headline}")),
        "{more_on}"
    );
    assert!(
        more_on.lines().any(|l| l.starts_with("new: EVN Report")),
        "{more_on}"
    );
    assert_eq!(update.links, vec![server.url(&format!("/evn/{}", evn.len() - 1))]);

    // And never again, however often it runs.
    install.run(&["run", "--once"]).expect_code(0);
    install.run(&["digest"]).expect_code(0);
    assert_eq!(fake.accepted().len(), after.len());
    assert_eq!(
        install.count("SELECT count(*) FROM items i WHERE relevant = 1 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.item_id = i.id)"),
        0
    );
}

//! `cstowatch man`: the man page is generated from the clap definitions,
//! renders with the system's roff (when there is one), and names every
//! subcommand `cstowatch help` lists; `--dir` writes a page per command.

mod support;

use std::process::{Command, Stdio};

use support::cli::Install;

/// The subcommands `cstowatch help` lists (its "Commands:" block), but `help`.
fn listed_subcommands(install: &Install) -> Vec<String> {
    let help = install.run(&["help"]);
    help.expect_code(0);
    let text = help.stdout();
    let block = text.split("Commands:").nth(1).expect("a Commands: block");
    let names: Vec<String> = block
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|name| name != "help")
        .collect();
    assert!(names.len() >= 8, "{text}");
    names
}

#[test]
fn the_man_page_renders_and_names_every_subcommand() {
    let install = Install::new("");
    let subcommands = listed_subcommands(&install);
    let man = install.run(&["man"]);
    man.expect_code(0);
    let roff = man.stdout();
    assert!(roff.contains(".TH cstowatch 1"), "{roff}");
    for name in &subcommands {
        assert!(
            roff.contains(&format!("cstowatch\\-{name}(1)")),
            "no {name} in\n{roff}"
        );
    }

    // Rendered as a reader sees it (`-k`: preconv, as man(1) runs it), where groff is installed.
    let Ok(mut groff) = Command::new("groff")
        .args(["-k", "-man", "-Tutf8", "-ww"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("SKIPPED rendering: groff is not installed");
        return;
    };
    use std::io::Write;
    groff.stdin.take().unwrap().write_all(roff.as_bytes()).unwrap();
    let rendered = groff.wait_with_output().unwrap();
    assert!(rendered.status.success());
    let warnings = String::from_utf8_lossy(&rendered.stderr);
    assert!(warnings.trim().is_empty(), "groff warned:\n{warnings}");
    let text = without_overstrikes(&String::from_utf8_lossy(&rendered.stdout));
    for section in ["NAME", "SYNOPSIS", "OPTIONS", "SUBCOMMANDS"] {
        assert!(text.contains(section), "no {section} in\n{text}");
    }
    for name in &subcommands {
        assert!(
            text.contains(&format!("cstowatch-{name}(1)")),
            "no {name} in\n{text}"
        );
    }
}

#[test]
fn man_dir_writes_a_page_per_command() {
    let install = Install::new("");
    let subcommands = listed_subcommands(&install);
    let dir = install.dir.path().join("man1");
    std::fs::create_dir_all(&dir).unwrap();
    install
        .run(&["man", "--dir", dir.to_str().unwrap()])
        .expect_code(0);
    assert!(dir.join("cstowatch.1").exists());
    for name in &subcommands {
        let page = std::fs::read_to_string(dir.join(format!("cstowatch-{name}.1"))).unwrap();
        assert!(page.contains(".SH SYNOPSIS"), "{name}: {page}");
    }
    let run = std::fs::read_to_string(dir.join("cstowatch-run.1")).unwrap();
    assert!(run.contains("\\-\\-once"), "{run}");
}

/// Terminal output as read: grotty makes bold by overstriking ("N\bN"), and
/// may print a hyphen as U+2010.
fn without_overstrikes(text: &str) -> String {
    let mut out: Vec<char> = Vec::with_capacity(text.len());
    for c in text.chars() {
        if c == '\u{8}' {
            out.pop();
        } else {
            out.push(if c == '\u{2010}' { '-' } else { c });
        }
    }
    out.into_iter().collect()
}

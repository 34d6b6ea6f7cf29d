//! `cstowatch completions bash|zsh|fish`: the real binary prints a script
//! each shell accepts, naming every subcommand; an unknown shell is bad
//! usage (exit 2).

use std::process::Command;

const SUBCOMMANDS: &[&str] = &[
    "run",
    "digest",
    "tag",
    "retag",
    "check",
    "status",
    "review",
    "completions",
];

fn completions(shell: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cstowatch"))
        .args(["completions", shell])
        .output()
        .expect("cstowatch runs")
}

#[test]
fn each_shell_gets_a_script_naming_every_subcommand() {
    for (shell, marker) in [
        ("bash", "complete -F _cstowatch"),
        ("zsh", "#compdef cstowatch"),
        ("fish", "complete -c cstowatch"),
    ] {
        let out = completions(shell);
        assert!(
            out.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let script = String::from_utf8(out.stdout).expect("UTF-8 script");
        assert!(script.contains(marker), "{shell} script lacks {marker:?}");
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell} script does not complete {sub}");
        }
        // Fish writes long options as `-l dry-run`.
        assert!(
            script.contains("dry-run") && script.contains("config"),
            "{shell}: options missing"
        );
    }
}

#[test]
fn bash_accepts_the_bash_script() {
    let out = completions("bash");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("cstowatch.bash");
    std::fs::write(&path, &out.stdout).expect("script written");
    // `bash -n` parses without running; skipped where bash is absent.
    match Command::new("bash").arg("-n").arg(&path).output() {
        Ok(check) => assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        ),
        Err(_) => eprintln!("SKIPPED: no bash on this machine"),
    }
}

#[test]
fn an_unknown_shell_is_bad_usage() {
    let out = completions("powershell");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bash") && stderr.contains("fish"), "{stderr}");
}

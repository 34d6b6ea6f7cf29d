//! Runs the real `cstowatch` binary the way an operator would: a fresh
//! install directory per test (config, the shipped rules, state), commands
//! spawned with the test's environment, output captured.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// One test's install: `config/cstowatch.toml`, `config/rules.toml`, `state/`.
pub struct Install {
    pub dir: tempfile::TempDir,
    /// Extra environment for every command (the token, for instance).
    pub env: Vec<(String, String)>,
}

impl Install {
    /// A fresh install whose config is `config_toml` and whose rules are the shipped ones.
    pub fn new(config_toml: &str) -> Install {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        std::fs::copy(
            repo_path("config/rules.toml"),
            dir.path().join("config/rules.toml"),
        )
        .unwrap();
        let install = Install { dir, env: Vec::new() };
        install.write_config(config_toml);
        install
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config/cstowatch.toml")
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("state/cstowatch.db")
    }

    pub fn write_config(&self, config_toml: &str) {
        std::fs::write(self.config_path(), config_toml).unwrap();
    }

    /// The command, ready to spawn, run from the install directory.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cstowatch"));
        cmd.arg("--config")
            .arg(self.config_path())
            .args(args)
            .current_dir(self.dir.path());
        cmd.env_remove("CSTOWATCH_TELEGRAM_TOKEN")
            .env_remove("RUST_LOG")
            .env_remove("CREDENTIALS_DIRECTORY");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs a command to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        Run(self.command(args).output().unwrap())
    }

    /// The first column of every row of a query on the state database, as text.
    pub fn strings(&self, sql: &str) -> Vec<String> {
        let conn = rusqlite::Connection::open(self.db_path()).unwrap();
        let mut stmt = conn.prepare(sql).unwrap();
        stmt.query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// Counts rows of a query on the state database.
    pub fn count(&self, sql: &str) -> i64 {
        let conn = rusqlite::Connection::open(self.db_path()).unwrap();
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

/// A finished command.
pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    /// Panics with both streams unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}

/// A path inside the repository.
pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// An RFC 2822 date `hours` before now, for fixture feeds.
pub fn hours_ago(hours: i64) -> String {
    let t = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(hours);
    t.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

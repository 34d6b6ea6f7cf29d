//! The `cstowatch` command line: parses arguments, sets up logging, and hands
//! each subcommand to the library. Exit status: 0 success, 2 bad usage,
//! config or rules, 1 any other failure (SPEC.md).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use cstowatch::commands::{self, Failure};
use cstowatch::config::DEFAULT_CONFIG_PATH;
use cstowatch::telemetry;

/// Watches news feeds for CSTO and Armenia–Azerbaijan items, tags them with
/// keyword rules, and posts digests to a Telegram channel.
#[derive(Parser, Debug)]
#[command(name = "cstowatch", version, about, long_about = None)]
struct Cli {
    /// The config file; rules.toml beside it unless it names another.
    #[arg(long, global = true, value_name = "PATH", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,

    /// More log output (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,

    /// Less log output (-q warnings and errors only, -qq errors only).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    quiet: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the service: poll feeds on schedule and deliver digests when due,
    /// until SIGTERM/SIGINT. SIGHUP reloads config and rules.
    Run {
        /// Poll every feed once, deliver whatever is due, then exit.
        #[arg(long)]
        once: bool,
        /// Print the messages that would be sent instead of sending them; mark nothing delivered.
        #[arg(long)]
        dry_run: bool,
    },
    /// Deliver every pending relevant item now, whatever the schedule.
    Digest {
        /// Print the messages that would be sent instead of sending them; mark nothing delivered.
        #[arg(long)]
        dry_run: bool,
    },
    /// Tag JSON Lines items ({"id"?, "url"?, "title", "summary"?, "content"?})
    /// and write one JSON line per input, in order.
    Tag {
        /// Input file; stdin when absent or "-".
        file: Option<PathBuf>,
        /// Print for people: tags, score, each matched term with its field and context.
        #[arg(long)]
        explain: bool,
        /// Use this rules file instead of the one the config names.
        #[arg(long, value_name = "PATH")]
        rules: Option<PathBuf>,
    },
    /// Re-tag stored items that were not delivered yet, after a rules change.
    Retag {
        /// Show which items would change relevance, without writing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Validate the config and the rules; print every problem with its file and line.
    Check,
    /// Show each feed's health and the pending and delivered counts.
    Status,
    /// List near misses: stored items just below the relevance threshold and
    /// relevant items that only just passed, with their top reasons and link.
    Review {
        /// How far back to look (by when items were first seen), e.g. 7d, 36h.
        #[arg(long, default_value = "7d", value_parser = cstowatch::config::parse_duration)]
        since: std::time::Duration,
        /// The most items listed.
        #[arg(long, default_value_t = 30)]
        limit: usize,
        /// One JSON object per line, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// The weekly trend chart: relevant stories per day per primary tag over
    /// the last seven whole days (the week before faint), as a PNG. Posted to
    /// every destination with its caption unless --out or --dry-run.
    Report {
        /// The weekly chart (the one report there is).
        #[arg(long, required = true)]
        week: bool,
        /// Write the PNG to FILE and send nothing.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Write the PNG (to --out, or a file named after the week) and print
        /// the caption; send nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print a shell completion script on stdout, e.g.
    /// `cstowatch completions bash > /etc/bash_completion.d/cstowatch`.
    Completions {
        /// The shell to complete in.
        shell: CompletionShell,
    },
    /// Print the man page (roff) on stdout, e.g. `cstowatch man | man -l -`;
    /// with --dir, write one page per command there (cstowatch.1,
    /// cstowatch-run.1, ...), e.g. into /usr/local/share/man/man1.
    #[command(hide = true)]
    Man {
        /// Write every page into this directory instead of the main page to stdout.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// The shells SPEC.md promises completions for (clap_complete knows more;
/// these are the ones we test).
#[derive(ValueEnum, Clone, Copy, Debug)]
enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

impl From<CompletionShell> for clap_complete::Shell {
    fn from(shell: CompletionShell) -> Self {
        match shell {
            CompletionShell::Bash => clap_complete::Shell::Bash,
            CompletionShell::Zsh => clap_complete::Shell::Zsh,
            CompletionShell::Fish => clap_complete::Shell::Fish,
        }
    }
}

/// Writes the completion script, generated from the same definitions clap
/// parses, so it never drifts from the real command line.
fn print_completions(shell: CompletionShell) {
    let shell: clap_complete::Shell = shell.into();
    clap_complete::generate(shell, &mut Cli::command(), "cstowatch", &mut std::io::stdout());
}

/// Writes the man page(s), generated from the same definitions clap parses,
/// so they never drift from the real command line.
fn write_man_pages(dir: Option<&std::path::Path>) -> commands::CommandResult {
    let written = match dir {
        Some(dir) => clap_mangen::generate_to(Cli::command(), dir)
            .map_err(|e| anyhow::anyhow!("cannot write the man pages to {}: {e}", dir.display())),
        None => clap_mangen::Man::new(Cli::command())
            .render(&mut std::io::stdout())
            .map_err(|e| anyhow::anyhow!("cannot write the man page to stdout: {e}")),
    };
    written.map_err(Failure::Other)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.verbose, cli.quiet);
    let result = match cli.command {
        Command::Check => commands::check(&cli.config),
        Command::Status => commands::status(&cli.config),
        Command::Tag { file, explain, rules } => {
            commands::tag(&cli.config, rules.as_deref(), file.as_deref(), explain)
        }
        Command::Retag { dry_run } => commands::retag(&cli.config, dry_run),
        Command::Run { once, dry_run } => commands::run(&cli.config, once, dry_run),
        Command::Digest { dry_run } => commands::digest(&cli.config, dry_run),
        Command::Review { since, limit, json } => commands::review(&cli.config, since, limit, json),
        Command::Report {
            week: _,
            out,
            dry_run,
        } => commands::report(&cli.config, out.as_deref(), dry_run),
        Command::Completions { shell } => {
            print_completions(shell);
            Ok(())
        }
        Command::Man { dir } => write_man_pages(dir.as_deref()),
    };
    // Every database closed (and its WAL checkpointed) before the process ends.
    cstowatch::store::wait_until_closed(std::time::Duration::from_secs(5));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
        Err(Failure::Other(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

//! The console destination and dry runs: messages printed to stdout (or any
//! writer, for tests) exactly as they would go to Telegram.

use std::io::Write;
use std::sync::Mutex;

/// Where printed messages go.
pub struct Console {
    out: Mutex<Box<dyn Write + Send>>,
}

impl Console {
    pub fn stdout() -> Console {
        Console::new(Box::new(std::io::stdout()))
    }

    pub fn new(out: Box<dyn Write + Send>) -> Console {
        Console { out: Mutex::new(out) }
    }

    /// Prints one message under a line naming where it goes and what it is:
    /// `--- console · digest ---` or `--- dry run: telegram:@chan · alert ---`.
    pub fn print(&self, label: &str, html: &str) -> std::io::Result<()> {
        let mut out = self.out.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        write!(out, "--- {label} ---\n{html}\n\n")?;
        out.flush()
    }
}

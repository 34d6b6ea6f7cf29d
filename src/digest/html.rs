//! Telegram-flavoured HTML built piece by piece, counting as it goes what
//! Telegram counts: code points of the text left after tags are removed and
//! entities decoded. Every piece of feed text goes through [`Fragment::text`],
//! which escapes `& < > "` — teloxide's own `escape` leaves `"` alone, which
//! would end an `href` attribute early.

/// A piece of a message: its HTML and how long Telegram will say it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fragment {
    html: String,
    chars: usize,
}

impl Fragment {
    pub fn new() -> Fragment {
        Fragment::default()
    }

    /// Appends feed or user text, escaped. Control characters other than a
    /// newline become spaces: they carry nothing a reader needs.
    pub fn text(&mut self, text: &str) -> &mut Self {
        for c in text.chars() {
            match c {
                '&' => self.html.push_str("&amp;"),
                '<' => self.html.push_str("&lt;"),
                '>' => self.html.push_str("&gt;"),
                '"' => self.html.push_str("&quot;"),
                '\n' => self.html.push('\n'),
                c if c.is_control() => self.html.push(' '),
                c => self.html.push(c),
            }
            self.chars += 1;
        }
        self
    }

    /// Appends text in bold.
    pub fn bold(&mut self, text: &str) -> &mut Self {
        self.html.push_str("<b>");
        self.text(text);
        self.html.push_str("</b>");
        self
    }

    /// Appends text in italics.
    pub fn italic(&mut self, text: &str) -> &mut Self {
        self.html.push_str("<i>");
        self.text(text);
        self.html.push_str("</i>");
        self
    }

    /// Appends `text` as a link to `href` (escaped as an attribute value).
    pub fn link(&mut self, href: &str, text: &str) -> &mut Self {
        self.html.push_str("<a href=\"");
        let before = self.chars;
        self.text(href);
        // The href is markup, not text Telegram counts.
        self.chars = before;
        self.html.push_str("\">");
        self.text(text);
        self.html.push_str("</a>");
        self
    }

    /// Appends another fragment.
    pub fn append(&mut self, other: &Fragment) -> &mut Self {
        self.html.push_str(&other.html);
        self.chars += other.chars;
        self
    }

    /// The HTML to send.
    pub fn html(&self) -> &str {
        &self.html
    }

    pub fn into_html(self) -> String {
        self.html
    }

    /// Length as Telegram counts it (code points after entity parsing).
    pub fn chars(&self) -> usize {
        self.chars
    }

    /// Length of the raw HTML in bytes (Telegram's other limit).
    pub fn bytes(&self) -> usize {
        self.html.len()
    }
}

/// Bytes `text` takes once escaped by [`Fragment::text`].
pub fn escaped_len(text: &str) -> usize {
    text.chars()
        .map(|c| match c {
            '&' => 5,
            '<' | '>' => 4,
            '"' => 6,
            c if c.is_control() && c != '\n' => 1,
            c => c.len_utf8(),
        })
        .sum()
}

/// The text a reader sees in HTML this module produced: tags removed,
/// entities decoded. Used to resend a message Telegram refused to parse as
/// plain text.
pub fn to_plain_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(i) = rest.find(['<', '&']) {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if rest.starts_with('<') {
            match rest.find('>') {
                Some(end) => rest = &rest[end + 1..],
                None => {
                    out.push_str(rest);
                    rest = "";
                }
            }
        } else {
            let decoded = [("&amp;", '&'), ("&lt;", '<'), ("&gt;", '>'), ("&quot;", '"')]
                .into_iter()
                .find(|(entity, _)| rest.starts_with(entity));
            match decoded {
                Some((entity, c)) => {
                    out.push(c);
                    rest = &rest[entity.len()..];
                }
                None => {
                    out.push('&');
                    rest = &rest[1..];
                }
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_escaped_and_counted_as_seen() {
        let mut f = Fragment::new();
        f.link("https://e.example/?a=1&b=\"2\"", "<script>& \"x\" </a>");
        assert_eq!(
            f.html(),
            "<a href=\"https://e.example/?a=1&amp;b=&quot;2&quot;\">&lt;script&gt;&amp; &quot;x&quot; &lt;/a&gt;</a>"
        );
        assert_eq!(f.chars(), "<script>& \"x\" </a>".chars().count());
        assert_eq!(to_plain_text(f.html()), "<script>& \"x\" </a>");
        assert_eq!(
            escaped_len("<script>& \"x\" </a>"),
            f.bytes() - f.html().find('>').unwrap() - 5
        );
    }

    #[test]
    fn counts_code_points_not_bytes() {
        let mut f = Fragment::new();
        f.bold("Ереван Երևան 🇦🇲");
        assert_eq!(f.chars(), 15);
        assert_eq!(to_plain_text(f.html()), "Ереван Երևան 🇦🇲");
    }

    #[test]
    fn control_characters_become_spaces() {
        let mut f = Fragment::new();
        f.text("a\u{0}b\nc");
        assert_eq!(f.html(), "a b\nc");
        assert_eq!(escaped_len("a\u{0}b\nc"), 5);
    }
}

//! Plain text from HTML: what the parser makes of titles, summaries and
//! content, and what article extraction makes of a page's body. Block
//! elements become line breaks, runs of whitespace one space, invisible
//! elements (scripts, styles) are left out.

use std::collections::HashSet;

use ego_tree::NodeId;
use scraper::node::Node;
use scraper::{ElementRef, Html};

/// Elements whose content is never text a reader sees.
pub(crate) fn is_invisible(name: &str) -> bool {
    matches!(
        name,
        "script"
            | "style"
            | "noscript"
            | "template"
            | "iframe"
            | "svg"
            | "head"
            | "object"
            | "canvas"
            | "select"
            | "button"
    )
}

/// Elements that break the text flow: their start and end become a line
/// break. (A `match`, not a list searched: it runs for every element of
/// every item's HTML.)
fn is_block(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "aside"
            | "blockquote"
            | "dd"
            | "div"
            | "dl"
            | "dt"
            | "figcaption"
            | "figure"
            | "footer"
            | "form"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "header"
            | "hr"
            | "li"
            | "main"
            | "nav"
            | "ol"
            | "p"
            | "pre"
            | "section"
            | "table"
            | "td"
            | "th"
            | "tr"
            | "ul"
    )
}

/// Turns an HTML fragment into plain text: tags stripped, entities decoded,
/// block elements on their own lines, other whitespace collapsed.
pub fn html_to_text(html: &str) -> String {
    if !html.contains(['<', '&']) {
        return collapse_whitespace(html);
    }
    let fragment = Html::parse_fragment(html);
    element_text(fragment.root_element(), &HashSet::new())
}

/// HTML elements that make a title markup rather than text. A title like
/// "History of the <blink> tag" (written `&lt;blink&gt;` in the feed) names
/// an element; stripping it as markup would lose the words, so only the
/// elements people put in titles to format them count (feedparser's rule).
const TITLE_MARKUP: &[&str] = &[
    "a", "abbr", "acronym", "b", "big", "br", "cite", "code", "del", "dfn", "div", "em", "font", "i", "img",
    "ins", "kbd", "mark", "p", "q", "s", "samp", "small", "span", "strike", "strong", "sub", "sup", "time",
    "tt", "u", "var",
];

/// A title (or category) as one line of plain text: HTML only when it
/// looks like HTML (a formatting element or an entity reference), taken
/// literally otherwise.
pub fn title_text(title: &str) -> String {
    if looks_like_markup(title) {
        one_line(&html_to_text(title))
    } else {
        one_line(title)
    }
}

fn looks_like_markup(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(i, b)| match b {
        b'<' => {
            let rest = &text[i + 1..];
            let rest = rest.strip_prefix('/').unwrap_or(rest);
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .map(|c| c.to_ascii_lowercase())
                .collect();
            TITLE_MARKUP.contains(&name.as_str())
        }
        b'&' => {
            let rest = &bytes[i + 1..];
            let len = rest
                .iter()
                .take(10)
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'#')
                .count();
            len > 0 && rest.get(len) == Some(&b';')
        }
        _ => false,
    })
}

/// Joins lines into one, for titles.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn collapse_whitespace(text: &str) -> String {
    let mut writer = TextWriter::default();
    writer.push_text(text);
    writer.finish()
}

/// Builds text with HTML's whitespace rules: whitespace runs become one
/// space, block boundaries one newline, nothing leading or trailing.
#[derive(Default)]
struct TextWriter {
    out: String,
    pending: Pending,
}

#[derive(Default, PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
enum Pending {
    #[default]
    Nothing,
    Space,
    Newline,
}

/// The length of the character at byte `i` of `text` when it is white
/// space (Unicode `White_Space`, as [`char::is_whitespace`]), looking at
/// one byte for all but the few lead bytes that can begin one. `None` for
/// a continuation byte, so callers may step through a word byte by byte.
#[inline]
fn whitespace_at(text: &str, i: usize) -> Option<usize> {
    let b = *text.as_bytes().get(i)?;
    if b < 0x80 {
        return (b == b' ' || (b'\t'..=b'\r').contains(&b)).then_some(1);
    }
    // U+0085 and U+00A0; U+1680; U+2000..=U+205F; U+3000.
    if !matches!(b, 0xC2 | 0xE1 | 0xE2 | 0xE3) {
        return None;
    }
    let c = text.get(i..)?.chars().next()?;
    c.is_whitespace().then(|| c.len_utf8())
}

impl TextWriter {
    /// Appends `text` a word at a time: most of a body is words, and one
    /// copy of a word is far cheaper than pushing it character by character.
    fn push_text(&mut self, text: &str) {
        let mut i = 0;
        while i < text.len() {
            if let Some(len) = whitespace_at(text, i) {
                self.pending = self.pending.max(Pending::Space);
                i += len;
                continue;
            }
            let start = i;
            i += 1;
            while i < text.len() && whitespace_at(text, i).is_none() {
                i += 1;
            }
            if !self.out.is_empty() {
                match self.pending {
                    Pending::Space => self.out.push(' '),
                    Pending::Newline => self.out.push('\n'),
                    Pending::Nothing => {}
                }
            }
            self.pending = Pending::Nothing;
            self.out.push_str(text.get(start..i).unwrap_or_default());
        }
    }

    fn line_break(&mut self) {
        self.pending = Pending::Newline;
    }

    fn finish(self) -> String {
        self.out
    }
}

/// The visible text of `root`, leaving out invisible elements and `skip`.
/// Iterative (no recursion), so a deeply nested page cannot blow the stack.
pub(crate) fn element_text(root: ElementRef<'_>, skip: &HashSet<NodeId>) -> String {
    use ego_tree::iter::Edge;
    let mut writer = TextWriter::default();
    let mut skipping: Option<NodeId> = None;
    for edge in root.traverse() {
        match edge {
            Edge::Open(node) => {
                if skipping.is_some() {
                    continue;
                }
                match node.value() {
                    Node::Element(e) => {
                        let name = e.name();
                        if is_invisible(name) || (!skip.is_empty() && skip.contains(&node.id())) {
                            skipping = Some(node.id());
                        } else if name == "br" || is_block(name) {
                            writer.line_break();
                        }
                    }
                    Node::Text(t) => writer.push_text(t),
                    _ => {}
                }
            }
            Edge::Close(node) => {
                if let Some(id) = skipping {
                    if id == node.id() {
                        skipping = None;
                    }
                    continue;
                }
                if let Node::Element(e) = node.value()
                    && is_block(e.name())
                {
                    writer.line_break();
                }
            }
        }
    }
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_to_text_blocks_breaks_entities_and_scripts() {
        assert_eq!(
            html_to_text("<p>One&nbsp;&amp; <b>two</b></p><p>Three<br>four</p><script>x()</script>  five "),
            "One & two\nThree\nfour\nfive"
        );
        assert_eq!(html_to_text("  plain\n\t text  "), "plain text");
        assert_eq!(html_to_text("a < b &amp; c"), "a < b & c");
        assert_eq!(html_to_text("<ul><li>x</li><li>y</li></ul>"), "x\ny");
        assert_eq!(html_to_text(""), "");
        assert_eq!(one_line("a\nb   c"), "a b c");
    }

    #[test]
    fn titles_are_markup_only_when_they_look_like_it() {
        assert_eq!(
            title_text("History of the <blink> tag"),
            "History of the <blink> tag"
        );
        assert_eq!(title_text("a < b and c > d"), "a < b and c > d");
        assert_eq!(title_text("<b>Bold</b> &amp; <i>new</i>"), "Bold & new");
        assert_eq!(title_text("CSTO&#8217;s   moves"), "CSTO’s moves");
        assert_eq!(title_text("Q&A: AT&T"), "Q&A: AT&T");
    }

    use proptest::strategy::Strategy;

    proptest::proptest! {
        /// The word-at-a-time writer against the rule it implements, one
        /// character at a time, on text dense in every kind of white space.
        #[test]
        fn text_is_written_as_character_by_character(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    "[a-zA-Z0-9.,]{1,6}",
                    "[ \t\n\r\u{0B}\u{0C}]{1,3}",
                    proptest::sample::select(vec![
                        "\u{85}", "\u{A0}", "\u{1680}", "\u{2000}", "\u{200A}", "\u{200B}",
                        "\u{2028}", "\u{2029}", "\u{202F}", "\u{205F}", "\u{3000}", "\u{3001}",
                        "\u{C2}", "é", "Ա", "Ж", "\u{E1}", "\u{2010}", "😀",
                    ]).prop_map(String::from),
                ],
                0..40,
            ),
            breaks in proptest::collection::vec(0usize..40, 0..4),
        ) {
            let mut fast = TextWriter::default();
            let mut slow = TextWriter::default();
            for (n, part) in parts.iter().enumerate() {
                if breaks.contains(&n) {
                    fast.line_break();
                    slow.line_break();
                }
                fast.push_text(part);
                for c in part.chars() {
                    if c.is_whitespace() {
                        slow.pending = slow.pending.max(Pending::Space);
                        continue;
                    }
                    if !slow.out.is_empty() {
                        match slow.pending {
                            Pending::Space => slow.out.push(' '),
                            Pending::Newline => slow.out.push('\n'),
                            Pending::Nothing => {}
                        }
                    }
                    slow.pending = Pending::Nothing;
                    slow.out.push(c);
                }
            }
            proptest::prop_assert_eq!(fast.finish(), slow.finish());
        }
    }

    #[test]
    fn deeply_nested_html_does_not_overflow() {
        // html5ever itself is quadratic in nesting depth (20,000 levels take
        // seconds), hence extraction on the blocking pool; the walk here is iterative.
        let html = "<div>".repeat(2_000) + "deep" + &"</div>".repeat(2_000);
        assert_eq!(html_to_text(&html), "deep");
    }
}

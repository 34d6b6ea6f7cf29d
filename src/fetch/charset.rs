//! Character sets: turns a feed body in whatever encoding it arrived in into
//! UTF-8 bytes whose XML prolog says UTF-8, so feed-rs reads correct text.
//!
//! Feeds lie about their encoding (GOTCHAS.md): UTF-8 bytes labelled
//! `windows-1251` parse silently as mojibake, and 1251 bytes labelled UTF-8
//! fail outright. So the order of trust is: a byte-order mark, then "is it
//! valid UTF-8?", then the HTTP `charset`, then the XML prolog. Whenever the
//! result differs from what the prolog declares, the prolog is rewritten,
//! because feed-rs switches its decoder on the prolog's `encoding="..."`.

use std::borrow::Cow;

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE};

/// A body decoded to UTF-8, and what was wrong with its charset, if anything.
#[derive(Debug)]
pub struct Decoded<'a> {
    pub text: Cow<'a, [u8]>,
    /// "declared UTF-8, decoded as windows-1251": the declared (or default)
    /// charset did not decode the bytes and a detector chose another.
    pub warning: Option<String>,
}

/// Decodes a feed body like [`to_utf8_xml`], and when the charset it
/// would use does not decode the bytes cleanly, detects the real one with
/// chardetng (Firefox's detector) and says so in [`Decoded::warning`].
///
/// A UTF-8 body with a few stray bytes stays UTF-8 (a lossy read): a
/// detector asked to leave UTF-8 out would turn every accented letter of
/// such a feed into mojibake, which is worse than one replacement character.
pub fn decode_feed<'a>(body: &'a [u8], content_type: Option<&str>) -> Decoded<'a> {
    let rest = match Encoding::for_bom(body) {
        Some(_) => return plain(to_utf8_xml(body, content_type)),
        None if sniff_utf16_without_bom(body).is_some() => return plain(to_utf8_xml(body, content_type)),
        None => body,
    };
    if std::str::from_utf8(rest).is_ok() {
        return plain(to_utf8_xml(body, content_type));
    }
    let declared = declared_encoding(rest, content_type);
    if let Some(encoding) = declared {
        let (text, had_errors) = encoding.decode_without_bom_handling(rest);
        if !had_errors {
            return plain(Cow::Owned(rewrite_prolog_encoding(&text).into_bytes()));
        }
    } else if mostly_utf8(rest) {
        let (text, strays) = utf8_with_stray_bytes_as_cp1252(rest);
        return Decoded {
            text: Cow::Owned(rewrite_prolog_encoding(&text).into_bytes()),
            warning: Some(format!(
                "{strays} byte(s) that are not UTF-8 in a UTF-8 document, read as windows-1252"
            )),
        };
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(rest, true);
    let guess = detector.guess(None, chardetng::Utf8Detection::Deny);
    let (text, _) = guess.decode_without_bom_handling(rest);
    let claimed = declared.map_or_else(
        || {
            content_type
                .and_then(charset_param)
                .map(str::to_string)
                .or_else(|| prolog_encoding(rest))
                .unwrap_or_else(|| "nothing (UTF-8 by default)".to_string())
        },
        |e| e.name().to_string(),
    );
    Decoded {
        text: Cow::Owned(rewrite_prolog_encoding(&text).into_bytes()),
        warning: Some(format!("declared {claimed}, decoded as {}", guess.name())),
    }
}

/// UTF-8 text with a few stray bytes: the valid text as is, each stray byte
/// as the windows-1252 character it most likely was (`\xA9` → ©), so no
/// replacement character is stored. Returns the text and the stray count.
fn utf8_with_stray_bytes_as_cp1252(bytes: &[u8]) -> (String, usize) {
    let mut out = String::with_capacity(bytes.len() + 16);
    let mut strays = 0;
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        let (stray, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(chunk.invalid());
        strays += chunk.invalid().len();
        out.push_str(&stray);
    }
    (out, strays)
}

fn plain(text: Cow<'_, [u8]>) -> Decoded<'_> {
    Decoded { text, warning: None }
}

/// Whether invalid UTF-8 is still mostly UTF-8: more well-formed multi-byte
/// sequences than stray bytes.
fn mostly_utf8(bytes: &[u8]) -> bool {
    let mut multibyte = 0usize;
    let mut stray = 0usize;
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                multibyte += valid.chars().filter(|c| !c.is_ascii()).count();
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                multibyte +=
                    std::str::from_utf8(valid).map_or(0, |v| v.chars().filter(|c| !c.is_ascii()).count());
                stray += 1;
                rest = &after[e.error_len().unwrap_or(after.len()).max(1).min(after.len())..];
            }
        }
    }
    multibyte > stray
}

/// Returns `body` as UTF-8 with a prolog that declares UTF-8 (or none).
///
/// Borrows when the body is already UTF-8 and its prolog agrees, which is
/// the common case; allocates only to transcode or to fix the prolog.
pub fn to_utf8_xml<'a>(body: &'a [u8], content_type: Option<&str>) -> Cow<'a, [u8]> {
    let (encoding, rest) = match Encoding::for_bom(body) {
        Some((encoding, bom_len)) => (Some(encoding), &body[bom_len..]),
        None => (sniff_utf16_without_bom(body), body),
    };
    let encoding = match encoding {
        Some(e) => e,
        None if std::str::from_utf8(rest).is_ok() => UTF_8,
        None => declared_encoding(rest, content_type).unwrap_or(UTF_8),
    };
    if encoding == UTF_8 {
        // Valid UTF-8, or invalid bytes with no other charset to try: a lossy
        // read keeps every valid character, which beats failing the feed.
        let text = String::from_utf8_lossy(rest);
        return match (text, declares_non_utf8(rest)) {
            (Cow::Borrowed(_), false) => Cow::Borrowed(rest),
            (Cow::Borrowed(s), true) => Cow::Owned(rewrite_prolog_encoding(s).into_bytes()),
            (Cow::Owned(s), _) => Cow::Owned(rewrite_prolog_encoding(&s).into_bytes()),
        };
    }
    let (text, _) = encoding.decode_without_bom_handling(rest);
    Cow::Owned(rewrite_prolog_encoding(&text).into_bytes())
}

/// UTF-16 without a BOM still starts with `<` as one of two bytes.
fn sniff_utf16_without_bom(body: &[u8]) -> Option<&'static Encoding> {
    match body {
        [b'<', 0, b'?', 0, ..] | [b'<', 0, b'r', 0, ..] | [b'<', 0, b'f', 0, ..] => Some(UTF_16LE),
        [0, b'<', 0, b'?', ..] | [0, b'<', 0, b'r', ..] | [0, b'<', 0, b'f', ..] => Some(UTF_16BE),
        _ => None,
    }
}

/// The encoding the header or the prolog names, when it is not UTF-8 and the
/// bytes are not UTF-8 either. The header wins (RFC 7303) unless it says
/// UTF-8, which the bytes have just disproved.
fn declared_encoding(body: &[u8], content_type: Option<&str>) -> Option<&'static Encoding> {
    let from_header = content_type.and_then(charset_param).and_then(label_to_encoding);
    let from_prolog = prolog_encoding(body).and_then(|l| label_to_encoding(&l));
    [from_header, from_prolog]
        .into_iter()
        .flatten()
        .find(|e| *e != UTF_8 && *e != UTF_16LE && *e != UTF_16BE)
}

fn label_to_encoding(label: &str) -> Option<&'static Encoding> {
    Encoding::for_label_no_replacement(label.trim().as_bytes())
}

/// `text/xml; charset="windows-1251"` → `windows-1251`.
pub fn charset_param(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches(|c| c == '"' || c == '\''))
            .filter(|v| !v.is_empty())
    })
}

/// The `<?xml ... ?>` declaration at the start, if any, as ASCII bytes.
fn prolog(body: &[u8]) -> Option<&[u8]> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = &body[start..];
    if !rest.starts_with(b"<?xml") {
        return None;
    }
    let end = rest.windows(2).take(512).position(|w| w == b"?>")?;
    Some(&rest[..end + 2])
}

/// The value of `encoding="..."` in the prolog.
fn prolog_encoding(body: &[u8]) -> Option<String> {
    let decl = std::str::from_utf8(prolog(body)?).ok()?;
    let (_, value, _) = find_encoding_attr(decl)?;
    Some(value.to_string())
}

fn declares_non_utf8(body: &[u8]) -> bool {
    prolog_encoding(body).is_some_and(|e| !e.trim().eq_ignore_ascii_case("utf-8"))
}

/// Locates `encoding = "value"` in a declaration: (start of the attribute,
/// the value, end of the attribute including its closing quote).
fn find_encoding_attr(decl: &str) -> Option<(usize, &str, usize)> {
    let at = decl.find("encoding")?;
    let after = decl[at + "encoding".len()..].trim_start();
    let after = after.strip_prefix('=')?.trim_start();
    let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value_start = decl.len() - after.len() + 1;
    let value_len = decl[value_start..].find(quote)?;
    Some((
        at,
        &decl[value_start..value_start + value_len],
        value_start + value_len + 1,
    ))
}

/// Makes the prolog (if any) declare UTF-8, since the text now is UTF-8.
fn rewrite_prolog_encoding(text: &str) -> String {
    let leading = text.len() - text.trim_start().len();
    let Some(decl) = prolog(text.as_bytes()) else {
        return text.to_string();
    };
    let decl_end = leading + decl.len();
    let Some(decl) = text.get(leading..decl_end) else {
        return text.to_string();
    };
    match find_encoding_attr(decl) {
        Some((start, _, end)) => {
            let mut out = String::with_capacity(text.len());
            out.push_str(&text[..leading + start]);
            out.push_str("encoding=\"UTF-8\"");
            out.push_str(&text[leading + end..]);
            out
        }
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf8(cow: Cow<'_, [u8]>) -> String {
        String::from_utf8(cow.into_owned()).expect("output is UTF-8")
    }

    #[test]
    fn plain_utf8_is_borrowed_unchanged() {
        let body = "<?xml version=\"1.0\" encoding=\"utf-8\"?><rss>Ереван</rss>".as_bytes();
        assert!(matches!(to_utf8_xml(body, None), Cow::Borrowed(b) if b == body));
    }

    #[test]
    fn cp1251_declared_in_prolog_is_transcoded_and_prolog_rewritten() {
        let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode("ОДКБ и Армения");
        let mut body = b"<?xml version=\"1.0\" encoding=\"windows-1251\"?><t>".to_vec();
        body.extend_from_slice(&bytes);
        body.extend_from_slice(b"</t>");
        let out = utf8(to_utf8_xml(&body, Some("text/xml")));
        assert_eq!(
            out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><t>ОДКБ и Армения</t>"
        );
    }

    #[test]
    fn cp1251_named_only_in_header_is_transcoded() {
        let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode("Карабах");
        let mut body = b"<?xml version='1.0'?><t>".to_vec();
        body.extend_from_slice(&bytes);
        body.extend_from_slice(b"</t>");
        let out = utf8(to_utf8_xml(
            &body,
            Some("application/rss+xml; charset=\"CP1251\""),
        ));
        assert_eq!(out, "<?xml version='1.0'?><t>Карабах</t>");
    }

    #[test]
    fn header_claiming_utf8_over_cp1251_bytes_falls_back_to_prolog() {
        let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode("Ереван");
        let mut body = b"<?xml version=\"1.0\" encoding=\"windows-1251\"?><t>".to_vec();
        body.extend_from_slice(&bytes);
        body.extend_from_slice(b"</t>");
        let out = utf8(to_utf8_xml(&body, Some("text/xml; charset=utf-8")));
        assert!(out.contains("<t>Ереван</t>"), "{out}");
    }

    #[test]
    fn valid_utf8_labelled_cp1251_is_read_as_utf8() {
        let body = "<?xml version=\"1.0\" encoding=\"windows-1251\"?><t>Ереван</t>".as_bytes();
        let out = utf8(to_utf8_xml(body, Some("text/xml; charset=windows-1251")));
        assert_eq!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><t>Ереван</t>");
    }

    #[test]
    fn iso_8859_1_is_transcoded() {
        let body = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><t>Caf\xe9</t>";
        assert!(utf8(to_utf8_xml(body, None)).ends_with("<t>Café</t>"));
    }

    #[test]
    fn utf8_bom_is_stripped() {
        let body = b"\xEF\xBB\xBF<?xml version=\"1.0\"?><t>x</t>";
        assert_eq!(utf8(to_utf8_xml(body, None)), "<?xml version=\"1.0\"?><t>x</t>");
    }

    #[test]
    fn utf16_with_and_without_bom() {
        let text = "<?xml version=\"1.0\" encoding=\"UTF-16\"?><t>ОДКБ</t>";
        let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        let expected = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><t>ОДКБ</t>";
        let mut le_bom = vec![0xFF, 0xFE];
        le_bom.extend_from_slice(&le);
        let mut be_bom = vec![0xFE, 0xFF];
        be_bom.extend_from_slice(&be);
        for body in [le, be, le_bom, be_bom] {
            assert_eq!(utf8(to_utf8_xml(&body, None)), expected);
        }
    }

    #[test]
    fn invalid_utf8_without_any_label_is_read_lossily() {
        let body = b"<t>ok \xFF end</t>";
        assert_eq!(utf8(to_utf8_xml(body, None)), "<t>ok \u{FFFD} end</t>");
    }

    #[test]
    fn undeclared_cp1251_is_detected_with_a_warning() {
        let (bytes, _, _) = encoding_rs::WINDOWS_1251
            .encode("<rss><t>Организация Договора о коллективной безопасности провела учения</t></rss>");
        let decoded = decode_feed(&bytes, Some("application/rss+xml; charset=utf-8"));
        let text = String::from_utf8(decoded.text.into_owned()).unwrap();
        assert!(text.contains("коллективной безопасности"), "{text}");
        assert_eq!(
            decoded.warning.as_deref(),
            Some("declared utf-8, decoded as windows-1251")
        );
    }

    #[test]
    fn utf8_with_one_stray_byte_stays_utf8() {
        let mut body = "<t>Ереван, Ереван, Ереван".as_bytes().to_vec();
        body.extend_from_slice(b" \xA9 </t>");
        let decoded = decode_feed(&body, None);
        let text = String::from_utf8(decoded.text.into_owned()).unwrap();
        assert!(text.contains("Ереван") && text.contains(" © "), "{text}");
        assert_eq!(
            decoded.warning.as_deref(),
            Some("1 byte(s) that are not UTF-8 in a UTF-8 document, read as windows-1252")
        );
    }

    #[test]
    fn charset_param_variants() {
        assert_eq!(charset_param("text/xml; charset=UTF-8"), Some("UTF-8"));
        assert_eq!(charset_param("text/xml;Charset='koi8-r' ; q=1"), Some("koi8-r"));
        assert_eq!(charset_param("text/xml"), None);
    }
}

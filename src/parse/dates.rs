//! Publication dates as feeds really write them. RFC 822 and RFC 3339 are
//! tried first (jiff); what they refuse is read the way liberal parsers
//! (feedparser) read it: single-digit hours and days, no seconds, no zone
//! (taken as UTC), a 12-hour clock, a month before the day, weekday and
//! month names in a few languages, zone names (`EST`, `GMT`), and ISO dates
//! with a space for the `T`. A string nothing here can read stays unread:
//! the entry is then undated, which is safe (it is never posted as new).

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Time};

/// Reads a feed's date string; `None` when it cannot be read.
pub fn parse_date(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(t) = text.parse::<Timestamp>() {
        return Some(t);
    }
    if let Ok(zoned) = jiff::fmt::rfc2822::parse(text) {
        return Some(zoned.timestamp());
    }
    liberal(text)
}

/// Month names (and their usual abbreviations' prefixes) by language.
const MONTHS: &[(&str, u8)] = &[
    // English, German, Dutch, French, Spanish, Italian, Portuguese (by prefix)
    ("jan", 1),
    ("gen", 1),
    ("ene", 1),
    ("janv", 1),
    ("feb", 2),
    ("fév", 2),
    ("fev", 2),
    ("febr", 2),
    ("mar", 3),
    ("mär", 3),
    ("maa", 3),
    ("apr", 4),
    ("avr", 4),
    ("abr", 4),
    ("may", 5),
    ("mai", 5),
    ("mei", 5),
    ("mag", 5),
    ("mayo", 5),
    ("jun", 6),
    ("juin", 6),
    ("giu", 6),
    ("jul", 7),
    ("juil", 7),
    ("lug", 7),
    ("aug", 8),
    ("aoû", 8),
    ("aou", 8),
    ("ago", 8),
    ("sep", 9),
    ("set", 9),
    ("oct", 10),
    ("okt", 10),
    ("ott", 10),
    ("out", 10),
    ("nov", 11),
    ("dec", 12),
    ("dez", 12),
    ("déc", 12),
    ("dic", 12),
    // Russian (genitive and nominative share their first three letters)
    ("янв", 1),
    ("фев", 2),
    ("мар", 3),
    ("апр", 4),
    ("мая", 5),
    ("май", 5),
    ("июн", 6),
    ("июл", 7),
    ("авг", 8),
    ("сен", 9),
    ("окт", 10),
    ("ноя", 11),
    ("дек", 12),
];

/// Zone abbreviations liberal parsers accept, as minutes east of UTC.
const ZONES: &[(&str, i32)] = &[
    ("ut", 0),
    ("utc", 0),
    ("gmt", 0),
    ("z", 0),
    ("wet", 0),
    ("bst", 60),
    ("cet", 60),
    ("met", 60),
    ("mez", 60),
    ("cest", 120),
    ("mesz", 120),
    ("eet", 120),
    ("eest", 180),
    ("msk", 180),
    ("est", -300),
    ("edt", -240),
    ("cst", -360),
    ("cdt", -300),
    ("mst", -420),
    ("mdt", -360),
    ("pst", -480),
    ("pdt", -420),
    ("akst", -540),
    ("akdt", -480),
    ("hst", -600),
    ("jst", 540),
    ("kst", 540),
    ("ist", 330),
    ("aest", 600),
    ("aedt", 660),
];

#[derive(Debug, PartialEq)]
enum Token {
    Number {
        value: u32,
        digits: usize,
    },
    Word(String),
    /// `+0530`, `-05:00`: minutes east of UTC.
    Offset(i32),
    /// One of `:`, `-`, `/`, `.`, `T` between numbers.
    Sep(char),
}

fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let digits: String = chars[start..i].iter().collect();
            out.push(Token::Number {
                value: digits.parse().unwrap_or(u32::MAX),
                digits: i - start,
            });
            continue;
        }
        if (c == '+' || c == '-')
            && matches!(out.last(), Some(Token::Number { .. }) | Some(Token::Word(_)))
            && has_time_before(&out)
            && let Some((minutes, len)) = offset_at(&chars[i + 1..])
        {
            out.push(Token::Offset(if c == '-' { -minutes } else { minutes }));
            i += 1 + len;
            continue;
        }
        if c.is_alphabetic() {
            let start = i;
            while i < chars.len() && chars[i].is_alphabetic() {
                i += 1;
            }
            let word: String = chars[start..i].iter().flat_map(|c| c.to_lowercase()).collect();
            out.push(if word == "t" {
                Token::Sep('T')
            } else {
                Token::Word(word)
            });
            continue;
        }
        if matches!(c, ':' | '-' | '/' | '.') {
            out.push(Token::Sep(c));
        }
        i += 1;
    }
    out
}

/// Whether a time (`H:MM`) was already read: a sign after it is a zone offset.
fn has_time_before(tokens: &[Token]) -> bool {
    tokens.contains(&Token::Sep(':'))
}

/// `0530`, `05:30`, `05`, at the start of `rest`: (minutes, chars used).
fn offset_at(rest: &[char]) -> Option<(i32, usize)> {
    let digit = |i: usize| rest.get(i).and_then(|c| c.to_digit(10)).map(|d| d as i32);
    let (h1, h2) = (digit(0)?, digit(1)?);
    let hours = h1 * 10 + h2;
    let (minutes, used) = match (rest.get(2), digit(2), digit(3)) {
        (Some(':'), _, _) => (digit(3)? * 10 + digit(4)?, 5),
        (_, Some(m1), Some(m2)) => (m1 * 10 + m2, 4),
        _ => (0, 2),
    };
    (hours <= 14 && minutes < 60).then_some((hours * 60 + minutes, used))
}

fn month_of(word: &str) -> Option<u8> {
    if word.chars().count() < 3 {
        return None;
    }
    MONTHS
        .iter()
        .filter(|(prefix, _)| word.starts_with(prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, m)| *m)
}

/// Tuesday in French, Spanish, Italian begins like March.
fn is_weekday_like_a_month(word: &str) -> bool {
    word.starts_with("mard") || word.starts_with("mart")
}

fn liberal(text: &str) -> Option<Timestamp> {
    let tokens = tokens(text);
    let mut year: Option<i16> = None;
    let mut month: Option<u8> = None;
    let mut day: Option<u8> = None;
    let mut time: Option<(u8, u8, u8)> = None;
    let mut offset_minutes: i32 = 0;
    let mut pm: Option<bool> = None;
    let mut loose_numbers: Vec<(u32, usize)> = Vec::new();

    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            // YYYY-MM-DD, YYYY/MM/DD, YYYYMMDD
            Token::Number { value, digits: 4 }
                if year.is_none()
                    && matches!(tokens.get(i + 1), Some(Token::Sep('-' | '/' | '.')))
                    && matches!(tokens.get(i + 2), Some(Token::Number { digits: 1 | 2, .. })) =>
            {
                year = Some(*value as i16);
                if let Some(Token::Number { value, .. }) = tokens.get(i + 2) {
                    month = Some(*value as u8);
                }
                i += 3;
                if matches!(tokens.get(i), Some(Token::Sep('-' | '/' | '.')))
                    && let Some(Token::Number { value, digits: 1 | 2 }) = tokens.get(i + 1)
                {
                    day = Some(*value as u8);
                    i += 2;
                } else {
                    day = Some(1);
                }
                continue;
            }
            Token::Number { value, digits: 8 } if year.is_none() => {
                year = Some((value / 10_000) as i16);
                month = Some((value / 100 % 100) as u8);
                day = Some((value % 100) as u8);
            }
            // H:MM[:SS[.frac]]
            Token::Number {
                value: h,
                digits: 1 | 2,
            } if time.is_none()
                && tokens.get(i + 1) == Some(&Token::Sep(':'))
                && matches!(tokens.get(i + 2), Some(Token::Number { digits: 1 | 2, .. })) =>
            {
                let Some(Token::Number { value: m, .. }) = tokens.get(i + 2) else {
                    unreachable!("matched above")
                };
                let mut s = 0;
                i += 3;
                if tokens.get(i) == Some(&Token::Sep(':'))
                    && let Some(Token::Number { value, digits: 1 | 2 }) = tokens.get(i + 1)
                {
                    s = *value;
                    i += 2;
                    if tokens.get(i) == Some(&Token::Sep('.'))
                        && matches!(tokens.get(i + 1), Some(Token::Number { .. }))
                    {
                        i += 2;
                    }
                }
                time = Some((*h as u8, *m as u8, s as u8));
                continue;
            }
            // The basic ISO form's time: `T162906`.
            Token::Number { value, digits: 6 }
                if time.is_none() && i > 0 && tokens[i - 1] == Token::Sep('T') =>
            {
                time = Some((
                    (value / 10_000) as u8,
                    (value / 100 % 100) as u8,
                    (value % 100) as u8,
                ));
            }
            Token::Number { value, digits } => loose_numbers.push((*value, *digits)),
            Token::Offset(minutes) => offset_minutes = *minutes,
            Token::Word(word) => {
                if word == "am" || word == "a" {
                    pm = Some(false);
                } else if word == "pm" || word == "p" {
                    pm = Some(true);
                } else if let Some((_, minutes)) = ZONES.iter().find(|(name, _)| name == word) {
                    if time.is_some() || year.is_some() {
                        offset_minutes = *minutes;
                    }
                } else if month.is_none()
                    && !is_weekday_like_a_month(word)
                    && let Some(m) = month_of(word)
                {
                    month = Some(m);
                }
            }
            Token::Sep(_) => {}
        }
        i += 1;
    }

    // "16 Dec 2023", "Dec 16 2023", "Tue Dec 16 02:02:33 2023": the 4-digit
    // number is the year, the first 1-2 digit one the day.
    for (value, digits) in loose_numbers {
        match digits {
            4 if year.is_none() => year = Some(value as i16),
            1 | 2 if day.is_none() && month.is_some() => day = Some(value as u8),
            2 if year.is_none() && day.is_some() => {
                year = Some(if value < 70 { 2000 + value } else { 1900 + value } as i16)
            }
            _ => {}
        }
    }
    let (year, month, day) = (year?, month?, day?);
    let (mut hour, minute, second) = time.unwrap_or((0, 0, 0));
    match pm {
        Some(true) if hour < 12 => hour += 12,
        Some(false) if hour == 12 => hour = 0,
        _ => {}
    }
    // "24:00" is the end of the day some feeds write; a leap second is the minute's end.
    let (hour, day_carry) = if hour == 24 { (0, 1) } else { (hour, 0) };
    let date = Date::new(year, month as i8, day as i8).ok()?;
    let time = Time::new(hour as i8, minute as i8, second.min(59) as i8, 0).ok()?;
    let civil = DateTime::from_parts(date, time)
        .checked_add(jiff::SignedDuration::from_hours(24 * day_carry))
        .ok()?;
    let utc = civil.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    utc.checked_sub(jiff::SignedDuration::from_mins(i64::from(offset_minutes)))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> String {
        parse_date(text)
            .map(|t| t.to_string())
            .unwrap_or_else(|| "unread".into())
    }

    #[test]
    fn standard_forms() {
        assert_eq!(at("Tue, 10 Jun 2003 04:00:00 GMT"), "2003-06-10T04:00:00Z");
        assert_eq!(at("2003-12-13T18:30:02Z"), "2003-12-13T18:30:02Z");
        assert_eq!(at("2003-12-13T18:30:02.25+01:00"), "2003-12-13T17:30:02.25Z");
    }

    #[test]
    fn the_forms_the_issue_names() {
        assert_eq!(at("2009-01-12T5:40:14-05:00"), "2009-01-12T10:40:14Z");
        assert_eq!(at("2018-01-06T08:00"), "2018-01-06T08:00:00Z");
        assert_eq!(at("Tue 11 Jan 2011 01:30:00 GMT"), "2011-01-11T01:30:00Z");
        assert_eq!(at("Sat, Dec 16 2023 02:02:33 PM"), "2023-12-16T14:02:33Z");
    }

    #[test]
    fn liberal_forms() {
        assert_eq!(at("Thurs, 13 Jul 2011 07:38:00 EST"), "2011-07-13T12:38:00Z");
        assert_eq!(at("2004-02-28 18:14:55-08:00"), "2004-02-29T02:14:55Z");
        assert_eq!(at("2004-02-28"), "2004-02-28T00:00:00Z");
        assert_eq!(at("Mon, 5 May 2008 9:05 +0200"), "2008-05-05T07:05:00Z");
        assert_eq!(at("Wed Jan 19 2005 10:32:58 GMT+0100"), "2005-01-19T09:32:58Z");
        assert_eq!(at("Sun Jan  4 16:29:06 PST 2004"), "2004-01-05T00:29:06Z");
        assert_eq!(at("20040105T162906Z"), "2004-01-05T16:29:06Z");
        assert_eq!(at("13 ноября 2023 10:15"), "2023-11-13T10:15:00Z");
        assert_eq!(at("Mittwoch, 12. März 2025 08:00"), "2025-03-12T08:00:00Z");
    }

    #[test]
    fn what_cannot_be_read_stays_unread() {
        assert_eq!(at(""), "unread");
        assert_eq!(at("yesterday"), "unread");
        assert_eq!(at("2004-13-45"), "unread");
        assert_eq!(at("12:30"), "unread");
    }
}

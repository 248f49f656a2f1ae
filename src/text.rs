//! What a terminal is shown of text that came from a log.
//!
//! Names, causes and lines come from whoever can write to the log or send
//! to the receiver: a forged line can carry ESC, BEL or a bidi override in
//! a server name, and printed as is it would set the operator's window
//! title, recolour or hide text, or reorder what they read. Every text
//! output (tables, timelines, alert lines) shows such characters as
//! escapes (`\x1b`, `\u{202e}`) instead; JSON escapes them itself.

use std::borrow::Cow;
use std::fmt::Write;

/// A character a terminal would act on or that hides or reorders text:
/// C0 and C1 controls, DEL, and the bidirectional formatting marks.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `s` with every [`hidden`] character written as an escape.
pub fn printable(s: &str) -> Cow<'_, str> {
    escape(s, |_| false)
}

/// [`printable`] for text of several lines: its line breaks stay.
pub fn printable_lines(s: &str) -> Cow<'_, str> {
    escape(s, |c| c == '\n')
}

fn escape(s: &str, kept: impl Fn(char) -> bool) -> Cow<'_, str> {
    // Nearly all text is printable ASCII: one pass over the bytes.
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) || !s.chars().any(|c| hidden(c) && !kept(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if !hidden(c) || kept(c) {
            out.push(c);
        } else if (c as u32) < 0x100 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_terminal_would_act_on_is_shown_escaped() {
        assert_eq!(printable("srv1"), "srv1");
        assert!(matches!(printable("café/srv-1_a.b:c"), Cow::Borrowed(_)));
        assert_eq!(printable("s1\x1b[31mRED\x07"), "s1\\x1b[31mRED\\x07");
        assert_eq!(printable("a\u{9b}b\u{7f}"), "a\\x9bb\\x7f");
        assert_eq!(printable("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(printable("two\nlines\ttab"), "two\\x0alines\\x09tab");
        assert_eq!(printable_lines("two\nlines\x1b"), "two\nlines\\x1b");
        assert!(matches!(printable_lines("a\nb\n"), Cow::Borrowed(_)));
    }
}

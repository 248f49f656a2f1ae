//! A pattern read in three short steps instead of one long backtrack.
//!
//! Most health messages end in free text (the check's reason and info)
//! followed by HAProxy's fixed tail (`. 1 active and 0 backup servers
//! left. ...`): `^HEAD(?:, (?P<cause>.*?))?TAIL$`. A backtracker finds the
//! end of that lazy `cause` by trying the whole tail at every one of its
//! bytes: ~20,000 instructions a line, a health line's largest cost.
//!
//! The same match, found in steps that each read a few bytes once:
//! 1. `^HEAD` alone, with its groups (the first words: `Server be/srv is
//!    DOWN`). The regex's match, if there is one, goes through the first of
//!    HEAD's ways to match that `^HEAD` alone takes (leftmost-first: ways
//!    are tried in order and the first that matches wins); no `^HEAD` match,
//!    no match at all.
//! 2. The optional group is tried first (a greedy `?`), and its lazy
//!    `cause` as short as it can be: the `cause` ends at the first byte
//!    from which the rest (`CLOSE TAIL`, anchored at the end of the message
//!    by its `$`) matches to the end. A DFA of the rest, reversed, reads
//!    the message once from its end and says where that first byte is.
//! 3. The rest's groups, read from there to the end; or, with no such byte,
//!    the tail's right after HEAD (the group left out).
//!
//! Whatever these steps cannot vouch for (a message with a line feed,
//! which `.` does not cross; a HEAD whose first way leads nowhere) is
//! [`Read::Unsure`], and the whole regex decides. A pattern not of this
//! shape, or with flags that could change what its parts mean apart, is
//! not split. `split_reads_what_the_regex_reads` checks the equivalence on
//! every built-in pattern and the messages that could tell them apart.

use std::ops::Range;

use regex_automata::{
    hybrid::dfa::{Cache, DFA},
    meta,
    nfa::thompson::{self, WhichCaptures},
    util::{captures::Captures, pool::Pool, primitives::PatternID, syntax},
    Anchored, Input, MatchKind,
};
use regex_syntax::ast::{self, Ast, GroupKind, RepetitionKind};

use super::{matcher, Caps, Groups};

/// Where a group's span is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The whole regex's captures, group `n`.
    Whole(usize),
    Head(usize),
    /// The captures of the part after `cause` (its close and the tail).
    Rest(usize),
    Cause,
}

/// Group names and where each is read, for a pattern's [`Groups`].
///
/// [`Groups`]: super::Groups
pub(crate) type Names = Box<[(Box<str>, Slot)]>;

/// The names of a regex's groups (the unnamed whole match left out).
pub(crate) fn names(re: &meta::Regex, slot: fn(usize) -> Slot) -> Vec<(Box<str>, Slot)> {
    (re.group_info().pattern_names(PatternID::ZERO).enumerate())
        .filter_map(|(i, n)| Some((n?.into(), slot(i))))
        .collect()
}

/// A lazy DFA's scratch space for each thread that searches with it.
type Caches = Pool<Cache, Box<dyn Fn() -> Cache + Send + Sync>>;

pub(crate) struct Split {
    head: meta::Regex,
    /// The literal the optional group starts with (`, ` or ` (`).
    open: Box<[u8]>,
    /// `CLOSE TAIL`: what follows `cause` when the group is there.
    rest: meta::Regex,
    /// The same, reversed: its matches that end at the end of the message,
    /// all of them, so that a reverse search reports where the first
    /// starts. A lazy DFA: of its states a message needs a few dozen, and
    /// determinizing all of them cost more than a log's health lines save.
    rest_rev: DFA,
    caches: Caches,
    /// `TAIL`: what follows HEAD when the group is not there.
    tail: meta::Regex,
    pub(crate) names: Names,
}

/// What the steps found.
pub(crate) enum Read {
    /// No match: `^HEAD` does not match, so neither does the regex.
    No,
    Yes {
        head: Captures,
        rest: Captures,
        cause: Option<Range<usize>>,
    },
    /// The whole regex decides.
    Unsure,
}

impl Split {
    /// `regex` split, if it has the shape and each part builds (as the
    /// whole is built: [`matcher`]).
    pub(crate) fn of(regex: &str) -> Option<Split> {
        let parts = Parts::of(regex)?;
        let build = |s: &str| matcher(s).ok();
        let (head, rest, tail) = (
            build(&regex[..parts.group.start])?,
            build(&parts.rest)?,
            build(&regex[parts.group.end..])?,
        );
        // The close is literals only: the rest's groups are the tail's.
        let rest_names = names(&rest, Slot::Rest);
        if rest_names != names(&tail, Slot::Rest) {
            return None;
        }
        let rest_rev = DFA::builder()
            .syntax(syntax::Config::new().unicode(false).utf8(false))
            .thompson(
                // No UTF-8 rule for empty matches: the matcher's
                // `utf8_empty(false)`.
                thompson::Config::new()
                    .reverse(true)
                    .utf8(false)
                    .which_captures(WhichCaptures::None),
            )
            .configure(DFA::config().match_kind(MatchKind::All))
            .build(&parts.rest)
            .ok()?;
        let dfa = rest_rev.clone();
        let caches: Caches = Pool::new(Box::new(move || dfa.create_cache()));
        let mut names = names(&head, Slot::Head);
        names.push(("cause".into(), Slot::Cause));
        names.extend(rest_names);
        Some(Split {
            head,
            open: parts.open,
            rest,
            rest_rev,
            caches,
            tail,
            names: names.into(),
        })
    }

    pub(crate) fn read(&self, msg: &[u8]) -> Read {
        let mut head = self.head.create_captures();
        self.head
            .search_captures(&Input::new(msg).anchored(Anchored::Yes), &mut head);
        let Some(h) = head.get_match().map(|m| m.end()) else {
            return Read::No;
        };
        if memchr::memchr(b'\n', msg).is_some() {
            return Read::Unsure;
        }
        let from = h + self.open.len();
        if msg[h..].starts_with(&self.open) {
            let first = Input::new(msg).range(from..).anchored(Anchored::Yes);
            let found = self.rest_rev.try_search_rev(&mut self.caches.get(), &first);
            match found {
                Ok(Some(m)) => {
                    let at = m.offset();
                    let mut rest = self.rest.create_captures();
                    (self.rest).search_captures(
                        &Input::new(msg).range(at..).anchored(Anchored::Yes),
                        &mut rest,
                    );
                    return match rest.is_match() {
                        true => Read::Yes {
                            head,
                            rest,
                            cause: Some(from..at),
                        },
                        false => Read::Unsure,
                    };
                }
                Ok(None) => {}
                Err(_) => return Read::Unsure,
            }
        }
        let mut rest = self.tail.create_captures();
        (self.tail).search_captures(
            &Input::new(msg).range(h..).anchored(Anchored::Yes),
            &mut rest,
        );
        match rest.is_match() {
            true => Read::Yes {
                head,
                rest,
                cause: None,
            },
            false => Read::Unsure,
        }
    }
}

impl std::fmt::Debug for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Split")
            .field("head", &self.head)
            .field("open", &self.open)
            .field("rest", &self.rest)
            .field("tail", &self.tail)
            .finish_non_exhaustive()
    }
}

/// A message's groups by name (and the whole match), as `health.rs` reads
/// them.
type Spans = Vec<(String, Option<Vec<u8>>)>;

fn spans(g: &Groups) -> Spans {
    let mut spans: Spans = (g.names.iter())
        .map(|(n, _)| (n.to_string(), g.name(n).map(<[u8]>::to_vec)))
        .collect();
    spans.sort();
    spans.push(("(whole)".into(), Some(g.whole().to_vec())));
    spans
}

impl Split {
    /// Whether the split reads `msg` as `whole` (the regex it was split
    /// from) does, group for group: `Some(matched)` when it decided, `None`
    /// when it left the message to the regex. A difference panics with
    /// both reads: the check of the tests and of the `health` fuzz target.
    pub(crate) fn agrees(&self, whole: &meta::Regex, msg: &[u8]) -> Option<bool> {
        let mut caps = whole.create_captures();
        whole.search_captures(&Input::new(msg), &mut caps);
        let names: Names = names(whole, Slot::Whole).into();
        let expected = caps.is_match().then(|| {
            spans(&Groups {
                msg,
                names: &names,
                caps: Caps::Whole(caps),
            })
        });
        let found = match self.read(msg) {
            Read::No => None,
            Read::Unsure => return None,
            Read::Yes { head, rest, cause } => Some(spans(&Groups {
                msg,
                names: &self.names,
                caps: Caps::Split { head, rest, cause },
            })),
        };
        assert_eq!(found, expected, "{:?}", String::from_utf8_lossy(msg));
        Some(found.is_some())
    }
}

/// Where a regex splits: `HEAD (?:OPEN(?P<cause>.*?)CLOSE)? TAIL`.
struct Parts {
    /// The optional group's span in the regex.
    group: Range<usize>,
    open: Box<[u8]>,
    /// `CLOSE TAIL`'s source.
    rest: String,
}

impl Parts {
    fn of(regex: &str) -> Option<Parts> {
        // A flag (`(?s)`, `(?m)`, `(?i)`, ...) set in one part would reach
        // into the next in the whole regex but not in the parts apart.
        let b = regex.as_bytes();
        for (i, _) in regex.match_indices("(?") {
            let escaped = i > 0 && b[i - 1] == b'\\';
            if escaped || !matches!(b.get(i + 2), Some(b':' | b'P' | b'<')) {
                return None;
            }
        }
        let ast = ast::parse::Parser::new().parse(regex).ok()?;
        let Ast::Concat(top) = &ast else {
            return None;
        };
        let mut found = None;
        for item in &top.asts {
            if let Some(p) = Self::group(regex, item) {
                if found.is_some() {
                    return None;
                }
                found = Some(p);
            }
        }
        let parts = found?;
        // Anchored at both ends: HEAD at the start, every match of the rest
        // and of the tail at the end of the message.
        use super::hir;
        use regex_syntax::hir::Look;
        let starts = hir(regex)?
            .properties()
            .look_set_prefix()
            .contains(Look::Start);
        let ends = |s: &str| Some(hir(s)?.properties().look_set_suffix().contains(Look::End));
        (starts && ends(&parts.rest)? && ends(&regex[parts.group.end..])?).then_some(parts)
    }

    /// `(?:OPEN(?P<cause>.*?)CLOSE)?`, OPEN and CLOSE literals, OPEN ASCII.
    fn group(regex: &str, item: &Ast) -> Option<Parts> {
        let Ast::Repetition(rep) = item else {
            return None;
        };
        let Ast::Group(g) = &*rep.ast else {
            return None;
        };
        if rep.op.kind != RepetitionKind::ZeroOrOne || !rep.greedy {
            return None;
        }
        let (GroupKind::NonCapturing(flags), Ast::Concat(inner)) = (&g.kind, &*g.ast) else {
            return None;
        };
        if !flags.items.is_empty() {
            return None;
        }
        let at = inner.asts.iter().position(is_cause)?;
        let literal = |a: &Ast| match a {
            Ast::Literal(l) if l.c.is_ascii() => Some(l.c as u8),
            _ => None,
        };
        let open = (inner.asts[..at].iter())
            .map(literal)
            .collect::<Option<Vec<u8>>>()?;
        (inner.asts[at + 1..].iter())
            .map(literal)
            .collect::<Option<Vec<u8>>>()?;
        let close = &regex[inner.asts[at].span().end.offset..inner.span.end.offset];
        let tail = &regex[rep.span.end.offset..];
        Some(Parts {
            group: rep.span.start.offset..rep.span.end.offset,
            open: open.into(),
            rest: format!("{close}{tail}"),
        })
    }
}

/// `(?P<cause>.*?)`.
fn is_cause(a: &Ast) -> bool {
    let Ast::Group(g) = a else { return false };
    let GroupKind::CaptureName { name, .. } = &g.kind else {
        return false;
    };
    let Ast::Repetition(rep) = &*g.ast else {
        return false;
    };
    name.name == "cause"
        && rep.op.kind == RepetitionKind::ZeroOrMore
        && !rep.greedy
        && matches!(&*rep.ast, Ast::Dot(_))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patterns::PatternSet;

    /// Each pattern whose cause is free text in an optional group splits,
    /// and no other: `server_down`, `server_up`, `health_check`, ...
    #[test]
    fn the_patterns_with_a_free_text_cause_split() {
        let set = PatternSet::builtin();
        let mut split = vec![];
        for p in &set.patterns {
            let src = p.regex.source();
            let shaped = src.contains("(?P<cause>.*?))?") || src.contains("(?P<cause>.*?)\\))?");
            assert_eq!(Split::of(src).is_some(), shaped, "{}: {src}", p.name);
            if shaped {
                split.push(p.name.as_str());
            }
        }
        for name in [
            "server_down",
            "server_up",
            "health_check",
            "maint_going_down",
        ] {
            assert!(split.contains(&name), "{name} splits: {split:?}");
        }
    }

    /// Regexes the split must leave whole: a flag that would reach across
    /// the parts, an alternation at the top, a group that is not optional,
    /// a greedy cause, a tail not anchored at the end.
    #[test]
    fn regexes_of_other_shapes_stay_whole() {
        for regex in [
            "^(?i)a(?:, (?P<cause>.*?))?b$",
            "^a(?:, (?P<cause>.*?))?(?s:b)$",
            "^a(?:, (?P<cause>.*?))?b$|^c$",
            "^a(?:, (?P<cause>.*?))b$",
            "^a(?:, (?P<cause>.*))?b$",
            "^a(?:, (?P<cause>.*?))?b",
            "a(?:, (?P<cause>.*?))?b$",
            "^a(?:, (?P<cause>.*?))?b(?m:$)",
            "^a(?:, (?P<cause>.*?)(?P<x>c))?b$",
            "^a(?:, (?P<cause>.*?)\\s)?b$",
            "^a(?:, (?P<cause>[^x]*?))?b$",
        ] {
            assert!(Split::of(regex).is_none(), "{regex}");
        }
        assert!(Split::of("^a(?:, (?P<cause>.*?))?b$").is_some());
    }

    /// The split finds what the whole regex finds, group for group, on
    /// every sample, every sample cut short, and every sample with each of
    /// the pieces that could fool it put in at every place: a second tail
    /// inside the cause, ` via `, the group's own open and close, a line
    /// feed (which `.` does not cross), bytes that are not UTF-8.
    #[test]
    fn split_reads_what_the_regex_reads() {
        let set = PatternSet::builtin();
        let confusers: [&[u8]; 12] = [
            b", ",
            b". ",
            b".",
            b" via be/s2",
            b". 2 active and 1 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue",
            b". 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue",
            b", status: 1/2 UP",
            b" (",
            b")",
            b"\n",
            "é".as_bytes(),
            b"\xff\x00",
        ];
        let mut messages: Vec<Vec<u8>> = vec![];
        for p in &set.patterns {
            let s = p.sample.as_bytes();
            messages.extend((0..=s.len()).map(|k| s[..k].to_vec()));
            if Split::of(p.regex.source()).is_none() {
                continue;
            }
            for c in confusers {
                for k in 0..=s.len() {
                    messages.push([&s[..k], c, &s[k..]].concat());
                }
            }
            // The cause itself emptied, replaced, left out with its group.
            let whole = matcher(p.regex.source()).unwrap();
            let mut caps = whole.create_captures();
            whole.search_captures(&Input::new(s), &mut caps);
            let Some(cause) = caps.get_group_by_name("cause") else {
                continue;
            };
            let (a, z) = (cause.start, cause.end);
            for c in confusers.iter().chain([&&b""[..]]) {
                messages.push([&s[..a], c, &s[z..]].concat());
                messages.push([&s[..a], c, &s[a..]].concat());
            }
            for close in 0..=1 {
                messages.push([&s[..a - 2], &s[(z + close).min(s.len())..]].concat());
            }
        }
        let (mut yes, mut unsure) = (0, 0);
        for p in &set.patterns {
            let Some(split) = Split::of(p.regex.source()) else {
                continue;
            };
            let whole = matcher(p.regex.source()).unwrap();
            for msg in &messages {
                match split.agrees(&whole, msg) {
                    Some(matched) => yes += usize::from(matched),
                    None => unsure += 1,
                }
            }
        }
        // The steps decided most (what they leave: a line feed, a message
        // whose first words match and whose end does not).
        assert!(yes > 5_000, "{yes} matches read by the split");
        assert!(
            unsure > 0 && unsure < yes / 2,
            "{unsure} left to the regex, {yes} read"
        );
    }
}

//! A compiled format run as a small backtracking matcher over the line's
//! bytes: the same language as the format's regex, with the same
//! leftmost-first choices (lazy free text shortest first, numbers longest
//! first, an optional item tried before it is skipped), so both find the
//! same values in every line. It exists for speed: a line of a custom
//! format is read in one pass that only steps back where an item's end is
//! ambiguous, instead of resolving a regex's capture groups. Backtracking
//! can cost more than linear time on a hostile line, so every call has a
//! step budget proportional to the line; past it, the regex (linear time)
//! decides.

use super::{Flags, Part, Shape};

/// One step of a compiled format.
#[derive(Clone, Debug)]
pub(super) enum Op {
    /// Literal text.
    Lit(Box<[u8]>),
    /// One space: a separator.
    Space,
    /// A space HAProxy writes at the end and relays may trim.
    OptSpace,
    /// An item's value, stored in `spans[slot]`. `optional`: it may be
    /// absent (with the separator before it when `lead_space`).
    Item {
        slot: usize,
        alts: Box<[Alt]>,
        optional: bool,
        lead_space: bool,
    },
    /// Trailing spaces, then the end of the line.
    End,
    /// Anything: where a format's front ends and a built-in format's
    /// hand-written parser takes over (`prefix_ops`).
    Rest,
}

/// What a value may look like, tried in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Alt {
    /// `[+-]?[0-9]+`, longest first.
    Int,
    /// `[0-9A-Fa-f]+`, longest first.
    Hex,
    /// `-`: HAProxy's absent value.
    Dash,
    /// `null` in JSON.
    Null,
    /// `[^\s"]+?`: a word, shortest first.
    Token,
    /// `.*?`: any text without a newline, shortest first.
    Any,
    /// `24/Nov/2026:16:21:15.230`
    DateMs,
    /// `24/Nov/2026:16:21:15 +0100`
    DateZoned,
    /// `{...}`: captured headers.
    Braces,
    /// `[...]`: a JSON array.
    Bracket,
    /// `"..."` with `\x` escapes.
    QuotedEscaped,
    /// `"..."` ending at any later quote, the nearest first.
    QuotedAny,
    /// `"123"`
    QuotedInt,
    /// `"{...}"`
    QuotedBraces,
    /// `"..."` without a quote inside.
    QuotedPlain,
}

/// The value of an unquoted item of this shape.
fn bare(shape: Shape, hexa: bool, alts: &mut Vec<Alt>) {
    match (shape, hexa) {
        (Shape::Int, false) => alts.extend([Alt::Int, Alt::Dash]),
        (Shape::Int, true) | (Shape::Ip, true) => alts.extend([Alt::Hex, Alt::Dash]),
        (Shape::Ip, false) | (Shape::Word, _) => alts.push(Alt::Token),
        (Shape::DateMs, _) => alts.push(Alt::DateMs),
        (Shape::DateZoned, _) => alts.push(Alt::DateZoned),
        (Shape::Captures, _) => alts.push(Alt::Braces),
        (Shape::Text, _) | (Shape::CaptureList, _) => alts.push(Alt::Any),
    }
}

/// What an item's value may be, in the order the regex tries it
/// (`super::value` writes the same alternatives as a regex).
pub(super) fn alts(shape: Shape, flags: Flags) -> Vec<Alt> {
    let mut alts = Vec::with_capacity(4);
    if flags.json {
        alts.extend([Alt::QuotedEscaped, Alt::Null]);
    } else if flags.quote {
        alts.push(match shape {
            Shape::Text | Shape::CaptureList if flags.escape => Alt::QuotedEscaped,
            Shape::Text | Shape::CaptureList => Alt::QuotedAny,
            Shape::Int => Alt::QuotedInt,
            Shape::Captures => Alt::QuotedBraces,
            _ => Alt::QuotedPlain,
        });
    }
    bare(shape, flags.hexa, &mut alts);
    alts
}

fn may_be_empty(shape: Shape) -> bool {
    matches!(shape, Shape::Captures | Shape::CaptureList)
}

/// The steps of a text format (`super::text_regex` in regex form).
pub(super) fn text_ops(parts: &[Part]) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut slot = 0;
    let mut k = 0;
    while k < parts.len() {
        match &parts[k] {
            Part::Text(t) => ops.push(Op::Lit(t.as_bytes().into())),
            Part::Separator if k == 0 => {}
            Part::Separator => match parts.get(k + 1) {
                Some(Part::Item(_, shape, flags)) if may_be_empty(*shape) => {
                    ops.push(Op::Item {
                        slot,
                        alts: alts(*shape, *flags).into(),
                        optional: true,
                        lead_space: true,
                    });
                    slot += 1;
                    k += 1;
                }
                None => ops.push(Op::OptSpace),
                _ => ops.push(Op::Space),
            },
            Part::Item(_, shape, flags) => {
                ops.push(Op::Item {
                    slot,
                    alts: alts(*shape, *flags).into(),
                    optional: may_be_empty(*shape),
                    lead_space: false,
                });
                slot += 1;
            }
        }
        k += 1;
    }
    ops.push(Op::End);
    ops
}

/// The steps of the front of a text format whose rest is read by another
/// parser: `text_ops` up to `Rest` instead of the end of the line.
pub(super) fn prefix_ops(parts: &[Part]) -> Vec<Op> {
    let mut ops = text_ops(parts);
    ops.pop();
    // The separator before the rest is written: it is no line's last byte.
    if let Some(last @ Op::OptSpace) = ops.last_mut() {
        *last = Op::Space;
    }
    ops.push(Op::Rest);
    ops
}

/// The steps of a `%{+json}o` format (`super::json_regex` in regex form).
pub(super) fn json_ops(parts: &[Part]) -> Vec<Op> {
    let mut ops = vec![Op::Lit(b"{"[..].into())];
    let mut slot = 0;
    for p in parts {
        let Part::Item(item, shape, flags) = p else {
            continue;
        };
        let Some(key) = &item.key else { continue };
        let sep = if slot > 0 { ", " } else { "" };
        ops.push(Op::Lit(format!("{sep}\"{key}\": ").into_bytes().into()));
        let mut a = alts(
            *shape,
            Flags {
                json: true,
                ..*flags
            },
        );
        a.push(Alt::Bracket);
        ops.push(Op::Item {
            slot,
            alts: a.into(),
            optional: false,
            lead_space: false,
        });
        slot += 1;
    }
    ops.push(Op::Lit(b"}"[..].into()));
    ops.push(Op::End);
    ops
}

/// Where each item's value is, or why there is no answer.
pub(super) type Spans = Vec<Option<(usize, usize)>>;

/// The budget ran out: the regex decides.
#[derive(Debug)]
pub(super) struct Over;

/// Runs `ops` over `line`: `Ok(Some(spans))` when the line is of the
/// format, `Ok(None)` when it is not, `Err(Over)` when the line took more
/// steps than its length allows.
pub(super) fn scan(ops: &[Op], slots: usize, line: &[u8]) -> Result<Option<Spans>, Over> {
    let tail = line.len() - line.iter().rev().take_while(|&&c| c == b' ').count();
    let mut spans = vec![None; slots];
    let mut m = Matcher {
        ops,
        line,
        tail,
        spans: &mut spans,
        budget: 256 + 8 * line.len(),
        rest: 0,
    };
    // The path a backtracking search tries first is the answer for almost
    // every line; it is walked without recursion, and only a line it does
    // not fit is searched in full.
    let found = m.probe() || m.at(0, 0)?;
    Ok(found.then_some(spans))
}

/// Where the rest of `line` starts after the first path of `ops` (ending
/// with `Rest`), or `None` when that path does not reach `Rest` (the whole
/// format's search then decides).
pub(super) fn prefix_end(ops: &[Op], line: &[u8]) -> Option<usize> {
    let mut m = Matcher {
        ops,
        line,
        tail: line.len(),
        // The front's values are not kept.
        spans: &mut [],
        budget: 256 + 8 * line.len(),
        rest: 0,
    };
    m.probe().then_some(m.rest)
}

/// [`prefix_end`], keeping the front's `slots` values.
pub(super) fn prefix_spans(ops: &[Op], slots: usize, line: &[u8]) -> Option<(usize, Spans)> {
    let mut spans = vec![None; slots];
    let mut m = Matcher {
        ops,
        line,
        tail: line.len(),
        spans: &mut spans,
        budget: 256 + 8 * line.len(),
        rest: 0,
    };
    let rest = m.probe().then_some(m.rest)?;
    Some((rest, spans))
}

struct Matcher<'a> {
    ops: &'a [Op],
    line: &'a [u8],
    /// Where the trailing spaces start.
    tail: usize,
    /// Where each item's value is (empty: values not kept).
    spans: &'a mut [Option<(usize, usize)>],
    /// Steps and bytes looked at still allowed.
    budget: usize,
    /// Where `Op::Rest` was reached.
    rest: usize,
}

fn is_space(c: u8) -> bool {
    // `\s` of the regex crate without Unicode.
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `template` with `d` a digit, `a` a letter, `s` a sign, anything else
/// itself.
fn shaped(v: &[u8], template: &[u8]) -> bool {
    v.len() >= template.len()
        && v.iter().zip(template).all(|(&c, &t)| match t {
            b'd' => c.is_ascii_digit(),
            b'a' => c.is_ascii_alphabetic(),
            b's' => c == b'+' || c == b'-',
            _ => c == t,
        })
}

/// The ends a value of `alt` starting at `line[start]` may have, in the
/// order the regex tries them.
struct Ends<'a> {
    line: &'a [u8],
    alt: Alt,
    /// The next end to try (for `Int` and `Hex`: the next is one less).
    next: usize,
    /// Where the candidates stop (for `Int` and `Hex`: the shortest end).
    last: usize,
    done: bool,
}

impl<'a> Ends<'a> {
    fn new(line: &'a [u8], alt: Alt, start: usize) -> Ends<'a> {
        let rest = &line[start..];
        let run = |from: usize, f: fn(u8) -> bool| {
            from + line[from..].iter().take_while(|&&c| f(c)).count()
        };
        let (mut next, mut last, mut done) = (start, start, false);
        // A single possible end, if the value is there.
        let mut single = |n: Option<usize>| match n {
            Some(n) => (next, last) = (start + n, start + n),
            None => done = true,
        };
        match alt {
            Alt::Int => {
                let digits = start + usize::from(matches!(rest.first(), Some(b'+' | b'-')));
                (next, last) = (run(digits, |c| c.is_ascii_digit()), digits + 1);
                done = next < last;
            }
            Alt::Hex => {
                (next, last) = (run(start, |c| c.is_ascii_hexdigit()), start + 1);
                done = next < last;
            }
            Alt::Token => {
                (next, last) = (start + 1, run(start, |c| !is_space(c) && c != b'"'));
                done = next > last;
            }
            Alt::Any => (next, last) = (start, run(start, |c| c != b'\n')),
            Alt::QuotedAny => match rest.first() {
                Some(b'"') => {
                    let nl = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
                    match memchr::memchr(b'"', &rest[1..nl]) {
                        Some(q) => (next, last) = (start + q + 2, start + nl),
                        None => done = true,
                    }
                }
                _ => done = true,
            },
            Alt::Dash => single(rest.starts_with(b"-").then_some(1)),
            Alt::Null => single(rest.starts_with(b"null").then_some(4)),
            Alt::DateMs => single(shaped(rest, b"dd/aaa/dddd:dd:dd:dd.ddd").then_some(24)),
            Alt::DateZoned => single(shaped(rest, b"dd/aaa/dddd:dd:dd:dd sdddd").then_some(26)),
            Alt::Braces => single(closed(rest, b'{', b'}', 0)),
            Alt::Bracket => single(closed(rest, b'[', b']', 0)),
            Alt::QuotedBraces => single(
                rest.starts_with(b"\"{")
                    .then(|| closed(rest, b'{', b'}', 1))
                    .flatten()
                    .filter(|&n| rest.get(n) == Some(&b'"'))
                    .map(|n| n + 1),
            ),
            Alt::QuotedPlain => single(closed(rest, b'"', b'"', 0)),
            Alt::QuotedInt => single(quoted_int(rest)),
            Alt::QuotedEscaped => single(quoted_escaped(rest)),
        }
        Ends {
            line,
            alt,
            next,
            last,
            done,
        }
    }
}

impl Iterator for Ends<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.done {
            return None;
        }
        let end = self.next;
        match self.alt {
            Alt::Int | Alt::Hex => {
                self.done = end == self.last;
                self.next = end.wrapping_sub(1);
            }
            Alt::Token | Alt::Any => {
                self.done = end == self.last;
                self.next = end + 1;
            }
            // The next quote before the newline.
            Alt::QuotedAny => match memchr::memchr(b'"', &self.line[end..self.last]) {
                Some(q) => self.next = end + q + 1,
                None => self.done = true,
            },
            _ => self.done = true,
        }
        Some(end)
    }
}

impl Matcher<'_> {
    #[inline]
    fn keep(&mut self, slot: usize, span: Option<(usize, usize)>) {
        if let Some(s) = self.spans.get_mut(slot) {
            *s = span;
        }
    }

    fn charge(&mut self, n: usize) -> Result<(), Over> {
        self.budget = self.budget.checked_sub(n).ok_or(Over)?;
        Ok(())
    }

    /// Where item `i` may start, if it may (after its space).
    fn item_start(&self, lead_space: bool, pos: usize) -> Option<usize> {
        if !lead_space {
            Some(pos)
        } else if self.line.get(pos) == Some(&b' ') {
            Some(pos + 1)
        } else {
            None
        }
    }

    /// The first path of the search: each item takes its first end that
    /// the next op may follow. True when it reaches the end of the line;
    /// false when it does not, or when a value's first end is not plain
    /// to see (the search then decides).
    fn probe(&mut self) -> bool {
        let line = self.line;
        let mut pos = 0;
        for (i, op) in self.ops.iter().enumerate() {
            match op {
                Op::Lit(l) if line[pos..].starts_with(l) => pos += l.len(),
                Op::Space if line.get(pos) == Some(&b' ') => pos += 1,
                Op::OptSpace => pos += usize::from(line.get(pos) == Some(&b' ')),
                Op::End => return pos >= self.tail,
                Op::Rest => {
                    self.rest = pos;
                    return true;
                }
                Op::Item {
                    slot,
                    alts,
                    optional,
                    lead_space,
                } => {
                    let mut first = None;
                    if let Some(start) = self.item_start(*lead_space, pos) {
                        for &alt in alts.iter() {
                            match self.first_end(i, alt, start) {
                                Ok(Some(end)) => {
                                    first = Some((start, end));
                                    break;
                                }
                                Ok(None) => {}
                                Err(Over) => return false,
                            }
                        }
                    }
                    match first {
                        Some((start, end)) => {
                            self.keep(*slot, Some((start, end)));
                            pos = end;
                        }
                        None if *optional => self.keep(*slot, None),
                        None => return false,
                    }
                }
                _ => return false,
            }
        }
        false
    }

    /// The first end of a value of `alt` at `start` that op `i + 1` may
    /// follow: `Ok(None)` when there is none, `Err(Over)` when only the
    /// search can tell.
    fn first_end(&self, i: usize, alt: Alt, start: usize) -> Result<Option<usize>, Over> {
        let line = self.line;
        match alt {
            // Longest first: the run of digits, or the search.
            Alt::Int | Alt::Hex => {
                let mut j = start;
                if alt == Alt::Int && matches!(line.get(j), Some(b'+' | b'-')) {
                    j += 1;
                }
                let digits = j;
                while let Some(&c) = line.get(j) {
                    let digit = if alt == Alt::Int {
                        c.is_ascii_digit()
                    } else {
                        c.is_ascii_hexdigit()
                    };
                    if !digit {
                        break;
                    }
                    j += 1;
                }
                match j > digits {
                    false => Ok(None),
                    true if self.may_follow(i, j) => Ok(Some(j)),
                    true => Err(Over),
                }
            }
            // Shortest first: the word's first end the next op may follow.
            Alt::Token => {
                let next = self.follow_byte(i);
                let mut j = start;
                while let Some(&c) = line.get(j) {
                    if is_space(c) || c == b'"' {
                        break;
                    }
                    j += 1;
                    if next.is_none_or(|b| line.get(j) == Some(&b)) && self.may_follow(i, j) {
                        return Ok(Some(j));
                    }
                }
                Ok(None)
            }
            // Shortest first, jumping to where the next op's first byte is
            // (a request id, free text: often long).
            Alt::Any => match self.follow_byte(i).filter(|&b| b != b'\n') {
                Some(b) => {
                    let stop =
                        memchr::memchr(b'\n', &line[start..]).map_or(line.len(), |k| start + k);
                    let mut j = start;
                    while let Some(k) = memchr::memchr(b, &line[j..stop]) {
                        if self.may_follow(i, j + k) {
                            return Ok(Some(j + k));
                        }
                        j += k + 1;
                    }
                    Ok(None)
                }
                None => Ok(Ends::new(line, alt, start).find(|&end| self.may_follow(i, end))),
            },
            _ => Ok(Ends::new(line, alt, start).find(|&end| self.may_follow(i, end))),
        }
    }

    /// The first byte op `i + 1` must start with, when it must be one.
    #[inline]
    fn follow_byte(&self, i: usize) -> Option<u8> {
        match self.ops.get(i + 1) {
            Some(Op::Lit(l)) => Some(l[0]),
            Some(Op::Space) => Some(b' '),
            _ => None,
        }
    }

    /// Whether ops `i..` match the line from `pos`, trying every path.
    fn at(&mut self, i: usize, pos: usize) -> Result<bool, Over> {
        self.charge(1)?;
        let line = self.line;
        match &self.ops[i] {
            Op::Lit(l) => Ok(line[pos..].starts_with(l) && self.at(i + 1, pos + l.len())?),
            Op::Space => Ok(line.get(pos) == Some(&b' ') && self.at(i + 1, pos + 1)?),
            Op::OptSpace => {
                if line.get(pos) == Some(&b' ') && self.at(i + 1, pos + 1)? {
                    return Ok(true);
                }
                self.at(i + 1, pos)
            }
            Op::End => Ok(pos >= self.tail),
            Op::Rest => {
                self.rest = pos;
                Ok(true)
            }
            Op::Item {
                slot,
                alts,
                optional,
                lead_space,
            } => {
                let (slot, optional) = (*slot, *optional);
                if let Some(start) = self.item_start(*lead_space, pos) {
                    for &alt in alts.iter() {
                        let ends = Ends::new(line, alt, start);
                        // What finding the ends looked at.
                        self.charge(ends.next.abs_diff(ends.last))?;
                        for end in ends {
                            self.charge(1)?;
                            if self.may_follow(i, end) {
                                self.keep(slot, Some((start, end)));
                                if self.at(i + 1, end)? {
                                    return Ok(true);
                                }
                            }
                        }
                    }
                }
                if optional {
                    self.keep(slot, None);
                    return self.at(i + 1, pos);
                }
                Ok(false)
            }
        }
    }

    /// Whether op `i + 1` could start at `end`, judged on its first bytes
    /// alone (a cheap filter before going on).
    #[inline]
    fn may_follow(&self, i: usize, end: usize) -> bool {
        match self.ops.get(i + 1) {
            Some(Op::Lit(l)) => {
                self.line.get(end) == Some(&l[0]) && self.line[end..].starts_with(l)
            }
            Some(Op::Space) => self.line.get(end) == Some(&b' '),
            Some(Op::End) => end >= self.tail,
            _ => true,
        }
    }
}

/// The length of `open [^close]* close` at `v[at..]`, counted from `v[0]`.
fn closed(v: &[u8], open: u8, close: u8, at: usize) -> Option<usize> {
    let body = v.get(at..)?.strip_prefix(&[open])?;
    memchr::memchr(close, body).map(|k| at + k + 2)
}

/// The length of `"[+-]?[0-9]+"`.
fn quoted_int(v: &[u8]) -> Option<usize> {
    let body = v.strip_prefix(b"\"")?;
    let sign = usize::from(matches!(body.first(), Some(b'+' | b'-')));
    let n = body[sign..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    (n > 0 && body.get(sign + n) == Some(&b'"')).then_some(sign + n + 2)
}

/// The length of `"(?:[^"\\]|\\.)*"` (`.`: any byte but a newline).
fn quoted_escaped(v: &[u8]) -> Option<usize> {
    let mut k = 1;
    if v.first() != Some(&b'"') {
        return None;
    }
    loop {
        match v.get(k)? {
            b'"' => return Some(k + 1),
            b'\\' => match v.get(k + 1)? {
                b'\n' => return None,
                _ => k += 2,
            },
            _ => k += 1,
        }
    }
}

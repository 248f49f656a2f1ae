//! Byte scanning for the per-line parsers.

/// Short spans: eight bytes at a time in a register (SWAR) beats both a
/// byte loop and memchr's dispatch for the dozen bytes of a log field.
#[inline]
pub fn find(b: &[u8], c: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO * c as u64;
    let mut i = 0;
    while i + 8 <= b.len() {
        let word = load64(b, i) ^ pattern;
        // The lowest byte of `word` that is zero marks the first match.
        let zero = word.wrapping_sub(LO) & !word & HI;
        if zero != 0 {
            return Some(i + (zero.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b[i..].iter().position(|&x| x == c).map(|p| i + p)
}

/// Four and eight bytes of `s` from `i`, little-endian: the loads
/// [`same`], [`name_hash`] and [`starts_with`] compare or mix.
#[inline(always)]
fn load32(s: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(s[i..i + 4].try_into().unwrap())
}

#[inline(always)]
fn load64(s: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(s[i..i + 8].try_into().unwrap())
}

/// Equality of two short byte strings (names: a host, a backend, a
/// server), inline and without a loop for names up to 16 bytes: two
/// overlapping loads from each end (the usual trick), where memcmp would
/// cost a call and a byte loop a branch per byte.
#[inline(always)]
pub fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        // Both halves told apart at once (`|`, not `&&`): one branch, not
        // one per load.
        1..=3 => (a[0] ^ b[0]) | (a[n / 2] ^ b[n / 2]) | (a[n - 1] ^ b[n - 1]) == 0,
        4..=7 => (load32(a, 0) ^ load32(b, 0)) | (load32(a, n - 4) ^ load32(b, n - 4)) == 0,
        8..=16 => (load64(a, 0) ^ load64(b, 0)) | (load64(a, n - 8) ^ load64(b, n - 8)) == 0,
        _ => a == b,
    }
}

/// `dst[..src.len()] = src` for a name of up to 16 bytes (what [`same`]
/// compares in two loads), in two overlapping moves and no call; `false`,
/// with nothing written, for a longer one or a `dst` shorter than 16.
#[inline(always)]
pub fn copy_short(dst: &mut [u8], src: &[u8]) -> bool {
    let n = src.len();
    if n > 16 || dst.len() < 16 {
        return false;
    }
    match n {
        0 => {}
        1..=3 => {
            dst[0] = src[0];
            dst[n / 2] = src[n / 2];
            dst[n - 1] = src[n - 1];
        }
        4..=7 => {
            let (a, b) = (load32(src, 0), load32(src, n - 4));
            dst[..4].copy_from_slice(&a.to_le_bytes());
            dst[n - 4..n].copy_from_slice(&b.to_le_bytes());
        }
        _ => {
            let (a, b) = (load64(src, 0), load64(src, n - 8));
            dst[..8].copy_from_slice(&a.to_le_bytes());
            dst[n - 8..n].copy_from_slice(&b.to_le_bytes());
        }
    }
    true
}

/// A 64-bit hash of a name, inline: up to 16 bytes (nearly every host,
/// backend and server name) are read in the two overlapping loads
/// [`same`] compares, so the hash costs a few instructions and no loop;
/// a longer name is hashed whole (every byte counts: names that differ
/// only in the middle, `app-01-web-eu` style, must not collide).
#[inline(always)]
pub fn name_hash(s: &[u8]) -> u64 {
    // rustc-hash 2's multiplier: odd, with well spread bits.
    const K: u64 = 0xf135_7aea_2e62_a9c5;
    let n = s.len();
    let u32_at = |i: usize| load32(s, i) as u64;
    let u64_at = |i: usize| load64(s, i);
    let v = match n {
        0 => 0,
        1..=3 => s[0] as u64 | (s[n / 2] as u64) << 8 | (s[n - 1] as u64) << 16,
        4..=7 => u32_at(0) | u32_at(n - 4) << 32,
        // The second load without the bytes the first one read: a byte
        // then counts in one term only, and any one changed changes `v`.
        8..=16 => {
            u64_at(0).wrapping_mul(K) ^ u64_at(n - 8).checked_shr(8 * (16 - n) as u32).unwrap_or(0)
        }
        _ => return long_hash(s),
    };
    (v ^ (n as u64) << 58).wrapping_mul(K)
}

/// Kubernetes names (`default-my-service-80`) are often this long.
fn long_hash(s: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    h.write(s);
    h.finish()
}

/// `b` starts with `prefix` (a few dozen bytes): eight bytes at a time,
/// the last eight overlapping, without a call to memcmp.
#[inline(always)]
pub fn starts_with(b: &[u8], prefix: &[u8]) -> bool {
    let n = prefix.len();
    if b.len() < n {
        return false;
    }
    if n < 8 {
        return &b[..n] == prefix;
    }
    let mut i = 0;
    while i + 8 < n {
        if load64(b, i) != load64(prefix, i) {
            return false;
        }
        i += 8;
    }
    load64(b, n - 8) == load64(prefix, n - 8)
}

/// An unsigned decimal of at most 18 digits (no sign, no spaces).
#[inline]
pub fn digits(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 18 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u64;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swar_find_matches_position() {
        let hay = b"abc def/ghi jkl mnopqrstu vwxyz 0123456789 x";
        for len in 0..hay.len() {
            for c in [b' ', b'/', b'x', b'z', b'!'] {
                assert_eq!(
                    find(&hay[..len], c),
                    hay[..len].iter().position(|&x| x == c),
                    "{len} {c}"
                );
            }
        }
        assert_eq!(
            find(
                &[0x80, 0xff, 0x20, 0x00, 0x01, 0x7f, 0x81, 0x20, 0x20],
                b' '
            ),
            Some(2)
        );
        assert_eq!(find(&[0x21; 9], b' '), None);
        assert_eq!(find(&[0x00; 16], 0), Some(0));
    }

    #[test]
    fn copy_short_copies_exactly_the_name() {
        for n in 0..=17 {
            let src: Vec<u8> = (1..=n as u8).collect();
            let mut dst = [0xAAu8; 24];
            let copied = copy_short(&mut dst, &src);
            assert_eq!(copied, n <= 16, "{n} bytes");
            if copied {
                assert_eq!(&dst[..n], &src[..], "{n} bytes");
            }
            // Nothing past the name, nothing at all when not copied.
            let untouched = if copied { n } else { 0 };
            assert!(dst[untouched..].iter().all(|&b| b == 0xAA), "{n} bytes");
        }
        // A destination too short for the two moves is left alone.
        let mut small = [0u8; 8];
        assert!(!copy_short(&mut small, b"lb1"));
        assert_eq!(small, [0; 8]);
    }

    #[test]
    fn same_is_equality() {
        let names: [&[u8]; 17] = [
            b"",
            b"a",
            b"b",
            b"ab",
            b"abc",
            b"axc",
            b"srv1",
            b"srv2",
            b"xrv1",
            b"be_api1",
            b"be_api01",
            b"be_api02",
            b"ce_api01",
            b"be_api01x",
            b"lb1.eu-west-1.internal",
            b"lb1.eu-west-1.internam",
            b"lb2.eu-west-1.internal",
        ];
        for a in names {
            for b in names {
                assert_eq!(same(a, b), a == b, "{a:?} {b:?}");
            }
        }
        // A difference in any one byte, at every length the loads split.
        for n in 0..40 {
            let a: Vec<u8> = (0..n as u8).map(|i| b'a' + i % 26).collect();
            assert!(same(&a, &a.clone()));
            for at in 0..n {
                let mut b = a.clone();
                b[at] ^= 0x20;
                assert!(!same(&a, &b), "length {n}, byte {at}");
            }
        }
    }

    #[test]
    fn names_one_byte_apart_hash_apart() {
        // Every length the loads split (and past them: hashed whole), every
        // byte, every other value it could take: a server's key differs from
        // another's by one byte more often than not (`srv1`, `srv2`).
        for n in 0..40usize {
            let a: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            let h = name_hash(&a);
            assert_eq!(h, name_hash(&a.clone()));
            for at in 0..n {
                for v in 0..=255u8 {
                    if v == a[at] {
                        continue;
                    }
                    let mut b = a.clone();
                    b[at] = v;
                    assert_ne!(h, name_hash(&b), "length {n}, byte {at} = {v}");
                }
            }
        }
        // A length alone changes it, zero bytes included.
        let zeros: Vec<u64> = (0..40).map(|n| name_hash(&vec![0u8; n])).collect();
        for (i, a) in zeros.iter().enumerate() {
            assert!(!zeros[i + 1..].contains(a), "{i} zero bytes");
        }
    }

    #[test]
    fn decimal_digits() {
        assert_eq!(digits(b"0"), Some(0));
        assert_eq!(digits(b"4061"), Some(4061));
        assert_eq!(digits(b"999999999999999999"), Some(999_999_999_999_999_999));
        for bad in [&b""[..], b"-1", b"+1", b"1a", b" 1", b"1234567890123456789"] {
            assert_eq!(digits(bad), None);
        }
    }
}

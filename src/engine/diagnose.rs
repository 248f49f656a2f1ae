//! What a line that was not understood looks most like: the hint `analyze`
//! gives when most of an input is unparsed, so that a user with the wrong
//! file, a custom `log-format` or another program's log knows which.

use crate::envelope;
use crate::haproxy;

/// The nearest form hapwatch knows to `line`, and what to do about it.
pub fn nearest_form(line: &[u8]) -> String {
    let env = envelope::open(line);
    let h = envelope::header(&env);
    let msg = h.msg;
    let program = h.program.map(String::from_utf8_lossy);
    if has_accept_date(msg) {
        return "an HAProxy request line, but not in the layout of `option httplog`, \
                `httpslog`, `tcplog` or `httplog clf`: a custom `log-format`; give hapwatch \
                HAProxy's configuration (`--haproxy-config /etc/haproxy/haproxy.cfg`) or the \
                format (`--log-format '...'`)"
            .into();
    }
    if line.first() == Some(&b'{') {
        return if memchr::memmem::find(line, b"\"MESSAGE\"").is_some() {
            "journalctl's JSON (`-o json`) whose MESSAGE is not HAProxy's: select HAProxy's \
             unit (`journalctl -u haproxy -o json`)"
                .into()
        } else {
            "JSON that is not Docker's json-file (`{\"log\":...}`): a JSON `log-format`? give \
             hapwatch HAProxy's configuration (`--haproxy-config FILE`) or the format \
             (`--log-format '...'`)"
                .into()
        };
    }
    if haproxy::strip_stderr_prefix(msg).is_some()
        || program.as_deref().is_some_and(|p| p.starts_with("haproxy"))
    {
        return "a message from HAProxy that is none of its known request, health or process \
                forms: add a pattern for it (--patterns DIR, see patterns/)"
            .into();
    }
    if let Some(p) = program {
        return format!(
            "syslog lines of another program ({p}): give hapwatch HAProxy's lines only \
             (rsyslog: `if $programname startswith 'haproxy' then ...`)"
        );
    }
    "none of the forms hapwatch reads: syslog (RFC 3164, RFC 5424, rsyslog's file \
     formats), HAProxy's `log` formats and stderr, Docker, CRI, kubectl and compose output"
        .into()
}

/// `[24/Nov/2026:16:21:15` anywhere: HAProxy's accept date.
fn has_accept_date(msg: &[u8]) -> bool {
    memchr::memchr_iter(b'[', msg).any(|i| {
        msg.get(i + 1..i + 21)
            .is_some_and(|d| crate::time::parse_haproxy_date(d).is_some())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_stranger_is_named() {
        let hint = |l: &str| nearest_form(l.as_bytes());
        assert!(hint("<134>Nov 24 16:21:15 haproxy[1]: 7f3a-01 GET /x [24/Nov/2026:16:21:15.230] fe be/s 200").contains("custom `log-format`"));
        assert!(hint("{\"MESSAGE\":\"x\",\"__REALTIME_TIMESTAMP\":\"1\"}").contains("journalctl"));
        assert!(hint("{\"level\":\"info\"}").contains("a JSON `log-format`"));
        assert!(hint("<134>Nov 24 16:21:15 haproxy[1]: something new").contains("--patterns"));
        assert!(hint("Nov 24 16:21:15 lb1 sshd[22]: Accepted publickey").contains("(sshd)"));
        assert!(hint("hello world").contains("none of the forms"));
    }
}

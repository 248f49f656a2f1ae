//! Deterministic generator of realistic HAProxy logs, for benchmarks.
//!
//! `hapwatch-gen --lines 2000000 --seed 1 > bench.log`
//!
//! About 90% HTTP request lines (status mix, slow tails, retries, `<NOSRV>`,
//! `<BADREQ>`, aborted requests), 9% TCP lines, and health events (a server
//! going DOWN and UP, maintenance, a backend with no server). The syslog
//! header is rsyslog's traditional file format with a hostname
//! (`Nov 24 16:21:15 lb1 haproxy[4061]: `), which `halog` reads as is.

use std::io::{self, BufWriter, Write};

use clap::Parser;

#[derive(Parser)]
#[command(about = "Generate realistic HAProxy logs (deterministic)")]
struct Args {
    /// Number of lines.
    #[arg(long, default_value_t = 1_000_000)]
    lines: u64,
    /// Seed of the pseudo-random sequence: same seed, same output.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of load balancers (host names lb1, lb2, ...).
    #[arg(long, default_value_t = 2)]
    hosts: u32,
}

/// xorshift64*: small, fast and reproducible across platforms.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Roughly log-normal milliseconds around `median`.
    fn latency(&mut self, median: u64) -> u64 {
        let mut v = median as f64;
        for _ in 0..4 {
            v *= 0.7 + (self.below(1000) as f64 / 1000.0) * 0.6;
        }
        if self.below(100) == 0 {
            v *= 8.0; // slow tail
        }
        v as u64
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const PATHS: [&str; 8] = [
    "/",
    "/api/v1/items",
    "/api/v1/items?page=2&sort=name",
    "/static/js/app.3f9a1c.js",
    "/static/css/site.css",
    "/login",
    "/api/v1/orders/12345/lines",
    "/healthz",
];

fn main() -> io::Result<()> {
    let a = Args::parse();
    let mut r = Rng(a.seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let out = io::stdout();
    let mut w = BufWriter::with_capacity(1 << 20, out.lock());
    // Start 2026-11-24 10:00:00; ~1,000 lines per second of log time.
    let (year, month, mut day) = (2026, 11, 24u32);
    let mut ms: u64 = 10 * 3_600_000;
    let backends: [(&str, u32); 4] = [
        ("be_app", 6),
        ("be_api", 4),
        ("be_static", 3),
        ("be_tcp", 2),
    ];
    for i in 0..a.lines {
        ms += r.below(3);
        if ms >= 86_400_000 {
            ms -= 86_400_000;
            day += 1;
        }
        let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        let host = 1 + (i % a.hosts as u64);
        let pid = 4000 + host;
        write!(
            w,
            "{} {:2} {:02}:{:02}:{:02} lb{} haproxy[{}]: ",
            MONTHS[month - 1],
            day,
            h,
            m,
            s,
            host,
            pid
        )?;
        let roll = r.below(1000);
        if roll < 2 {
            // Health events, in pairs so that servers come back.
            let (be, n) = backends[r.below(3) as usize];
            let srv = r.below(n as u64) + 1;
            match r.below(4) {
                0 => writeln!(w, "Server {be}/srv{srv} is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms. {} active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.", n - 1)?,
                1 => writeln!(w, "Server {be}/srv{srv} is UP, reason: Layer7 check passed, code: 200, check duration: 2ms. {n} active and 0 backup servers online. 0 sessions requeued, 0 total in queue.")?,
                2 => writeln!(w, "Health check for server {be}/srv{srv} failed, reason: Layer7 timeout, check duration: 1001ms, status: 1/2 UP.")?,
                _ => writeln!(w, "Server {be}/srv{srv} is going DOWN for maintenance. {} active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.", n - 1)?,
            }
            continue;
        }
        let client = format!(
            "10.{}.{}.{}:{}",
            r.below(4),
            r.below(256),
            r.below(256),
            1024 + r.below(60000)
        );
        let date = format!(
            "{:02}/{}/{}:{:02}:{:02}:{:02}.{:03}",
            day,
            MONTHS[month - 1],
            year,
            h,
            m,
            s,
            frac
        );
        let conns = format!(
            "{}/{}/{}/{}",
            100 + r.below(50),
            90 + r.below(40),
            10 + r.below(20),
            r.below(10)
        );
        if roll < 92 {
            // TCP (tcplog)
            let srv = r.below(2) + 1;
            let tt = r.latency(2000);
            let term = if r.below(20) == 0 { "SD" } else { "--" };
            writeln!(
                w,
                "{client} [{date}] fe_tcp be_tcp/srv{srv} 0/{}/{} {} {term} {conns}/0 0/0",
                r.below(3),
                tt,
                200 + r.below(20000)
            )?;
            continue;
        }
        let (be, n) = backends[r.below(3) as usize];
        let path = PATHS[r.below(PATHS.len() as u64) as usize];
        let method = if r.below(10) == 0 { "POST" } else { "GET" };
        let e = r.below(1000);
        if e < 3 {
            writeln!(w, "{client} [{date}] fe_http fe_http/<NOSRV> -1/-1/-1/-1/{} 400 187 - - PR-- {conns}/0 0/0 \"<BADREQ>\"", r.below(5))?;
        } else if e < 6 {
            writeln!(w, "{client} [{date}] fe_http {be}/<NOSRV> 0/{}/-1/-1/{} 503 217 - - SQ-- {conns}/0 0/{} \"{method} {path} HTTP/1.1\"", 1000 + r.below(2000), 3000, r.below(30))?;
        } else {
            let srv = r.below(n as u64) + 1;
            let tr_req = r.below(3);
            let tw = if r.below(50) == 0 { r.below(200) } else { 0 };
            let tc = r.below(2);
            let tresp = r.latency(if be == "be_static" { 3 } else { 40 });
            let ta = tr_req + tw + tc + tresp + r.below(3);
            let (status, term, retries) = match e {
                6..=14 => (503, "SC--", "3"),
                15..=19 => (504, "sH--", "0"),
                20..=24 => (-1, "CD--", "0"),
                25..=29 => (502, "SH--", "+1"),
                30..=80 => (404, "----", "0"),
                81..=110 => (302, "----", "0"),
                _ => (200, "----", "0"),
            };
            let (tc_s, tr_s) = if term.starts_with("SC") {
                ("-1".to_string(), "-1".to_string())
            } else {
                (tc.to_string(), tresp.to_string())
            };
            writeln!(
                w,
                "{client} [{date}] fe_http {be}/srv{srv} {tr_req}/{tw}/{tc_s}/{tr_s}/{ta} {status} {} - - {term} {conns}/{retries} {}/0 {{{}|Mozilla/5.0}} \"{method} {path} HTTP/1.1\"",
                200 + r.below(50_000),
                r.below(2),
                ["example.com", "api.example.com"][r.below(2) as usize],
            )?;
        }
    }
    w.flush()
}

//! Bounded load generator for `hapwatch listen` (and, side by side,
//! rsyslog): sends the lines of a file (e.g. from `hapwatch-gen`) as syslog
//! over UDP or TCP (LF or octet-counted) to a loopback address, at a set
//! rate, for a set count, and says what it sent. Refuses non-loopback
//! targets: benchmarks stay on this machine.

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Proto {
    Udp,
    Tcp,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Framing {
    Lf,
    Octet,
}

#[derive(Parser)]
#[command(about = "Send HAProxy log lines to a syslog receiver on loopback, bounded")]
struct Args {
    /// Lines to send (cycled), e.g. from `hapwatch-gen`.
    #[arg(long)]
    lines: std::path::PathBuf,
    #[arg(long, value_enum, default_value = "tcp")]
    proto: Proto,
    #[arg(long, value_enum, default_value = "octet")]
    framing: Framing,
    /// Target, on 127.0.0.0/8 or ::1.
    #[arg(long, default_value = "127.0.0.1:5514")]
    to: SocketAddr,
    /// Messages per second (0: as fast as the socket takes them).
    #[arg(long, default_value_t = 100_000)]
    rate: u64,
    /// Messages in all.
    #[arg(long, default_value_t = 1_000_000)]
    count: u64,
    /// Sending threads, each with its own socket (UDP) or connection (TCP);
    /// the rate and count are split between them.
    #[arg(long, default_value_t = 1)]
    senders: usize,
    /// Give up after this many seconds whatever was sent.
    #[arg(long, default_value_t = 120)]
    max_seconds: u64,
}

/// One sender: `count` frames at `rate` per second (0: unpaced), paced in
/// steps so that the rate holds on average from `started`.
#[allow(clippy::too_many_arguments)]
fn send(
    frames: &[Vec<u8>],
    first: usize,
    proto: Proto,
    to: SocketAddr,
    rate: u64,
    count: u64,
    started: Instant,
    deadline: Instant,
) -> (u64, u64) {
    let udp = (proto == Proto::Udp).then(|| UdpSocket::bind("127.0.0.1:0").expect("bind"));
    let mut tcp = (proto == Proto::Tcp).then(|| {
        let s = TcpStream::connect(to).unwrap_or_else(|e| {
            eprintln!("hapwatch-load: {to}: {e}");
            std::process::exit(1)
        });
        std::io::BufWriter::with_capacity(256 * 1024, s)
    });
    let (mut sent, mut bytes) = (0u64, 0u64);
    let mut idx = first * 7919;
    'outer: while sent < count && Instant::now() < deadline {
        let allowed = if rate == 0 {
            count
        } else {
            ((started.elapsed().as_secs_f64() * rate as f64) as u64 + 1).min(count)
        };
        if sent >= allowed {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        for _ in 0..(allowed - sent).min(4096) {
            let f = &frames[idx % frames.len()];
            idx += 1;
            let ok = match (&udp, &mut tcp) {
                (Some(u), _) => u.send_to(f, to).is_ok(),
                (_, Some(t)) => t.write_all(f).is_ok(),
                _ => false,
            };
            if !ok {
                eprintln!("hapwatch-load: sending to {to} failed");
                break 'outer;
            }
            sent += 1;
            bytes += f.len() as u64;
        }
    }
    if let Some(t) = tcp.as_mut() {
        let _ = t.flush();
    }
    (sent, bytes)
}

fn main() {
    let a = Args::parse();
    if !a.to.ip().is_loopback() {
        eprintln!("hapwatch-load: {} is not a loopback address", a.to);
        std::process::exit(2);
    }
    let text = std::fs::read(&a.lines).unwrap_or_else(|e| {
        eprintln!("hapwatch-load: {}: {e}", a.lines.display());
        std::process::exit(2)
    });
    // Syslog framing of each line: a PRI in front (the files are in the
    // traditional file format, which a receiver also accepts), then LF or
    // an octet count.
    let frames: Vec<Vec<u8>> = text
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut msg = b"<134>".to_vec();
            msg.extend_from_slice(l);
            match (a.proto, a.framing) {
                (Proto::Udp, _) => msg,
                (Proto::Tcp, Framing::Lf) => {
                    msg.push(b'\n');
                    msg
                }
                (Proto::Tcp, Framing::Octet) => {
                    let mut f = format!("{} ", msg.len()).into_bytes();
                    f.extend_from_slice(&msg);
                    f
                }
            }
        })
        .collect();
    if frames.is_empty() {
        eprintln!("hapwatch-load: no lines in {}", a.lines.display());
        std::process::exit(2);
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(a.max_seconds);
    let n = a.senders.max(1) as u64;
    let frames = std::sync::Arc::new(frames);
    let results: Vec<(u64, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|k| {
                let frames = frames.clone();
                let count = a.count / n + (k < a.count % n) as u64;
                let rate = a.rate / n;
                let (proto, to) = (a.proto, a.to);
                s.spawn(move || {
                    send(
                        &frames, k as usize, proto, to, rate, count, started, deadline,
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("sender"))
            .collect()
    });
    let sent: u64 = results.iter().map(|r| r.0).sum();
    let bytes: u64 = results.iter().map(|r| r.1).sum();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{{\"sent\": {sent}, \"bytes\": {bytes}, \"seconds\": {secs:.3}, \"rate\": {:.0}}}",
        sent as f64 / secs
    );
}

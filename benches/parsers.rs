//! Criterion benchmarks of the per-line parsers (lines/s on one core).
//! `cargo bench --bench parsers`

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use hapwatch::{haproxy, patterns::PatternSet, syslog};

const HTTP: &str = "<134>Nov 24 16:21:15 haproxy[4061]: 127.0.0.1:44128 [24/Nov/2026:16:21:15.230] fe_http be_app/srv1 0/0/0/12/13 200 1234 - - ---- 12/12/3/1/0 0/0 \"GET /api/v1/items?page=2 HTTP/1.1\"";
const TCP: &str = "<134>1 2026-11-24T16:21:15.231349+00:00 - haproxy 4061 - - 127.0.0.1:37880 [24/Nov/2026:16:21:15.231] fe_tcp be_tcp/t1 1/0/1 120 CD 1/1/0/0/0 0/0";
const HEALTH: &str = "<129>Nov 24 16:21:15 haproxy[4061]: Server be_tcp/t1 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";

fn bench(c: &mut Criterion) {
    let patterns = PatternSet::builtin();
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("syslog_header_rfc3164", |b| {
        b.iter(|| syslog::parse(black_box(HTTP.as_bytes())))
    });
    g.bench_function("syslog_header_rfc5424", |b| {
        b.iter(|| syslog::parse(black_box(TCP.as_bytes())))
    });
    g.bench_function("syslog_loose_rfc3164", |b| {
        b.iter(|| {
            syslog_loose::parse_message_with_year_exact(
                black_box(HTTP),
                |_| 2026,
                syslog_loose::Variant::Either,
            )
        })
    });
    let http_msg = syslog::parse(HTTP.as_bytes()).msg;
    g.bench_function("request_httplog", |b| {
        b.iter(|| haproxy::request::parse(black_box(http_msg)))
    });
    let tcp_msg = syslog::parse(TCP.as_bytes()).msg;
    g.bench_function("request_tcplog", |b| {
        b.iter(|| haproxy::request::parse(black_box(tcp_msg)))
    });
    g.bench_function("line_http_header_and_request", |b| {
        b.iter(|| {
            haproxy::classify(&patterns, syslog::parse(black_box(HTTP.as_bytes())).msg)
                .is_some_request()
        })
    });
    let health_msg = syslog::parse(HEALTH.as_bytes()).msg;
    g.bench_function("health_event", |b| {
        b.iter(|| haproxy::classify(&patterns, black_box(health_msg)).is_some_request())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

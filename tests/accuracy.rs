//! Percentiles from the HDR histograms are within 1% of the exact ones.

mod common;
use common::*;

#[test]
fn percentiles_within_one_percent_of_exact() {
    // Deterministic, wide-ranged latencies (1 ms .. ~60 s), log-uniform.
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut values = Vec::new();
    let mut log = String::new();
    for i in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let v = (1.0f64 * (60_000f64).powf((x % 10_000) as f64 / 10_000.0)) as u64;
        values.push(v);
        log.push_str(&format!(
            "127.0.0.1:{} [24/Nov/2026:16:21:15.230] fe be/s1 0/0/0/{v}/{} 200 1 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"\n",
            1000 + i % 60000,
            v + 1
        ));
    }
    let out = hapwatch_stdin(&["analyze", "--format", "json", "-"], log.as_bytes());
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tr = &server(&r, "be", "s1")["timers_ms"]["Tr"];
    values.sort_unstable();
    let exact =
        |q: f64| values[((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
    for (name, q) in [("p50", 0.50), ("p90", 0.90), ("p99", 0.99)] {
        let got = tr[name].as_u64().unwrap() as f64;
        let want = exact(q) as f64;
        assert!(
            (got - want).abs() <= want * 0.01,
            "{name}: got {got}, exact {want}"
        );
    }
    assert_eq!(
        tr["max"].as_u64().unwrap() as f64,
        *values.last().unwrap() as f64
    );
    let mean = values.iter().sum::<u64>() as f64 / values.len() as f64;
    assert!((tr["mean"].as_f64().unwrap() - mean).abs() < 0.01);
    assert_eq!(tr["count"], 20_000);
}

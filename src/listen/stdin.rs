//! `--stdin` (or `--follow -`): standard input as a live source, read until
//! its end, so that what a container runtime's tool streams is followed like
//! any listener: `docker logs -f -t haproxy 2>&1 | hapwatch listen --stdin`.
//! Lines, LF-framed; a line over the frame limit is dropped whole and
//! counted. When standard input is the only source, its end stops `listen`
//! as SIGTERM does (everything applied and committed).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use ::bytes::Bytes;
use futures_util::StreamExt;
use tokio_util::codec::{AnyDelimiterCodec, AnyDelimiterCodecError, FramedRead};
use tokio_util::sync::CancellationToken;

use super::metrics::Listener;
use super::{Batch, Sender, BATCH};

pub async fn run(
    tx: Sender,
    l: Arc<Listener>,
    max_frame: usize,
    stop: CancellationToken,
    alone: bool,
) {
    let codec = AnyDelimiterCodec::new_with_max_length(b"\n".to_vec(), Vec::new(), max_frame);
    let mut framed = FramedRead::new(tokio::io::stdin(), codec);
    loop {
        let first = tokio::select! {
            f = framed.next() => f,
            _ = stop.cancelled() => break,
        };
        let (frames, open) = batch(&mut framed, first, &l);
        // Back-pressure: standard input is not read while the queue is full.
        if !frames.is_empty() && tx.send(Batch::new(frames, None).from(&l)).await.is_err() {
            break;
        }
        if !open {
            break;
        }
    }
    if alone {
        stop.cancel();
    }
}

/// `first` and the lines already read after it, up to [`BATCH`], counted
/// on `l`; false once the stream has ended.
pub(super) fn batch<S>(
    lines: &mut S,
    first: Option<Result<Bytes, AnyDelimiterCodecError>>,
    l: &Listener,
) -> (Vec<Bytes>, bool)
where
    S: futures_util::Stream<Item = Result<Bytes, AnyDelimiterCodecError>> + Unpin,
{
    let mut frames: Vec<Bytes> = Vec::with_capacity(BATCH);
    let mut open = take(l, &mut frames, first);
    while open && frames.len() < BATCH {
        match futures_util::FutureExt::now_or_never(lines.next()) {
            Some(f) => open = take(l, &mut frames, f),
            None => break,
        }
    }
    l.messages.fetch_add(frames.len() as u64, Relaxed);
    (frames, open)
}

/// One item of the stream into `frames` (or a count); false at its end.
fn take(
    l: &Listener,
    frames: &mut Vec<Bytes>,
    f: Option<Result<Bytes, AnyDelimiterCodecError>>,
) -> bool {
    match f {
        Some(Ok(f)) => {
            l.bytes.fetch_add(f.len() as u64 + 1, Relaxed);
            l.bytes_to.processed.fetch_add(f.len() as u64 + 1, Relaxed);
            if !f.is_empty() {
                frames.push(f);
            }
            true
        }
        // The codec skips to the end of the line: counted once.
        Some(Err(AnyDelimiterCodecError::MaxChunkLengthExceeded)) => {
            l.oversized.fetch_add(1, Relaxed);
            true
        }
        Some(Err(AnyDelimiterCodecError::Io(e))) => {
            crate::say!("hapwatch: stdin: {e}");
            false
        }
        None => false,
    }
}

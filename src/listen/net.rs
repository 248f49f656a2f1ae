//! Sockets: UDP, TCP (framing.rs per connection) and unix datagrams.
//!
//! Each receiver batches frames ([`super::BATCH`]) before queueing them.
//! TCP `send().await`s: when the engine is behind, the connection stops
//! being read and the sender's window closes (nothing read is dropped).
//! Datagrams cannot wait: a full queue drops the batch and counts it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use ::bytes::Bytes;
use futures_util::StreamExt;
use tokio::net::{TcpListener, UdpSocket, UnixDatagram};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use super::framing::SyslogDecoder;
use super::metrics::{Listener, Shared};
use super::{Batch, Limits, Options, Sender, StartError, BATCH};

pub struct Bound {
    udp: Vec<(Arc<UdpSocket>, Arc<Listener>)>,
    tcp: Vec<(TcpListener, Arc<Listener>)>,
    tls: Vec<(TcpListener, Arc<Listener>, tokio_rustls::TlsAcceptor)>,
    unix: Vec<(UnixDatagram, Arc<Listener>, std::path::PathBuf)>,
}

fn listener(name: String) -> Arc<Listener> {
    Arc::new(Listener {
        name,
        ..Default::default()
    })
}

fn addr(flag: &str, a: &str) -> Result<SocketAddr, StartError> {
    a.parse().map_err(|_| {
        StartError(format!(
            "{flag} {a}: not an address: give IP:PORT, e.g. 127.0.0.1:5514"
        ))
    })
}

/// Binds every socket; the first that fails is named.
pub async fn bind_all(opts: &Options) -> Result<(Bound, Vec<Arc<Listener>>), StartError> {
    let mut all = Vec::new();
    let mut b = Bound {
        udp: Vec::new(),
        tcp: Vec::new(),
        tls: Vec::new(),
        unix: Vec::new(),
    };
    for a in &opts.udp {
        let sa = addr("--udp", a)?;
        let sock = socket2::Socket::new(
            socket2::Domain::for_address(sa),
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )
        .map_err(|e| StartError(format!("--udp {a}: {e}")))?;
        // A large receive buffer absorbs bursts; the kernel caps it at
        // net.core.rmem_max (what it granted is in the start message).
        let _ = sock.set_recv_buffer_size(opts.limits.udp_recv_buffer);
        sock.set_nonblocking(true)
            .and_then(|_| sock.bind(&sa.into()))
            .map_err(|e| StartError(format!("--udp {a}: {e}")))?;
        let std: std::net::UdpSocket = sock.into();
        let s = UdpSocket::from_std(std).map_err(|e| StartError(format!("--udp {a}: {e}")))?;
        let l = listener(format!("udp://{}", s.local_addr().map_or(sa, |x| x)));
        all.push(l.clone());
        b.udp.push((Arc::new(s), l));
    }
    // A stream listener: `--tcp` or `--tls`.
    async fn stream(flag: &str, a: &str) -> Result<TcpListener, StartError> {
        let sa = addr(flag, a)?;
        TcpListener::bind(sa)
            .await
            .map_err(|e| StartError(format!("{flag} {a}: {e}")))
    }
    let named = |scheme: &str, s: &TcpListener, a: &str| {
        listener(format!(
            "{scheme}://{}",
            s.local_addr().map_or(a.to_string(), |x| x.to_string())
        ))
    };
    for a in &opts.tcp {
        let s = stream("--tcp", a).await?;
        let l = named("tcp", &s, a);
        all.push(l.clone());
        b.tcp.push((s, l));
    }
    for (a, acceptor) in opts
        .tls
        .iter()
        .flat_map(|(addrs, acc)| addrs.iter().map(move |a| (a, acc)))
    {
        let s = stream("--tls", a).await?;
        let l = named("tls", &s, a);
        all.push(l.clone());
        b.tls.push((s, l, acceptor.clone()));
    }
    for p in &opts.unix {
        let bad = |why: String| StartError(format!("--unix {}: {why}", p.display()));
        // A socket file left by a stopped run is replaced; a live one (a
        // datagram sent to it would be received) belongs to another
        // process; any other file is not ours to remove.
        if let Ok(meta) = std::fs::symlink_metadata(p) {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                return Err(bad("exists and is not a socket: give another path".into()));
            }
            let live = std::os::unix::net::UnixDatagram::unbound()
                .and_then(|probe| probe.connect(p))
                .is_ok();
            if live {
                return Err(bad(
                    "in use by another running process (another hapwatch?): stop it or give \
                     another path"
                        .into(),
                ));
            }
            let _ = std::fs::remove_file(p);
        }
        let s = UnixDatagram::bind(p).map_err(|e| bad(e.to_string()))?;
        // Who may write here is who may inject health events: the owner
        // and the group (HAProxy's, with --unix-group), not every user.
        if let Some(gid) = opts.unix_access.group {
            std::os::unix::fs::chown(p, None, Some(gid))
                .map_err(|e| bad(format!("--unix-group: {e}")))?;
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(opts.unix_access.mode))
            .map_err(|e| bad(format!("--unix-mode: {e}")))?;
        let l = listener(format!("unix://{}", p.display()));
        all.push(l.clone());
        b.unix.push((s, l, p.clone()));
    }
    Ok((b, all))
}

pub fn spawn_all(
    tasks: &mut tokio::task::JoinSet<()>,
    bound: Bound,
    tx: Sender,
    limits: &Limits,
    stop: &CancellationToken,
) {
    for (s, l) in bound.udp {
        tasks.spawn(datagrams(s, l, tx.clone(), limits.clone(), stop.clone()));
    }
    let tcp = bound.tcp.into_iter().map(|(s, l)| (s, l, None));
    let tls = bound.tls.into_iter().map(|(s, l, a)| (s, l, Some(a)));
    for (s, l, tls) in tcp.chain(tls) {
        tasks.spawn(tcp_accept(
            s,
            l,
            tls,
            tx.clone(),
            limits.clone(),
            stop.clone(),
        ));
    }
    for (s, l, path) in bound.unix {
        let (tx, limits, stop) = (tx.clone(), limits.clone(), stop.clone());
        tasks.spawn(async move {
            datagrams(s, l, tx, limits, stop).await;
            let _ = std::fs::remove_file(path);
        });
    }
}

/// Queues a batch without waiting (datagrams); counts it dropped when the
/// queue is full.
fn offer(tx: &Sender, frames: Vec<Bytes>, l: &Arc<Listener>) {
    let n = frames.len() as u64;
    let bytes: u64 = frames.iter().map(|f| f.len() as u64).sum();
    if tx.try_send(Batch::new(frames, None).from(l)).is_err() {
        l.app_drops.fetch_add(n, Relaxed);
        l.bytes_to.dropped.fetch_add(bytes, Relaxed);
    } else {
        l.bytes_to.processed.fetch_add(bytes, Relaxed);
    }
}

/// Takes one datagram into the batch (or counts why not). `n` is its
/// whole length, even when the buffer held only its start.
fn take_datagram(
    buf: &[u8],
    n: usize,
    from_ok: bool,
    limits: &Limits,
    l: &Listener,
    frames: &mut Vec<Bytes>,
) {
    l.bytes.fetch_add(n as u64, Relaxed);
    if !from_ok {
        l.denied.fetch_add(1, Relaxed);
        l.bytes_to.denied.fetch_add(n as u64, Relaxed);
    } else if n > limits.max_frame {
        l.oversized.fetch_add(1, Relaxed);
        l.bytes_to.oversized.fetch_add(n as u64, Relaxed);
    } else {
        l.messages.fetch_add(1, Relaxed);
        frames.push(Bytes::copy_from_slice(&buf[..n]));
    }
}

/// A datagram socket as the receive loop sees it: UDP (whose sources
/// `--allow` filters) or unix.
trait Datagrams: Send + Sync + 'static {
    fn readable(&self) -> impl std::future::Future<Output = std::io::Result<()>> + Send;
    /// One waiting datagram into `buf`: its whole length (which may be
    /// more than `buf` holds), and whether its source may send.
    fn try_take(&self, buf: &mut [u8], limits: &Limits) -> std::io::Result<(usize, bool)>;
}

/// recvfrom(2) with MSG_TRUNC: the datagram's real length even when `buf`
/// is shorter (Linux, for UDP and unix datagrams), so that the bytes of an
/// oversized datagram are counted as sent, not as cut.
fn recv_whole(
    fd: impl std::os::fd::AsFd,
    buf: &mut [u8],
) -> std::io::Result<(usize, socket2::SockAddr)> {
    let sock = socket2::SockRef::from(&fd);
    // SAFETY: `[u8]` and `[MaybeUninit<u8>]` have the same layout, and
    // recvfrom only writes initialised bytes into it.
    let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [std::mem::MaybeUninit<u8>]) };
    sock.recv_from_with_flags(uninit, libc::MSG_TRUNC)
}

impl Datagrams for Arc<UdpSocket> {
    fn readable(&self) -> impl std::future::Future<Output = std::io::Result<()>> + Send {
        UdpSocket::readable(self)
    }
    fn try_take(&self, buf: &mut [u8], limits: &Limits) -> std::io::Result<(usize, bool)> {
        let (n, from) = self.try_io(tokio::io::Interest::READABLE, || recv_whole(&**self, buf))?;
        let ok = from.as_socket().is_none_or(|a| limits.allowed(a.ip()));
        Ok((n, ok))
    }
}

impl Datagrams for UnixDatagram {
    fn readable(&self) -> impl std::future::Future<Output = std::io::Result<()>> + Send {
        UnixDatagram::readable(self)
    }
    fn try_take(&self, buf: &mut [u8], _: &Limits) -> std::io::Result<(usize, bool)> {
        let (n, _) = self.try_io(tokio::io::Interest::READABLE, || recv_whole(self, buf))?;
        Ok((n, true))
    }
}

/// The receive loop of a datagram socket.
async fn datagrams(
    s: impl Datagrams,
    l: Arc<Listener>,
    tx: Sender,
    limits: Limits,
    stop: CancellationToken,
) {
    // A longer datagram is cut to this, but recv_whole says its length.
    let mut buf = vec![0u8; limits.max_frame];
    loop {
        tokio::select! {
            r = s.readable() => if r.is_err() { break },
            _ = stop.cancelled() => break,
        }
        // Read everything that is waiting, then queue it as one batch.
        let mut frames = Vec::with_capacity(BATCH);
        while frames.len() < BATCH {
            match s.try_take(&mut buf, &limits) {
                Ok((n, allowed)) => take_datagram(&buf, n, allowed, &limits, &l, &mut frames),
                Err(_) => break, // WouldBlock: all read; anything else: next wake-up
            }
        }
        if !frames.is_empty() {
            offer(&tx, frames, &l);
        }
    }
}

/// Who holds a TCP listener's connection slots. One source gets at most
/// its share (`--max-connections-per-source`); when every slot is taken, a
/// new connection takes the slot of the oldest connection that has not
/// sent a whole frame yet (a dribbler, not a sender) before it is refused.
struct Slots {
    max: usize,
    per_source: usize,
    next: u64,
    by_source: std::collections::HashMap<std::net::IpAddr, usize>,
    open: std::collections::BTreeMap<u64, Held>,
}

/// One open connection, by its order of arrival.
struct Held {
    ip: std::net::IpAddr,
    /// Set once it has sent a whole frame: then it is never reclaimed.
    framed: Arc<std::sync::atomic::AtomicBool>,
    close: CancellationToken,
}

impl Slots {
    /// A slot for a connection from `ip`: its id, its `framed` flag and the
    /// token that closes it if its slot is reclaimed. Also says whether a
    /// slot was taken from another connection. `None`: refused (its source
    /// has its share, or every slot is held by a connection that sent).
    fn admit(
        &mut self,
        ip: std::net::IpAddr,
        stop: &CancellationToken,
    ) -> Option<(
        u64,
        Arc<std::sync::atomic::AtomicBool>,
        CancellationToken,
        bool,
    )> {
        if self.by_source.get(&ip).copied().unwrap_or(0) >= self.per_source {
            return None;
        }
        let mut reclaimed = false;
        if self.open.len() >= self.max {
            // Oldest first: the one that has dribbled longest.
            let victim = self
                .open
                .iter()
                .find(|(_, h)| !h.framed.load(Relaxed))
                .map(|(&id, _)| id)?;
            if let Some(h) = self.release(victim) {
                h.close.cancel();
            }
            reclaimed = true;
        }
        let id = self.next;
        self.next += 1;
        let framed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let close = stop.child_token();
        *self.by_source.entry(ip).or_default() += 1;
        self.open.insert(
            id,
            Held {
                ip,
                framed: framed.clone(),
                close: close.clone(),
            },
        );
        Some((id, framed, close, reclaimed))
    }

    /// The connection is gone (or its slot was reclaimed): once only.
    fn release(&mut self, id: u64) -> Option<Held> {
        let h = self.open.remove(&id)?;
        if let Some(n) = self.by_source.get_mut(&h.ip) {
            *n -= 1;
            if *n == 0 {
                self.by_source.remove(&h.ip);
            }
        }
        Some(h)
    }
}

async fn tcp_accept(
    s: TcpListener,
    l: Arc<Listener>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    tx: Sender,
    limits: Limits,
    stop: CancellationToken,
) {
    let slots = Arc::new(std::sync::Mutex::new(Slots {
        max: limits.max_connections,
        per_source: limits.max_connections_per_source,
        next: 0,
        by_source: Default::default(),
        open: Default::default(),
    }));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            r = s.accept() => match r {
                Ok(x) => x,
                // EMFILE and the like: wait a little rather than spin.
                Err(_) => { tokio::time::sleep(std::time::Duration::from_millis(20)).await; continue }
            },
            _ = stop.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        if !limits.allowed(peer.ip()) {
            l.denied.fetch_add(1, Relaxed);
            continue; // dropped: closed at once
        }
        let admitted = slots.lock().expect("slots lock").admit(peer.ip(), &stop);
        let Some((id, framed, close, reclaimed)) = admitted else {
            l.connections_refused.fetch_add(1, Relaxed);
            continue;
        };
        if reclaimed {
            l.connections_reclaimed.fetch_add(1, Relaxed);
        }
        l.connections_total.fetch_add(1, Relaxed);
        l.connections_open.fetch_add(1, Relaxed);
        let (l, tx, limits, slots, tls) = (
            l.clone(),
            tx.clone(),
            limits.clone(),
            slots.clone(),
            tls.clone(),
        );
        conns.spawn(async move {
            match tls {
                None => tcp_conn(stream, &l, tx, &limits, close, &framed).await,
                // The handshake is the first frame's business: it gets
                // the same time, and a reclaimed slot or a stop ends it.
                Some(acceptor) => {
                    let shake = tokio::select! {
                        r = tokio::time::timeout(limits.first_frame_timeout, acceptor.accept(stream)) => r.ok().and_then(Result::ok),
                        _ = close.cancelled() => None,
                    };
                    match shake {
                        Some(s) => tcp_conn(s, &l, tx, &limits, close, &framed).await,
                        None => {
                            l.tls_handshakes_failed.fetch_add(1, Relaxed);
                        }
                    }
                }
            }
            l.connections_open.fetch_sub(1, Relaxed);
            slots.lock().expect("slots lock").release(id);
        });
    }
    // Stop: connections finish what they have read (their batches are
    // queued) and close.
    while conns.join_next().await.is_some() {}
}

/// One TCP (or TLS) connection until it closes, goes idle, has its slot
/// reclaimed (`stop`, a child of the shutdown token) or hapwatch stops.
/// `sent` is set at its first whole frame: until then it gets
/// `--first-frame-timeout`, not the idle timeout, and its slot may be
/// reclaimed.
async fn tcp_conn<S: tokio::io::AsyncRead + Unpin>(
    stream: S,
    l: &Arc<Listener>,
    tx: Sender,
    limits: &Limits,
    stop: CancellationToken,
    sent: &std::sync::atomic::AtomicBool,
) {
    let mut framed =
        FramedRead::with_capacity(stream, SyslogDecoder::new(limits.max_frame), 64 * 1024);
    let mut seen = Seen::default();
    loop {
        let wait = if sent.load(Relaxed) {
            limits.idle_timeout
        } else {
            limits.first_frame_timeout
        };
        let first = tokio::select! {
            f = tokio::time::timeout(wait, framed.next()) => match f {
                Ok(Some(Ok(f))) => f,
                Ok(None) => break, // closed: decode_eof counted what was cut
                Ok(Some(Err(_))) => { abandon(&mut framed); break }
                Err(_) => {
                    l.connections_idle_closed.fetch_add(1, Relaxed);
                    abandon(&mut framed);
                    break
                }
            },
            _ = stop.cancelled() => { abandon(&mut framed); break }
        };
        let mut frames = Vec::with_capacity(BATCH);
        if !first.is_empty() {
            frames.push(first);
        }
        // Whatever else is already decoded or readable joins the batch.
        while frames.len() < BATCH {
            match futures_util::FutureExt::now_or_never(framed.next()) {
                Some(Some(Ok(f))) => {
                    if !f.is_empty() {
                        frames.push(f);
                    }
                }
                _ => break,
            }
        }
        let processed = seen.count(framed.decoder(), l);
        if frames.is_empty() {
            l.bytes_to.processed.fetch_add(processed, Relaxed);
            continue;
        }
        sent.store(true, Relaxed);
        let n = frames.len() as u64;
        l.messages.fetch_add(n, Relaxed);
        // Back-pressure: wait for room; this connection is not read meanwhile.
        if tx.send(Batch::new(frames, None).from(l)).await.is_err() {
            l.bytes_to.dropped.fetch_add(processed, Relaxed);
            break;
        }
        l.bytes_to.processed.fetch_add(processed, Relaxed);
    }
    let processed = seen.count(framed.decoder(), l);
    l.bytes_to.processed.fetch_add(processed, Relaxed);
}

/// A connection's decoder counts as already added to its listener's.
#[derive(Default)]
struct Seen {
    frames: super::framing::FrameStats,
    bytes: super::framing::ByteStats,
}

impl Seen {
    /// Adds what the decoder counted since the last call to the listener,
    /// all but the processed bytes, which it returns: they are processed
    /// once their batch is queued, dropped if it cannot be.
    fn count(&mut self, d: &SyslogDecoder, l: &Listener) -> u64 {
        let (f, b) = (d.stats, d.bytes);
        let (was_f, was_b) = (self.frames, self.bytes);
        let add = |c: &AtomicU64, now: u64, was: u64| c.fetch_add(now - was, Relaxed);
        add(&l.oversized, f.oversized, was_f.oversized);
        add(&l.malformed, f.malformed, was_f.malformed);
        add(&l.partial, f.partial, was_f.partial);
        add(&l.bytes_to.oversized, b.oversized, was_b.oversized);
        add(&l.bytes_to.malformed, b.malformed, was_b.malformed);
        add(&l.bytes_to.partial, b.partial, was_b.partial);
        add(&l.bytes, b.total(), was_b.total());
        (self.frames, self.bytes) = (f, b);
        b.processed - was_b.processed
    }
}

/// The connection ends here: a frame begun in the buffer is counted as
/// partial.
fn abandon<S>(framed: &mut FramedRead<S, SyslogDecoder>) {
    let mut rest = std::mem::take(framed.read_buffer_mut());
    framed.decoder_mut().abandon(&mut rest);
}

/// Kernel receive-queue drops of our UDP sockets: the `drops` column of
/// /proc/net/udp{,6}, for the sockets' inodes.
pub fn read_kernel_drops(shared: &Shared) {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let mut inodes = std::collections::HashMap::new();
    for fd in fds.flatten() {
        if let Ok(target) = std::fs::read_link(fd.path()) {
            let t = target.to_string_lossy();
            if let Some(ino) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                inodes.insert(ino.to_string(), ());
            }
        }
    }
    let udp: Vec<&Arc<Listener>> = shared
        .listeners
        .iter()
        .filter(|l| l.name.starts_with("udp://"))
        .collect();
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 13 || !inodes.contains_key(cols[9]) {
                continue;
            }
            // local_address is HEXIP:HEXPORT; match our listener by port.
            let port = cols[1]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            let drops: u64 = cols[12].parse().unwrap_or(0);
            for l in &udp {
                if port.is_some_and(|p| l.name.ends_with(&format!(":{p}"))) {
                    l.kernel_drops.store(drops, Relaxed);
                }
            }
        }
    }
}

//! A fault-injecting TCP proxy for the edge agent's acceptance tests: it sits between a client (the edge)
//! and a server (the cloud) and delays, stalls, cuts or resets the link, on command ([`FaultProxy::set`])
//! or on a seeded random schedule ([`FaultProxy::chaos`]).
//!
//! Design:
//! - One accept task, then per connection one task per direction: "up" (client -> upstream) and "down"
//!   (upstream -> client).
//! - A `watch` channel carries the current [`Fault`] to every task, so a switch applies at once to open
//!   connections as well as new ones. It also carries a count of the cuts and resets so far: a connection
//!   that was open during a cut or reset is torn down even if the fault was switched off again before its
//!   tasks looked.
//! - Each direction holds at most [`HELD_BYTES_MAX`] bytes that it has read but not yet written (chunks of
//!   up to [`CHUNK_BYTES`], each stamped with its arrival time). When full it stops reading, so a stall
//!   or a delay pushes back on the sender through TCP flow control instead of buffering without bound.
//!   Held chunks are written in order and only once: nothing is lost or duplicated by a delay or stall.
//! - A failed read or write on either side ends both directions of that connection (a per-connection
//!   token); a clean end of stream (FIN) is passed on as a half-close.
//! - Dropping the [`FaultProxy`] cancels one token that ends the accept task, every connection task and
//!   a running chaos schedule.

use std::{
    collections::VecDeque,
    io,
    net::SocketAddr,
    ops::Range,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpListener, TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::watch,
    time::Instant,
};
use tokio_util::sync::{CancellationToken, DropGuard};

/// The most bytes one direction of one connection holds (read, not yet written) before it stops reading.
pub const HELD_BYTES_MAX: usize = 1 << 20;

/// The largest chunk one read takes from a socket.
pub const CHUNK_BYTES: usize = 16 << 10;

/// The one-way latencies a chaos schedule picks from for [`Fault::Delay`].
pub const CHAOS_DELAY: Range<Duration> = Duration::from_millis(20)..Duration::from_millis(300);

/// What the proxy does to the link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Forward normally.
    None,
    /// Add this one-way latency to every chunk in both directions.
    Delay(Duration),
    /// Keep connections open but forward nothing: bytes are held (up to [`HELD_BYTES_MAX`] per
    /// direction, then the sender is pushed back) and released in order when the stall ends, like a 5G
    /// stall.
    Stall,
    /// Close every open connection cleanly (FIN, on both the client and the upstream side) and refuse new
    /// ones (accept, then close at once): an outage.
    Cut,
    /// Abort every open connection with a TCP RST (both sides) and refuse new ones the same way.
    Reset,
}

impl Fault {
    /// Whether this fault tears connections down.
    fn kills(self) -> bool {
        matches!(self, Fault::Cut | Fault::Reset)
    }
}

/// Counters of a proxy since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections accepted, refused ones included.
    pub accepted: u64,
    /// Connections accepted and closed at once because the link was cut or reset.
    pub refused: u64,
    /// Open connections closed by [`Fault::Cut`].
    pub cut: u64,
    /// Open connections aborted by [`Fault::Reset`].
    pub reset: u64,
    /// Bytes forwarded from clients to the upstream.
    pub bytes_up: u64,
    /// Bytes forwarded from the upstream to clients.
    pub bytes_down: u64,
}

/// What the `watch` channel carries to the connection tasks.
#[derive(Debug, Clone, Copy)]
struct Mode {
    /// The fault now.
    fault: Fault,
    /// How many times the fault was switched to [`Fault::Cut`] or [`Fault::Reset`].
    kills: u64,
    /// The latest of those (what a connection that missed it must suffer).
    last_kill: Fault,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    refused: AtomicU64,
    cut: AtomicU64,
    reset: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

/// The shared switch: the watch sender plus a record of every switch.
#[derive(Debug)]
struct Switch {
    mode: watch::Sender<Mode>,
    history: Mutex<Vec<Fault>>,
}

impl Switch {
    fn set(&self, fault: Fault) {
        self.history.lock().unwrap_or_else(PoisonError::into_inner).push(fault);
        self.mode.send_modify(|m| {
            m.fault = fault;
            if fault.kills() {
                m.kills += 1;
                m.last_kill = fault;
            }
        });
    }
}

/// A TCP proxy on `127.0.0.1:0` forwarding to an upstream address, injecting faults.
#[derive(Debug)]
pub struct FaultProxy {
    /// Where it listens: point clients here instead of at the upstream.
    pub addr: SocketAddr,
    /// Where it forwards to.
    pub upstream: SocketAddr,
    switch: Arc<Switch>,
    counters: Arc<Counters>,
    shutdown: CancellationToken,
    _cancel_on_drop: DropGuard,
}

impl FaultProxy {
    /// Starts a healthy ([`Fault::None`]) proxy on `127.0.0.1:0` forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (mode, _) = watch::channel(Mode { fault: Fault::None, kills: 0, last_kill: Fault::Cut });
        let switch = Arc::new(Switch { mode, history: Mutex::new(Vec::new()) });
        let counters = Arc::new(Counters::default());
        let shutdown = CancellationToken::new();
        tokio::spawn(accept_loop(listener, upstream, switch.mode.subscribe(), counters.clone(), shutdown.clone()));
        Ok(FaultProxy { addr, upstream, switch, counters, _cancel_on_drop: shutdown.clone().drop_guard(), shutdown })
    }

    /// Switches the fault mode now (applies to open and new connections).
    pub fn set(&self, fault: Fault) {
        eprintln!("fault proxy {}: {fault:?}", self.addr);
        self.switch.set(fault);
    }

    /// The fault mode now.
    pub fn fault(&self) -> Fault {
        self.switch.mode.borrow().fault
    }

    /// Every fault switched to so far, by [`FaultProxy::set`] or by a chaos schedule, in order.
    pub fn switches(&self) -> Vec<Fault> {
        self.switch.history.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Runs a random fault schedule from `seed` in the background until `stop_after` elapses or the proxy
    /// is dropped: the steps of [`FaultProxy::schedule`] (healthy periods alternating with a delay, stall,
    /// cut or reset), each logged to stderr so that a failing test's output shows the schedule. When
    /// `stop_after` elapses the link is switched back to [`Fault::None`].
    pub fn chaos(&self, seed: u64, healthy: Range<Duration>, faulty: Range<Duration>, stop_after: Duration) {
        let switch = self.switch.clone();
        let shutdown = self.shutdown.clone();
        let addr = self.addr;
        eprintln!("fault proxy {addr}: chaos seed {seed}, healthy {healthy:?}, faulty {faulty:?}, for {stop_after:?}");
        tokio::spawn(async move {
            let deadline = Instant::now() + stop_after;
            for (i, (fault, duration)) in ChaosSteps::new(seed, healthy, faulty).enumerate() {
                eprintln!("fault proxy {addr}: chaos seed {seed} step {i}: {fault:?} for {duration:?}");
                switch.set(fault);
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep_until(deadline.min(Instant::now() + duration)) => {}
                }
                if Instant::now() >= deadline {
                    break;
                }
            }
            eprintln!("fault proxy {addr}: chaos seed {seed} over: None");
            switch.set(Fault::None);
        });
    }

    /// The first `n` steps of the chaos schedule for `seed`, a pure function of its arguments: healthy
    /// periods ([`Fault::None`], a duration in `healthy`) alternating with faults (delay, stall, cut or
    /// reset, equally likely, a duration in `faulty`; a delay's latency in [`CHAOS_DELAY`]). Starts
    /// healthy. An empty range means its start.
    pub fn schedule(seed: u64, healthy: Range<Duration>, faulty: Range<Duration>, n: usize) -> Vec<(Fault, Duration)> {
        ChaosSteps::new(seed, healthy, faulty).take(n).collect()
    }

    /// Counters: connections accepted, connections cut or reset, bytes forwarded each way.
    pub fn stats(&self) -> ProxyStats {
        let c = &self.counters;
        ProxyStats {
            accepted: c.accepted.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            cut: c.cut.load(Ordering::Relaxed),
            reset: c.reset.load(Ordering::Relaxed),
            bytes_up: c.bytes_up.load(Ordering::Relaxed),
            bytes_down: c.bytes_down.load(Ordering::Relaxed),
        }
    }
}

/// The endless chaos schedule: a splitmix64 stream (stable across crate versions, unlike `SmallRng`).
#[derive(Debug)]
struct ChaosSteps {
    state: u64,
    healthy: Range<Duration>,
    faulty: Range<Duration>,
    next_is_fault: bool,
}

impl ChaosSteps {
    fn new(seed: u64, healthy: Range<Duration>, faulty: Range<Duration>) -> Self {
        ChaosSteps { state: seed, healthy, faulty, next_is_fault: false }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn duration_in(&mut self, range: &Range<Duration>) -> Duration {
        let span = range.end.saturating_sub(range.start).as_nanos().min(u128::from(u64::MAX)) as u64;
        if span == 0 { range.start } else { range.start + Duration::from_nanos(self.next_u64() % span) }
    }
}

impl Iterator for ChaosSteps {
    type Item = (Fault, Duration);

    fn next(&mut self) -> Option<(Fault, Duration)> {
        let is_fault = self.next_is_fault;
        self.next_is_fault = !is_fault;
        if !is_fault {
            let healthy = self.healthy.clone();
            return Some((Fault::None, self.duration_in(&healthy)));
        }
        let fault = match self.next_u64() % 4 {
            0 => Fault::Delay(self.duration_in(&CHAOS_DELAY)),
            1 => Fault::Stall,
            2 => Fault::Cut,
            _ => Fault::Reset,
        };
        let faulty = self.faulty.clone();
        Some((fault, self.duration_in(&faulty)))
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    mode: watch::Receiver<Mode>,
    counters: Arc<Counters>,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            r = listener.accept() => r,
        };
        let client = match accepted {
            Ok((client, _)) => client,
            Err(e) => {
                // Out of file descriptors and the like: back off rather than spin.
                eprintln!("fault proxy {upstream}: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        counters.accepted.fetch_add(1, Ordering::Relaxed);
        let now = *mode.borrow();
        if now.fault.kills() {
            counters.refused.fetch_add(1, Ordering::Relaxed);
            if now.fault == Fault::Reset {
                let _ = client.set_zero_linger();
            }
            drop(client);
            continue;
        }
        let conn = Arc::new(Connection {
            counters: counters.clone(),
            token: shutdown.child_token(),
            kills_at_start: now.kills,
            torn_down: AtomicBool::new(false),
        });
        tokio::spawn(connect_and_forward(client, upstream, mode.clone(), conn));
    }
}

/// What both directions of one connection share.
#[derive(Debug)]
struct Connection {
    counters: Arc<Counters>,
    /// Cancelled when the proxy is dropped or either direction breaks.
    token: CancellationToken,
    /// `Mode::kills` when the connection was accepted: any later cut or reset tears it down.
    kills_at_start: u64,
    /// Set by the first direction to be torn down by a fault (so the connection is counted once).
    torn_down: AtomicBool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Direction {
    /// Client to upstream.
    Up,
    /// Upstream to client.
    Down,
}

/// How one direction ended.
#[derive(Debug)]
enum End {
    /// The reader sent FIN and everything held was written; the FIN was passed on.
    Eof,
    /// A read or write failed (or the peer would take no more bytes).
    Broken,
    /// A cut or reset.
    Fault(Fault),
    /// The proxy was dropped or the other direction broke.
    Cancelled,
}

async fn connect_and_forward(
    client: TcpStream,
    upstream: SocketAddr,
    mode: watch::Receiver<Mode>,
    conn: Arc<Connection>,
) {
    let connected = tokio::select! {
        () = conn.token.cancelled() => return,
        r = TcpStream::connect(upstream) => r,
    };
    let upstream = match connected {
        Ok(s) => s,
        Err(e) => {
            // The client sees its connection close, as it would if the server were down.
            eprintln!("fault proxy: cannot connect to upstream {upstream}: {e}");
            return;
        }
    };
    // Small writes (gRPC acks) should not wait for Nagle: the proxy adds latency only when told to.
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    tokio::spawn(forward(Direction::Up, client_read, upstream_write, mode.clone(), conn.clone()));
    tokio::spawn(forward(Direction::Down, upstream_read, client_write, mode, conn));
}

/// One direction of one connection, until it ends; then closes its halves the way the end asks.
async fn forward(
    direction: Direction,
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mode: watch::Receiver<Mode>,
    conn: Arc<Connection>,
) {
    match pump(direction, &mut from, &mut to, mode, &conn).await {
        End::Eof | End::Cancelled => {}
        End::Broken => conn.token.cancel(),
        End::Fault(fault) => {
            if !conn.torn_down.swap(true, Ordering::Relaxed) {
                let counter = if fault == Fault::Reset { &conn.counters.reset } else { &conn.counters.cut };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            if fault == Fault::Reset {
                // Both sockets close with SO_LINGER 0 once their last half is dropped: an RST, no FIN.
                // The other direction does the same with its halves.
                let _ = from.as_ref().set_zero_linger();
                let _ = to.as_ref().set_zero_linger();
                to.forget();
            }
            // On a cut, dropping the write half (here) sends FIN.
        }
    }
}

/// What woke a pump.
enum Event {
    Cancelled,
    ModeChanged,
    Read(io::Result<usize>),
    Wrote(io::Result<usize>),
}

async fn pump(
    direction: Direction,
    from: &mut OwnedReadHalf,
    to: &mut OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
    conn: &Connection,
) -> End {
    let forwarded = match direction {
        Direction::Up => &conn.counters.bytes_up,
        Direction::Down => &conn.counters.bytes_down,
    };
    // Chunks read and not yet (fully) written, with their arrival times; `written` bytes of the first
    // are already out.
    let mut held: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut held_bytes = 0usize;
    let mut written = 0usize;
    let mut eof = false;
    let mut buf = vec![0u8; CHUNK_BYTES];
    loop {
        let now = *mode.borrow_and_update();
        if now.kills != conn.kills_at_start {
            return End::Fault(if now.fault.kills() { now.fault } else { now.last_kill });
        }
        if eof && held.is_empty() {
            let _ = to.shutdown().await;
            return End::Eof;
        }
        let release_at = match now.fault {
            Fault::None => held.front().map(|(arrived, _)| *arrived),
            Fault::Delay(latency) => held.front().map(|(arrived, _)| *arrived + latency),
            Fault::Stall | Fault::Cut | Fault::Reset => None,
        };
        let head = held.front().map(|(_, bytes)| &bytes[written..]);
        let may_read = !eof && held_bytes < HELD_BYTES_MAX;
        let event = tokio::select! {
            biased;
            () = conn.token.cancelled() => Event::Cancelled,
            r = mode.changed() => if r.is_ok() { Event::ModeChanged } else { Event::Cancelled },
            r = release(to, release_at, head), if release_at.is_some() => Event::Wrote(r),
            r = from.read(&mut buf), if may_read => Event::Read(r),
        };
        match event {
            Event::Cancelled => return End::Cancelled,
            Event::ModeChanged => {}
            Event::Read(Ok(0)) => eof = true,
            Event::Read(Ok(n)) => {
                held.push_back((Instant::now(), buf[..n].to_vec()));
                held_bytes += n;
            }
            Event::Read(Err(_)) | Event::Wrote(Err(_)) | Event::Wrote(Ok(0)) => return End::Broken,
            Event::Wrote(Ok(n)) => {
                forwarded.fetch_add(n as u64, Ordering::Relaxed);
                written += n;
                if held.front().is_some_and(|(_, bytes)| written == bytes.len()) {
                    if let Some((_, bytes)) = held.pop_front() {
                        held_bytes -= bytes.len();
                    }
                    written = 0;
                }
            }
        }
    }
}

/// Waits until `at`, then writes what it can of `bytes` (cancel-safe: one `write`, not `write_all`).
async fn release(to: &mut OwnedWriteHalf, at: Option<Instant>, bytes: Option<&[u8]>) -> io::Result<usize> {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
    to.write(bytes.unwrap_or_default()).await
}

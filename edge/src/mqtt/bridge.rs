//! The bridge task: one MQTT connection (rumqttc's event loop, polled by this task alone), the mapper,
//! and the channel to the agent.

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, Outgoing, Packet, Publish, QoS, StateError,
    SubscribeFilter, SubscribeReasonCode,
};
use tokio::{sync::oneshot, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, warn};
use twin_model::now_unix_ms;

use super::{config::MqttConfig, mapper::Mapper, mapper::Unmappable};
use crate::backoff::Backoff;
use crate::source::{Counter, ReadingSender, Readings};

/// Room for acks and subscriptions queued to the event loop. This task is the only one that drains the
/// queue (by polling) and it queues at most one ack per message polled, so this is never reached in
/// practice; were it reached, the ack would be missing and the broker would deliver the message again.
const REQUEST_CAPACITY: usize = 1024;

/// How many unmappable messages and fields are logged per [`UNMAPPABLE_LOG_WINDOW`]; the rest are only
/// counted (and the count of those left out is logged with the next one), so a device sending garbage
/// many times a second cannot flood the log.
const UNMAPPABLE_LOGS_PER_WINDOW: u32 = 10;
/// See [`UNMAPPABLE_LOGS_PER_WINDOW`].
const UNMAPPABLE_LOG_WINDOW: Duration = Duration::from_secs(60);
/// While the broker stays unreachable, one warning per this period.
const CONNECTION_LOG_WINDOW: Duration = Duration::from_secs(30);
/// How long a shutdown waits for the DISCONNECT to be written.
const DISCONNECT_WAIT: Duration = Duration::from_secs(2);

/// What the bridge has done, for metrics and tests. Counters only grow.
#[derive(Debug, Default)]
pub struct MqttStats {
    /// Messages received on the subscribed topics.
    pub messages: Counter,
    /// Readings handed to the agent.
    pub readings: Counter,
    /// Messages that gave no reading: an [`Unmappable`] message, one whose mapped fields were all bad, or
    /// one too large for the connection to read.
    pub unmappable_messages: Counter,
    /// Attribute fields that were present but could not be mapped (each counted, also when the rest of
    /// the message was mapped).
    pub bad_fields: Counter,
    /// Connections made: the first and every reconnection.
    pub connects: Counter,
    /// Subscriptions the broker acknowledged: one per connection that had to (re)subscribe.
    pub subscriptions: Counter,
    /// Failed connection attempts and lost connections.
    pub connection_errors: Counter,
    connected: AtomicBool,
}

impl MqttStats {
    /// Whether the bridge is connected to the broker now.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
}

/// The MQTT source of the edge agent.
#[derive(Debug)]
pub struct MqttBridge;

impl MqttBridge {
    /// Starts the bridge: it connects to the broker, subscribes to every mapping's topic filter (again
    /// after each reconnection that lost the session), maps each message and sends its readings on `out`.
    /// When `out` is full it waits, and with QoS 1 a message is acknowledged only once the agent confirms
    /// its readings are stored ([`Readings::on_stored`]), so the broker holds back what the agent cannot
    /// take yet and redelivers what a crashed agent never stored. When the broker is unreachable
    /// or lost it retries with backoff, forever. It stops when `shutdown` is cancelled (disconnecting
    /// cleanly) or when the agent drops the receiving end of `out`.
    ///
    /// Call [`MqttConfig::mapper`] first: it validates `config` and builds `mapper`. Settings it would
    /// refuse are clamped here rather than panicking.
    pub fn spawn(
        config: MqttConfig,
        mapper: Mapper,
        out: ReadingSender,
        shutdown: CancellationToken,
    ) -> (JoinHandle<()>, Arc<MqttStats>) {
        let stats = Arc::new(MqttStats::default());
        let span = info_span!("mqtt_bridge", broker = %format_args!("{}:{}", config.host, config.port));
        let task = Bridge::new(config, mapper, out, shutdown, stats.clone());
        (tokio::spawn(task.run().instrument(span)), stats)
    }
}

struct Bridge {
    config: MqttConfig,
    mapper: Mapper,
    out: ReadingSender,
    shutdown: CancellationToken,
    stats: Arc<MqttStats>,
    client: AsyncClient,
    events: EventLoop,
    filters: Vec<SubscribeFilter>,
    backoff: Backoff,
    unmappable_log: LogBudget,
    connection_log: LogBudget,
    /// Set after a connection is made that has no subscriptions yet; cleared once they are queued.
    subscribe_due: bool,
    /// Set while one connection runs with a clean session to shed a message it cannot read.
    session_forced_clean: bool,
    /// Messages whose readings are with the agent, oldest first, each with the agent's "stored" signal.
    unacked: VecDeque<(Publish, oneshot::Receiver<()>)>,
}

/// Resolves when the oldest unacknowledged message's readings are stored (true) or the agent dropped them
/// (false: do not acknowledge; the broker delivers it again); never while there is none.
async fn front_stored(unacked: &mut VecDeque<(Publish, oneshot::Receiver<()>)>) -> bool {
    match unacked.front_mut() {
        Some((_, stored)) => stored.await.is_ok(),
        None => std::future::pending().await,
    }
}

/// What became of one message.
enum Handled {
    /// Nothing to store (unmappable): acknowledge it now.
    Done,
    /// Its readings are with the agent: acknowledge it once they are durable in the outbox.
    Sent(oneshot::Receiver<()>),
    /// Shutdown came while waiting for room on the channel: leave it unacknowledged.
    Shutdown,
    /// The agent is gone.
    ChannelClosed,
}

impl Bridge {
    fn new(
        config: MqttConfig,
        mapper: Mapper,
        out: ReadingSender,
        shutdown: CancellationToken,
        stats: Arc<MqttStats>,
    ) -> Bridge {
        let (client, events) = AsyncClient::new(options(&config, &mapper), REQUEST_CAPACITY);
        let qos = if config.qos == 0 { QoS::AtMostOnce } else { QoS::AtLeastOnce };
        let filters = mapper.filters().map(|f| SubscribeFilter::new(f.to_owned(), qos)).collect();
        let backoff = Backoff::new(config.reconnect_min, config.reconnect_max, &config.client_id);
        Bridge {
            config,
            mapper,
            out,
            shutdown,
            stats,
            client,
            events,
            filters,
            backoff,
            unmappable_log: LogBudget::new(UNMAPPABLE_LOGS_PER_WINDOW, UNMAPPABLE_LOG_WINDOW),
            connection_log: LogBudget::new(1, CONNECTION_LOG_WINDOW),
            subscribe_due: false,
            session_forced_clean: false,
            unacked: VecDeque::new(),
        }
    }

    async fn run(mut self) {
        info!(filters = self.filters.len(), "mqtt bridge starting");
        loop {
            if self.subscribe_due {
                // Queued, not sent: the event loop sends it on a later poll.
                match self.client.try_subscribe_many(self.filters.clone()) {
                    Ok(()) => self.subscribe_due = false,
                    Err(e) => {
                        if let Some(suppressed) = self.connection_log.admit(Instant::now()) {
                            warn!(suppressed, "cannot queue the subscription yet, retrying: {e}");
                        }
                    }
                }
            }
            let event = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => break,
                stored = front_stored(&mut self.unacked) => {
                    // In order: QoS 1 messages are confirmed to the broker once durable on the box.
                    if let Some((publish, _)) = self.unacked.pop_front()
                        && stored
                    {
                        self.ack(&publish);
                    }
                    continue;
                }
                event = self.events.poll() => event,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => self.on_connected(ack.session_present),
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    self.stats.subscriptions.add(1);
                    for (filter, code) in self.filters.iter().zip(&ack.return_codes) {
                        if *code == SubscribeReasonCode::Failure {
                            let filter = &filter.path;
                            warn!(%filter, "the broker refused the subscription: nothing on it will be mapped");
                        }
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => match self.on_publish(&publish).await {
                    Handled::Done => self.ack(&publish),
                    Handled::Sent(stored) => self.unacked.push_back((publish, stored)),
                    Handled::Shutdown => break,
                    Handled::ChannelClosed => {
                        error!("the agent closed the reading channel; the mqtt bridge stops");
                        break;
                    }
                },
                Ok(_) => {}
                Err(e) => {
                    if !self.on_connection_error(e).await {
                        break;
                    }
                }
            }
        }
        self.disconnect().await;
        info!("mqtt bridge stopped");
    }

    fn on_connected(&mut self, session_present: bool) {
        self.stats.connected.store(true, Ordering::Relaxed);
        self.stats.connects.add(1);
        self.backoff.reset();
        self.connection_log.reset();
        if self.session_forced_clean {
            // The unreadable message is gone with the old session: persistent sessions again from the next
            // connection on.
            self.events.mqtt_options.set_clean_session(self.config.clean_session || self.config.client_id.is_empty());
            self.session_forced_clean = false;
        }
        // A resumed session keeps its subscriptions (and the broker delivers what it queued meanwhile).
        self.subscribe_due = !session_present || self.config.clean_session;
        info!(
            connection = self.stats.connects.get(),
            session_present,
            subscribing = self.subscribe_due,
            "connected to the mqtt broker"
        );
    }

    async fn on_publish(&mut self, publish: &Publish) -> Handled {
        self.stats.messages.add(1);
        let arrival = now_unix_ms();
        let mapped = match self.mapper.map(&publish.topic, &publish.payload, arrival) {
            Ok(mapped) => mapped,
            Err(e) => {
                self.stats.unmappable_messages.add(1);
                log_unmappable(&mut self.unmappable_log, "message", &e);
                return Handled::Done;
            }
        };
        self.stats.bad_fields.add(mapped.bad_fields.len() as u64);
        for e in &mapped.bad_fields {
            log_unmappable(&mut self.unmappable_log, "field", e);
        }
        if mapped.readings.is_empty() {
            self.stats.unmappable_messages.add(1);
            return Handled::Done;
        }
        let n = mapped.readings.len() as u64;
        let (on_stored, stored) = oneshot::channel();
        let group = Readings { readings: mapped.readings, on_stored: Some(on_stored) };
        tokio::select! {
            biased;
            () = self.shutdown.cancelled() => return Handled::Shutdown,
            sent = self.out.send(group) => if sent.is_err() { return Handled::ChannelClosed },
        }
        self.stats.readings.add(n);
        Handled::Sent(stored)
    }

    fn ack(&self, publish: &Publish) {
        if let Err(e) = self.client.try_ack(publish) {
            warn!("could not queue the ack of a message (the broker will deliver it again): {e}");
        }
    }

    /// Logs the error, waits the backoff and says whether to go on (false: shutdown came meanwhile).
    async fn on_connection_error(&mut self, e: ConnectionError) -> bool {
        let was_connected = self.stats.connected.swap(false, Ordering::Relaxed);
        self.stats.connection_errors.add(1);
        if let ConnectionError::MqttState(StateError::Deserialization(rumqttc::Error::PayloadSizeLimitExceeded(len))) =
            &e
        {
            self.stats.unmappable_messages.add(1);
            // In a persistent session the broker would deliver the message again on every reconnection: one
            // clean connection sheds it. Messages sent while that connection lasts are not kept for us.
            let shed = !self.events.mqtt_options.clean_session();
            if shed {
                self.events.mqtt_options.set_clean_session(true);
                self.session_forced_clean = true;
            }
            warn!(
                len,
                limit = self.events.mqtt_options.max_packet_size(),
                reconnect_with_clean_session = shed,
                "a message too large to read arrived: set the broker's max_packet_size to match max_payload_bytes"
            );
        } else if let Some(suppressed) = self.connection_log.admit(Instant::now()) {
            if was_connected {
                warn!(suppressed, "lost the mqtt broker, reconnecting: {e}");
            } else {
                warn!(suppressed, attempts = self.stats.connection_errors.get(), "cannot reach the mqtt broker: {e}");
            }
        } else {
            debug!("mqtt connection error: {e}");
        }
        let delay = self.backoff.next_delay();
        tokio::select! {
            biased;
            () = self.shutdown.cancelled() => false,
            () = tokio::time::sleep(delay) => true,
        }
    }

    /// Sends DISCONNECT so the broker knows the bridge left on purpose (no last will, a tidy log). What
    /// arrives meanwhile stays unacknowledged, so a persistent session delivers it again next time.
    async fn disconnect(&mut self) {
        if !self.stats.connected.swap(false, Ordering::Relaxed) {
            return;
        }
        if self.client.try_disconnect().is_err() {
            return;
        }
        let events = &mut self.events;
        let sent = tokio::time::timeout(DISCONNECT_WAIT, async {
            loop {
                match events.poll().await {
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => return true,
                    Ok(_) => {}
                    Err(_) => return false,
                }
            }
        })
        .await;
        if !matches!(sent, Ok(true)) {
            debug!("the disconnect could not be sent; the connection is dropped instead");
        }
    }
}

fn options(config: &MqttConfig, mapper: &Mapper) -> MqttOptions {
    let mut o = MqttOptions::new(config.client_id.clone(), config.host.clone(), config.port);
    // rumqttc panics on keep-alives it cannot send; validate() refuses them, this keeps spawn panic-free.
    let keep_alive = match config.keep_alive {
        d if d.is_zero() => d,
        d => d.clamp(Duration::from_secs(1), super::config::MAX_KEEP_ALIVE),
    };
    o.set_keep_alive(keep_alive);
    o.set_clean_session(config.clean_session || config.client_id.is_empty());
    o.set_manual_acks(true);
    // A packet over the incoming limit breaks the connection, so the limit leaves room for the longest
    // topic: payloads between max_payload_bytes and this are read and counted as too large instead.
    let payload_limit = config.max_payload_bytes.max(mapper.max_payload_bytes());
    // Outgoing: acks, pings and the one SUBSCRIBE of every filter.
    let subscribe_len = mapper.filters().map(|f| f.len() + 3).sum::<usize>() + 16;
    o.set_max_packet_size(payload_limit.saturating_add(u16::MAX as usize + 8), subscribe_len.max(1 << 16));
    if let Some(user) = &config.username {
        o.set_credentials(user.clone(), config.password.clone().unwrap_or_default());
    }
    o
}

fn log_unmappable(budget: &mut LogBudget, what: &str, e: &Unmappable) {
    if let Some(suppressed) = budget.admit(Instant::now()) {
        warn!(code = e.code(), suppressed, "unmappable mqtt {what}: {e}");
    }
}

/// At most `per_window` events logged per `window`; the rest are counted, and the count is handed to
/// the next event logged.
#[derive(Debug)]
pub(crate) struct LogBudget {
    per_window: u32,
    window: Duration,
    started: Option<Instant>,
    used: u32,
    suppressed: u64,
}

impl LogBudget {
    pub(crate) fn new(per_window: u32, window: Duration) -> Self {
        LogBudget { per_window, window, started: None, used: 0, suppressed: 0 }
    }

    /// `Some(n)`: log this event, after `n` that were not; `None`: do not.
    pub(crate) fn admit(&mut self, now: Instant) -> Option<u64> {
        if self.started.is_none_or(|s| now.saturating_duration_since(s) >= self.window) {
            self.started = Some(now);
            self.used = 0;
        }
        if self.used < self.per_window {
            self.used += 1;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }

    /// Starts a fresh window, so the next event is logged.
    pub(crate) fn reset(&mut self) {
        self.started = None;
    }
}

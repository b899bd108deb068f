//! `IngestService`: the bidirectional stream edges write through. See `proto/twin/v1/ingest.proto` for
//! the protocol.
//!
//! Each stream is a session task that resolves symbols, converts batches, submits them to the store in
//! arrival order (several may be in flight) and sends one ack per batch, in order, once it is durable.

use std::{pin::Pin, sync::Arc};

use futures::{StreamExt, stream::FuturesOrdered};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;
use twin_model::{AttrName, EdgeId, EntityId, EntityStatic, Value};
use twin_proto::pb::{self, RejectCode, ingest_request, ingest_response, update};
use twin_store::{AttributeUpdate, Store, Target, WriteBatch, WriteOutcome};

use crate::{config::Limits, status};

/// The most symbols one stream may define.
pub const MAX_SYMBOLS: usize = 1 << 20;

/// The ingest service.
#[derive(Debug, Clone)]
pub struct IngestSvc {
    pub(crate) store: Store,
    pub(crate) limits: Limits,
    pub(crate) shutdown: CancellationToken,
}

type AckStream = Pin<Box<dyn futures::Stream<Item = Result<pb::IngestResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::ingest_service_server::IngestService for IngestSvc {
    type IngestStream = AckStream;

    async fn ingest(&self, request: Request<Streaming<pb::IngestRequest>>) -> Result<Response<AckStream>, Status> {
        let span = tracing::info_span!("ingest", edge = tracing::field::Empty);
        twin_telemetry::set_parent_from_metadata(&span, request.metadata());
        let deadline = crate::request::deadline(request.metadata())?;
        let mut inbound = request.into_inner();
        let hello = match inbound.message().await? {
            Some(pb::IngestRequest { message: Some(ingest_request::Message::Hello(h)) }) => h,
            Some(_) => return Err(Status::invalid_argument("the first message of an ingest stream must be hello")),
            None => return Err(Status::invalid_argument("the ingest stream ended before hello")),
        };
        if hello.protocol_version > 1 {
            return Err(Status::failed_precondition(format!(
                "protocol version {} is not supported; this server speaks 1",
                hello.protocol_version
            )));
        }
        let edge = EdgeId::new(&hello.edge_id).map_err(|e| status::from_id("hello.edge_id", e))?;
        span.record("edge", edge.as_str());
        let (tx, rx) = mpsc::channel(self.limits.max_in_flight_batches.max(4));
        let progress = self.store.edge_progress(&edge);
        let welcome = pb::Welcome {
            last_applied_seq: progress.seq,
            updates_delivered: progress.updates,
            max_message_bytes: self.limits.max_message_bytes as u64,
            max_batch_updates: self.limits.max_batch_updates,
            revision: self.store.revision(),
        };
        tx.send(Ok(response(ingest_response::Message::Welcome(welcome))))
            .await
            .map_err(|_| Status::cancelled("client went away"))?;
        let session = Session { store: self.store.clone(), limits: self.limits, symbols: Symbols::default(), edge };
        let shutdown = self.shutdown.clone();
        tokio::spawn(session.run(inbound, tx, deadline, shutdown).instrument(span));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

fn response(m: ingest_response::Message) -> pb::IngestResponse {
    pb::IngestResponse { message: Some(m) }
}

/// A batch converted for the store, with what conversion already rejected.
struct Converted {
    seq: u64,
    write: WriteBatch,
    /// Wire index of each update in `write.updates`.
    update_index: Vec<u32>,
    /// Wire index of each upsert in `write.upserts`.
    upsert_index: Vec<u32>,
    rejected: Vec<pb::Rejection>,
}

struct Session {
    store: Store,
    limits: Limits,
    symbols: Symbols,
    edge: EdgeId,
}

/// The symbols a stream defined, and the ids validated from them: each symbol is validated once per stream,
/// not once per batch (a batch rarely names an entity twice, so a per-batch cache validated nearly every
/// update's entity id again).
#[derive(Default)]
struct Symbols {
    names: foldhash::HashMap<u32, Arc<str>>,
    entities: foldhash::HashMap<u32, EntityId>,
    attributes: foldhash::HashMap<u32, AttrName>,
}

impl Symbols {
    fn len(&self) -> usize {
        self.names.len()
    }

    /// Defines (or redefines) a symbol; a redefinition drops what was validated from the former name.
    fn define(&mut self, id: u32, name: String) {
        self.entities.remove(&id);
        self.attributes.remove(&id);
        self.names.insert(id, Arc::from(name));
    }

    fn resolve(&self, symbol: u32) -> Option<&str> {
        self.names.get(&symbol).map(|s| &**s)
    }
}

type Outbound = mpsc::Sender<Result<pb::IngestResponse, Status>>;

impl Session {
    async fn run(
        mut self,
        mut inbound: Streaming<pb::IngestRequest>,
        tx: Outbound,
        deadline: Option<tokio::time::Instant>,
        shutdown: CancellationToken,
    ) {
        let mut in_flight = FuturesOrdered::new();
        let mut reading = true;
        let end: Option<Status> = loop {
            let can_read = reading && in_flight.len() < self.limits.max_in_flight_batches;
            tokio::select! {
                // Acks first: they free room for more batches.
                biased;
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    let ack = match done {
                        Ok(ack) => ack,
                        Err(status) => break Some(status),
                    };
                    if tx.send(Ok(response(ingest_response::Message::Ack(ack)))).await.is_err() {
                        break None;
                    }
                }
                () = crate::request::until(deadline), if reading => {
                    break Some(Status::deadline_exceeded("the client's deadline passed; reconnect and resume"));
                }
                _ = shutdown.cancelled(), if reading => {
                    // Stop taking batches; acks for those in flight still go out.
                    reading = false;
                }
                msg = inbound.message(), if can_read => match msg {
                    Ok(Some(pb::IngestRequest { message: Some(ingest_request::Message::Batch(b)) })) => {
                        match self.submit(b).await {
                            Ok(fut) => in_flight.push_back(fut),
                            Err(status) => break Some(status),
                        }
                    }
                    Ok(Some(pb::IngestRequest { message: Some(ingest_request::Message::Hello(_)) })) => {
                        break Some(Status::invalid_argument("hello may only be sent once, first"));
                    }
                    Ok(Some(pb::IngestRequest { message: None })) => {
                        break Some(Status::invalid_argument("an ingest message must carry hello or batch"));
                    }
                    Ok(None) => reading = false,
                    // A message the server cannot decode (e.g. too large), or the client's transport
                    // failed: either way the client should hear why, if it still can.
                    Err(status) => break Some(status),
                },
                else => break None,
            }
        };
        // Whatever ended the stream, batches already submitted are acked if the client is still there.
        while let Some(done) = in_flight.next().await {
            match done {
                Ok(ack) => {
                    let _ = tx.send(Ok(response(ingest_response::Message::Ack(ack)))).await;
                }
                Err(status) => {
                    let _ = tx.send(Err(status)).await;
                    return;
                }
            }
        }
        if let Some(status) = end {
            tracing::info!(%status, "ingest stream ended with an error");
            let _ = tx.send(Err(status)).await;
        } else if shutdown.is_cancelled() {
            let _ = tx.send(Err(Status::unavailable("the server is shutting down; reconnect and resume"))).await;
        }
    }

    /// Converts and queues one batch; the returned future yields its ack.
    async fn submit(
        &mut self,
        batch: pb::Batch,
    ) -> Result<impl Future<Output = Result<pb::Ack, Status>> + use<>, Status> {
        let converted = self.convert(batch)?;
        let Converted { seq, write, update_index, upsert_index, mut rejected } = converted;
        let pending = self.store.submit(write).await.map_err(status::from_store)?;
        Ok(async move {
            let outcome = pending.wait().await.map_err(status::from_store)?;
            Ok(match outcome {
                WriteOutcome::Duplicate { revision, .. } => {
                    pb::Ack { seq, duplicate: true, revision, ..Default::default() }
                }
                WriteOutcome::Applied(summary) => {
                    for r in summary.rejected {
                        let (upsert, index) = match r.target {
                            Target::Upsert(i) => (true, upsert_index[i]),
                            Target::Update(i) => (false, update_index[i]),
                        };
                        rejected.push(rejection(upsert, index, &r.reason));
                    }
                    rejected.sort_by_key(|r| (!r.upsert, r.index));
                    pb::Ack {
                        seq,
                        duplicate: false,
                        applied: summary.applied,
                        stale: summary.stale,
                        repeated: summary.repeated,
                        rejected,
                        revision: summary.revision,
                    }
                }
            })
        })
    }

    fn convert(&mut self, b: pb::Batch) -> Result<Converted, Status> {
        if b.seq == 0 {
            return Err(Status::invalid_argument("batch.seq must be at least 1"));
        }
        if b.updates.len() > self.limits.max_batch_updates as usize {
            return Err(Status::resource_exhausted(format!(
                "batch {} has {} updates; the limit is {}",
                b.seq,
                b.updates.len(),
                self.limits.max_batch_updates
            )));
        }
        if self.symbols.len() + b.symbols.len() > MAX_SYMBOLS {
            return Err(Status::resource_exhausted(format!("a stream may define at most {MAX_SYMBOLS} symbols")));
        }
        for s in b.symbols {
            self.symbols.define(s.id, s.name);
        }
        let mut out = Converted {
            seq: b.seq,
            write: WriteBatch {
                origin: Some((self.edge.clone(), b.seq)),
                upserts: Vec::with_capacity(b.upserts.len()),
                updates: Vec::with_capacity(b.updates.len()),
            },
            update_index: Vec::with_capacity(b.updates.len()),
            upsert_index: Vec::with_capacity(b.upserts.len()),
            rejected: Vec::new(),
        };
        for (i, e) in b.upserts.iter().enumerate() {
            match EntityStatic::try_from(e) {
                Ok(h) => {
                    out.write.upserts.push(h);
                    out.upsert_index.push(i as u32);
                }
                Err(err) => out.rejected.push(status::upsert_rejection(i, &e.id, &err)),
            }
        }
        for (i, u) in b.updates.into_iter().enumerate() {
            match Self::update(&mut self.symbols, u, b.base_time_unix_ms) {
                Ok(up) => {
                    out.write.updates.push(up);
                    out.update_index.push(i as u32);
                }
                Err((entity_id, attribute, code, message)) => out.rejected.push(pb::Rejection {
                    upsert: false,
                    index: i as u32,
                    entity_id,
                    attribute,
                    code: code as i32,
                    message,
                }),
            }
        }
        Ok(out)
    }

    fn update(
        symbols: &mut Symbols,
        u: pb::Update,
        base: i64,
    ) -> Result<AttributeUpdate, (String, String, RejectCode, String)> {
        let unknown = |what: &str, s: u32| {
            (
                String::new(),
                String::new(),
                RejectCode::UnknownSymbol,
                format!("{what} symbol {s} is not defined on this stream"),
            )
        };
        let entity = match u.entity {
            Some(update::Entity::EntitySymbol(s)) => match symbols.entities.get(&s) {
                Some(id) => id.clone(),
                None => {
                    let name = symbols.resolve(s).ok_or_else(|| unknown("entity", s))?;
                    let id = EntityId::new(name).map_err(|e| {
                        (name.to_owned(), String::new(), RejectCode::InvalidId, format!("entity id {name:?}: {e}"))
                    })?;
                    symbols.entities.insert(s, id.clone());
                    id
                }
            },
            Some(update::Entity::EntityId(name)) => EntityId::new(&name).map_err(|e| {
                (name.clone(), String::new(), RejectCode::InvalidId, format!("entity id {name:?}: {e}"))
            })?,
            None => {
                return Err((
                    String::new(),
                    String::new(),
                    RejectCode::MissingField,
                    "update.entity is required".into(),
                ));
            }
        };
        let attr_err = |name: &str, e: twin_model::IdError| {
            (
                entity.to_string(),
                name.to_owned(),
                RejectCode::UnknownAttribute,
                format!("entity {entity}: attribute name {name:?}: {e}"),
            )
        };
        let attribute = match u.attribute {
            Some(update::Attribute::AttributeSymbol(s)) => match symbols.attributes.get(&s) {
                Some(a) => a.clone(),
                None => {
                    let name = symbols.resolve(s).ok_or_else(|| {
                        let (_, _, code, msg) = unknown("attribute", s);
                        (entity.to_string(), String::new(), code, msg)
                    })?;
                    let a = AttrName::new(name).map_err(|e| attr_err(name, e))?;
                    symbols.attributes.insert(s, a.clone());
                    a
                }
            },
            Some(update::Attribute::AttributeName(name)) => AttrName::new(&name).map_err(|e| attr_err(&name, e))?,
            None => {
                return Err((
                    entity.to_string(),
                    String::new(),
                    RejectCode::MissingField,
                    format!("entity {entity}: update.attribute is required"),
                ));
            }
        };
        let value = u.value.map(Value::try_from).transpose().ok().flatten().ok_or_else(|| {
            (
                entity.to_string(),
                attribute.to_string(),
                RejectCode::MissingField,
                format!("entity {entity} attribute {attribute}: update.value is required"),
            )
        })?;
        let observed_at = base.saturating_add(u.observed_offset_ms);
        Ok(AttributeUpdate { entity, attribute, value, observed_at })
    }
}

/// A store rejection in wire form.
pub(crate) fn rejection(upsert: bool, index: u32, reason: &twin_store::RejectReason) -> pb::Rejection {
    use twin_store::RejectReason as R;
    let (entity_id, attribute) = match reason {
        R::UnknownEntity(e) => (e.to_string(), String::new()),
        R::Catalog { entity, violation } => (entity.to_string(), violation_attribute(violation)),
        R::TypeChange { entity, .. } => (entity.to_string(), String::new()),
        R::InvalidTimestamp { entity, attribute, .. } => (entity.to_string(), attribute.to_string()),
    };
    pb::Rejection {
        upsert,
        index,
        entity_id,
        attribute,
        code: status::reject_code(reason) as i32,
        message: reason.to_string(),
    }
}

fn violation_attribute(v: &twin_model::Violation) -> String {
    use twin_model::Violation as V;
    match v {
        V::UnknownType(_) => String::new(),
        V::UnknownAttribute { attribute, .. }
        | V::WrongKind { attribute, .. }
        | V::NotFinite { attribute, .. }
        | V::OutOfRange { attribute, .. }
        | V::TextTooLong { attribute, .. }
        | V::NotAllowed { attribute, .. }
        | V::BadPosition { attribute, .. } => attribute.to_string(),
    }
}

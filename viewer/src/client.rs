//! The viewer as a client of the public API: it reads the whole city through `TwinService.List`, page by
//! page, like any integrator, so it draws whatever city the cloud holds.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use twin_model::{AttrName, AttributeState, Entity, EntityStatic, Reported, Value};
use twin_proto::pb::{self, twin_service_client::TwinServiceClient};

/// Entities per List page.
const PAGE: u32 = 5_000;

/// Why the city could not be read from the cloud.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The address is not a URL or the cloud is unreachable.
    #[error("cannot reach the cloud at {url}: {source}")]
    Connect {
        /// The address.
        url: String,
        /// Why.
        source: tonic::transport::Error,
    },
    /// A call failed.
    #[error("the cloud refused List: {0}")]
    Status(#[from] tonic::Status),
    /// An entity could not be read.
    #[error("the cloud sent an entity the viewer cannot read ({id}): {reason}")]
    BadEntity {
        /// Its id.
        id: String,
        /// What is wrong.
        reason: String,
    },
}

/// Connects to `url` (e.g. `http://127.0.0.1:50051`).
pub async fn connect(url: &str) -> Result<Channel, ClientError> {
    let err = |source| ClientError::Connect { url: url.to_owned(), source };
    Endpoint::from_shared(url.to_owned())
        .map_err(err)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(err)
}

/// Every entity the cloud holds, with its reported values, and the revision the listing started at (a Watch
/// resumes after it). `progress(loaded)` is called after each page.
pub async fn list_all(channel: Channel, mut progress: impl FnMut(usize)) -> Result<(Vec<Entity>, u64), ClientError> {
    let mut client = TwinServiceClient::new(channel).max_decoding_message_size(256 << 20);
    let (mut entities, mut token, mut revision) = (Vec::new(), String::new(), None);
    loop {
        let req = pb::ListRequest { page_size: PAGE, page_token: token, ..Default::default() };
        let page = client.list(req).await?.into_inner();
        revision.get_or_insert(page.revision);
        for e in &page.entities {
            entities.push(entity_from_pb(e)?);
        }
        progress(entities.len());
        if page.next_page_token.is_empty() {
            return Ok((entities, revision.unwrap_or(0)));
        }
        token = page.next_page_token;
    }
}

/// An entity as the API returns it, with its reported values.
pub fn entity_from_pb(e: &pb::Entity) -> Result<Entity, ClientError> {
    let bad = |reason: String| ClientError::BadEntity { id: e.id.clone(), reason };
    let header = EntityStatic::try_from(e).map_err(|err| bad(err.to_string()))?;
    let mut entity = Entity::new(header);
    entity.revision = e.revision;
    for a in &e.attributes {
        let value = |v: &Option<pb::Value>| -> Result<Option<Value>, ClientError> {
            v.clone().map(Value::try_from).transpose().map_err(|err| bad(format!("{}: {err}", a.name)))
        };
        let name = AttrName::new(&a.name).map_err(|err| bad(err.to_string()))?;
        let reported = value(&a.reported)?.map(|value| Reported {
            value,
            observed_at: a.observed_at_unix_ms,
            received_at: a.received_at_unix_ms,
            revision: a.revision,
        });
        let desired = value(&a.desired)?.map(|value| Reported {
            value,
            observed_at: a.desired_at_unix_ms,
            received_at: a.desired_at_unix_ms,
            revision: a.revision,
        });
        if reported.is_some() || desired.is_some() {
            entity.attributes.insert(name, AttributeState { reported, desired });
        }
    }
    Ok(entity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_and_desired_values_come_through_and_bad_ones_are_named() {
        let number = |v: f64| pb::Value { kind: Some(pb::value::Kind::Number(v)) };
        let mut e = pb::Entity {
            id: "urn:ngsi-ld:Streetlight:x:1".into(),
            r#type: "Streetlight".into(),
            attributes: vec![pb::Attribute {
                name: "illuminanceLevel".into(),
                reported: Some(number(0.4)),
                observed_at_unix_ms: 1_700_000_000_000,
                desired: Some(number(0.8)),
                desired_at_unix_ms: 1_700_000_001_000,
                ..Default::default()
            }],
            ..Default::default()
        };
        let entity = entity_from_pb(&e).unwrap();
        let state = &entity.attributes[&AttrName::new("illuminanceLevel").unwrap()];
        assert_eq!(
            state.reported.as_ref().map(|r| (&r.value, r.observed_at)),
            Some((&Value::Number(0.4), 1_700_000_000_000))
        );
        assert_eq!(state.desired.as_ref().map(|d| &d.value), Some(&Value::Number(0.8)));
        e.attributes[0].reported = Some(pb::Value { kind: None });
        let err = entity_from_pb(&e).unwrap_err().to_string();
        assert!(err.contains("urn:ngsi-ld:Streetlight:x:1") && err.contains("illuminanceLevel"), "{err}");
    }
}

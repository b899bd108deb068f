//! `AdminService`: bulk loading and the catalog.

use tonic::{Request, Response, Status};
use twin_model::{AttrName, Catalog, EntityStatic, Value};
use twin_proto::pb;
use twin_store::{AttributeUpdate, Store, Target, WriteBatch, WriteOutcome, write::MIN_OBSERVED_AT};

use crate::{ingest::rejection, status};

/// The most entities one LoadEntities call may carry.
pub const MAX_LOAD_ENTITIES: usize = 50_000;

/// The admin service.
#[derive(Debug, Clone)]
pub struct AdminSvc {
    pub(crate) store: Store,
}

#[tonic::async_trait]
impl pb::admin_service_server::AdminService for AdminSvc {
    async fn load_entities(
        &self,
        request: Request<pb::LoadEntitiesRequest>,
    ) -> Result<Response<pb::LoadEntitiesResponse>, Status> {
        let entities = request.into_inner().entities;
        if entities.len() > MAX_LOAD_ENTITIES {
            return Err(Status::invalid_argument(format!(
                "entities: {} given; send at most {MAX_LOAD_ENTITIES} per call",
                entities.len()
            )));
        }
        let mut rejected = Vec::new();
        let mut batch = WriteBatch::default();
        // Entity index in the request of each upsert and update in `batch`.
        let mut upsert_entity = Vec::new();
        let mut update_entity = Vec::new();
        for (i, e) in entities.into_iter().enumerate() {
            let header = match EntityStatic::try_from(&e) {
                Ok(h) => h,
                Err(err) => {
                    rejected.push(status::upsert_rejection(i, &e.id, &err));
                    continue;
                }
            };
            for a in e.attributes {
                let Some(value) = a.reported else { continue };
                let converted = AttrName::new(&a.name)
                    .map_err(|err| format!("attribute name {:?}: {err}", a.name))
                    .and_then(|name| Value::try_from(value).map(|v| (name, v)).map_err(|err| err.to_string()));
                match converted {
                    Ok((attribute, value)) => {
                        let observed_at =
                            if a.observed_at_unix_ms == 0 { MIN_OBSERVED_AT } else { a.observed_at_unix_ms };
                        batch.updates.push(AttributeUpdate {
                            entity: header.id.clone(),
                            attribute,
                            value,
                            observed_at,
                        });
                        update_entity.push(i as u32);
                    }
                    Err(message) => rejected.push(pb::Rejection {
                        upsert: false,
                        index: i as u32,
                        entity_id: header.id.to_string(),
                        attribute: a.name.clone(),
                        code: pb::RejectCode::UnknownAttribute as i32,
                        message: format!("entity {}: {message}", header.id),
                    }),
                }
            }
            batch.upserts.push(header);
            upsert_entity.push(i as u32);
        }
        let outcome = self.store.write(batch).await.map_err(status::from_store)?;
        let WriteOutcome::Applied(summary) = outcome else {
            return Err(Status::internal("a load without an origin cannot be a duplicate"));
        };
        for r in &summary.rejected {
            let (upsert, index) = match r.target {
                Target::Upsert(i) => (true, upsert_entity[i]),
                Target::Update(i) => (false, update_entity[i]),
            };
            rejected.push(rejection(upsert, index, &r.reason));
        }
        rejected.sort_by_key(|r| (r.index, !r.upsert));
        Ok(Response::new(pb::LoadEntitiesResponse {
            loaded: summary.upserts_changed,
            unchanged: summary.upserts_unchanged,
            rejected,
            revision: summary.revision,
            attributes_applied: summary.applied,
        }))
    }

    async fn get_catalog(&self, _: Request<pb::GetCatalogRequest>) -> Result<Response<pb::Catalog>, Status> {
        Ok(Response::new(catalog_to_pb(self.store.catalog())))
    }
}

/// The catalog in wire form.
pub fn catalog_to_pb(catalog: &Catalog) -> pb::Catalog {
    let types = catalog
        .types()
        .map(|(name, t)| pb::EntityTypeDefinition {
            name: name.to_string(),
            domain: t.domain.clone(),
            description: t.description.clone(),
            relationships: t.relationships.clone(),
            attributes: t
                .attributes
                .iter()
                .map(|(n, a)| pb::AttributeDefinition {
                    name: n.to_string(),
                    kind: a.kind.to_string(),
                    unit: a.unit.clone().unwrap_or_default(),
                    min: a.min,
                    max: a.max,
                    allowed_values: a.values.clone().unwrap_or_default(),
                    commandable: a.commandable,
                    description: a.description.clone(),
                })
                .collect(),
        })
        .collect();
    pb::Catalog { types }
}

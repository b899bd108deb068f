//! What the store examples share.

use twin_model::{EntityId, EntityStatic, Geometry, TypeName};
use twin_store::{Store, WriteBatch};

/// Registers `n` air-quality probe stations in `store` and returns their ids.
pub async fn register_stations(store: &Store, n: usize) -> Result<Vec<EntityId>, Box<dyn std::error::Error>> {
    let ids: Vec<EntityId> = (0..n)
        .map(|i| EntityId::new(&format!("urn:ngsi-ld:AirQualityObserved:probe:{i:06}")))
        .collect::<Result<_, _>>()?;
    let entity_type = TypeName::new("AirQualityObserved")?;
    let upserts = ids
        .iter()
        .map(|id| EntityStatic {
            id: id.clone(),
            entity_type: entity_type.clone(),
            geometry: Some(Geometry::point(112.94, 28.23)),
            relationships: Default::default(),
        })
        .collect();
    store.write(WriteBatch { upserts, ..Default::default() }).await?;
    Ok(ids)
}

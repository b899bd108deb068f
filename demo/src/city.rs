//! Loading the demonstration city into the cloud once: on the first start, and again only if an earlier
//! load did not finish.

use std::time::Duration;

use tonic::{Code, transport::Channel};
use twin_city::City;
use twin_model::{Catalog, Entity};
use twin_proto::pb::{self, twin_service_client::TwinServiceClient};

/// Why the city could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CityError {
    /// The city has no building to mark a finished load with.
    #[error("the city {0:?} has no buildings")]
    NoMarker(String),
    /// Asking whether the city is there failed.
    #[error("cannot ask the cloud whether {city} is loaded: {status}")]
    Check {
        /// The city.
        city: String,
        /// The cloud's answer.
        status: tonic::Status,
    },
    /// The load failed.
    #[error("cannot load {city}: {source}")]
    Load {
        /// The city.
        city: String,
        /// Why.
        source: twin_client::LoadError,
    },
    /// The cloud refused some entities.
    #[error("the cloud rejected {count} entities or attributes of {city}, e.g. {first}")]
    Rejected {
        /// The city.
        city: String,
        /// How many.
        count: usize,
        /// The first rejection.
        first: String,
    },
}

/// What [`ensure_loaded`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CityLoad {
    /// The cloud had the whole city already: nothing was sent.
    AlreadyLoaded,
    /// The city was loaded (or an unfinished load completed).
    Loaded {
        /// Entities new or changed.
        loaded: u64,
        /// Entities the cloud already had as they are.
        unchanged: u64,
    },
}

/// The entity loaded last, on its own, once every other entity of `city` was accepted: when the cloud has
/// it, it has the whole city. A building, because edge agents register their own sensors, so a sensor
/// being there proves nothing, and nothing but this load creates buildings.
pub fn marker(city: &City) -> Option<&Entity> {
    city.of_type("Building").last()
}

/// Loads `city` unless the cloud already has all of it (its [`marker`] is there). Loading is idempotent,
/// so finishing a load that was interrupted (Ctrl-C, a crash) costs time, not correctness.
pub async fn ensure_loaded(
    channel: Channel,
    catalog: &Catalog,
    city: &City,
    progress: impl FnMut(usize, usize),
) -> Result<CityLoad, CityError> {
    let name = || city.name.clone();
    let marker = marker(city).ok_or_else(|| CityError::NoMarker(name()))?;
    let mut twin = TwinServiceClient::new(channel.clone());
    match twin.get(pb::GetRequest { id: marker.header.id.to_string(), field_mask: None }).await {
        Ok(_) => return Ok(CityLoad::AlreadyLoaded),
        Err(status) if status.code() == Code::NotFound => {}
        Err(status) => return Err(CityError::Check { city: name(), status }),
    }
    let rest: Vec<Entity> = city.entities.iter().filter(|e| e.header.id != marker.header.id).cloned().collect();
    let mut summary = twin_client::load_entities(channel.clone(), catalog, &rest, CHUNK, progress)
        .await
        .map_err(|source| CityError::Load { city: name(), source })?;
    // Only after every other chunk was accepted (they are in flight together and may commit in any order).
    let last = twin_client::load_entities(channel, catalog, std::slice::from_ref(marker), 1, |_, _| {})
        .await
        .map_err(|source| CityError::Load { city: name(), source })?;
    summary.loaded += last.loaded;
    summary.unchanged += last.unchanged;
    summary.rejected.extend(last.rejected);
    if let Some(first) = summary.rejected.first() {
        return Err(CityError::Rejected {
            city: name(),
            count: summary.rejected.len(),
            first: format!("{}: {}", first.entity_id, first.message),
        });
    }
    Ok(CityLoad::Loaded { loaded: summary.loaded, unchanged: summary.unchanged })
}

/// Entities per LoadEntities call.
const CHUNK: usize = 2_000;

/// How long to wait for a starting cloud to accept connections.
pub const CONNECT_WAIT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use twin_e2e::InProcessCloud;

    /// A small city of three buildings.
    fn small_city() -> City {
        let square = |lon: f64, height: u32| {
            format!(
                r#"{{"type":"Feature","properties":{{"height":{height}}},"geometry":{{"type":"Polygon","coordinates":[[[{lon},28.19],[{},28.19],[{},28.191],[{lon},28.19]]]}}}}"#,
                lon + 0.001,
                lon + 0.001
            )
        };
        let features = [square(112.97, 30), square(112.98, 12), square(112.99, 8)].join(",");
        twin_city::geojson::import(&format!(r#"{{"type":"FeatureCollection","features":[{features}]}}"#), "smallville")
            .unwrap()
    }

    async fn count(cloud: &InProcessCloud) -> usize {
        let mut twin = cloud.clients.twin();
        let list = twin.list(pb::ListRequest { page_size: 100, ..Default::default() }).await.unwrap().into_inner();
        list.entities.len()
    }

    #[tokio::test]
    async fn the_city_is_loaded_once() {
        let (city, catalog) = (small_city(), Catalog::builtin());
        let cloud = InProcessCloud::start().await.unwrap();
        let channel = cloud.clients.channel.clone();
        let loaded = ensure_loaded(channel.clone(), &catalog, &city, |_, _| {}).await.unwrap();
        assert_eq!(loaded, CityLoad::Loaded { loaded: 3, unchanged: 0 });
        assert_eq!(count(&cloud).await, 3);
        assert_eq!(ensure_loaded(channel, &catalog, &city, |_, _| {}).await.unwrap(), CityLoad::AlreadyLoaded);
        cloud.stop().await.unwrap();
    }

    #[tokio::test]
    async fn a_load_cut_short_before_its_marker_is_completed() {
        let (city, catalog) = (small_city(), Catalog::builtin());
        let marker = marker(&city).unwrap().header.id.clone();
        let cloud = InProcessCloud::start().await.unwrap();
        let channel = cloud.clients.channel.clone();
        let first_part: Vec<Entity> = city.entities.iter().filter(|e| e.header.id != marker).cloned().collect();
        twin_client::load_entities(channel.clone(), &catalog, &first_part, 10, |_, _| {}).await.unwrap();

        let finished = ensure_loaded(channel, &catalog, &city, |_, _| {}).await.unwrap();
        assert_eq!(finished, CityLoad::Loaded { loaded: 1, unchanged: 2 }, "only the missing part is new");
        assert_eq!(count(&cloud).await, 3);
        cloud.stop().await.unwrap();
    }
}

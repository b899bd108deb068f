//! City models for City Twin: a city is a list of [`twin_model::Entity`] values whose types and
//! attributes come from the built-in type catalog.
//!
//! - [`changsha()`]: the Changsha demonstration city, generated deterministically from a seed around the
//!   real centre (28.2 N, 112.95 E): the Xiang River with Orange Isle, the Liuyang River, Meixi Lake,
//!   Yuelu Mountain, five districts, ring roads and an arterial grid with bridges, 50,000+ buildings and
//!   the sensors and devices of every smart-city domain. See [`changsha`](mod@changsha) for the layout.
//! - [`geojson`]: import a GeoJSON FeatureCollection of building footprints (e.g. an OpenStreetMap
//!   export) as a city of `Building` entities, with an error naming the feature and the problem.
//! - [`City`]: the result, with lookup helpers and a [`City::content_hash`] that is stable across runs
//!   and platforms.
//!
//! Internals: [`geo`] (the local metric frame and planar predicates), [`rng`] (a SplitMix64 generator,
//! so output never changes with a dependency upgrade), [`hash`] (FNV-1a over a canonical encoding),
//! and `make` (entity construction with static attribute values).

pub mod changsha;
pub mod geo;
pub mod geojson;
pub mod hash;
mod make;
pub mod rng;

use std::collections::{BTreeMap, HashMap};

use twin_model::Entity;

pub use changsha::{DEFAULT_SEED, changsha};
pub use make::STATIC_OBSERVED_AT;

/// A city: a name and its entities (static layers first, then sensors and devices).
#[derive(Debug, Clone, PartialEq)]
pub struct City {
    /// The city name, e.g. `changsha`.
    pub name: String,
    /// Every entity of the city; ids are unique.
    pub entities: Vec<Entity>,
}

impl City {
    /// The entities of one type, in city order.
    pub fn of_type<'a>(&'a self, entity_type: &'a str) -> impl Iterator<Item = &'a Entity> + 'a {
        self.entities.iter().filter(move |e| e.header.entity_type.as_str() == entity_type)
    }

    /// How many entities each type has.
    pub fn count_by_type(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for e in &self.entities {
            *counts.entry(e.header.entity_type.to_string()).or_insert(0) += 1;
        }
        counts
    }

    /// An index from id to entity, for following relationships.
    pub fn index(&self) -> HashMap<&str, &Entity> {
        self.entities.iter().map(|e| (e.id().as_str(), e)).collect()
    }

    /// The entity with `id`, if any (a linear scan; use [`City::index`] for many look-ups).
    pub fn get(&self, id: &str) -> Option<&Entity> {
        self.entities.iter().find(|e| e.id().as_str() == id)
    }

    /// How many entities the city has.
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    /// Whether the city has no entity.
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// A hash of the name and every entity (see [`hash`]): equal cities hash equal on every run and
    /// platform, and any change to any entity changes it.
    pub fn content_hash(&self) -> u64 {
        let mut h = hash::Fnv1a::default();
        h.write_str(&self.name);
        h.write_u64(self.entities.len() as u64);
        for e in &self.entities {
            h.write_entity(e);
        }
        h.finish()
    }
}

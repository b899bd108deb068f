//! The in-memory view of the latest state, with the indexes queries use: entities by id (hashed: the committer
//! looks one up per update), their ids in order, a type index and an R-tree over geometry envelopes. Only the
//! committer mutates it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rstar::{AABB, RTree, RTreeObject};
use twin_model::{BoundingBox, EdgeId, Entity, EntityId, EntityStatic, TypeName};

/// An entity's envelope in the spatial index.
#[derive(Debug, Clone, PartialEq)]
struct SpatialItem {
    id: EntityId,
    envelope: AABB<[f64; 2]>,
}

impl RTreeObject for SpatialItem {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        self.envelope
    }
}

fn aabb(b: &BoundingBox) -> AABB<[f64; 2]> {
    AABB::from_corners([b.min_lon, b.min_lat], [b.max_lon, b.max_lat])
}

/// The latest state of every entity, and the edges' applied sequence numbers.
#[derive(Debug, Default)]
pub struct State {
    /// Hashed rather than ordered: a lookup in a B-tree of 10,000 ids compared about 20 of them, each behind
    /// a pointer the cache rarely holds (issue 6: the largest cost per update in the committer).
    entities: foldhash::HashMap<EntityId, Entity>,
    /// The same ids in order, for listing.
    ids: BTreeSet<EntityId>,
    by_type: HashMap<TypeName, BTreeSet<EntityId>>,
    spatial: RTree<SpatialItem>,
    edges: HashMap<EdgeId, EdgeProgress>,
    /// The highest revision applied.
    pub revision: u64,
}

impl State {
    /// Builds the state (and its indexes, in bulk) from recovered entities.
    pub fn from_parts(
        entities: BTreeMap<EntityId, Entity>,
        edges: HashMap<EdgeId, EdgeProgress>,
        revision: u64,
    ) -> Self {
        let mut by_type: HashMap<TypeName, BTreeSet<EntityId>> = HashMap::new();
        let mut items = Vec::new();
        for e in entities.values() {
            by_type.entry(e.header.entity_type.clone()).or_default().insert(e.header.id.clone());
            if let Some(g) = &e.header.geometry {
                items.push(SpatialItem { id: e.header.id.clone(), envelope: aabb(&g.envelope()) });
            }
        }
        let ids = entities.keys().cloned().collect();
        let entities = entities.into_iter().collect();
        State { entities, ids, by_type, spatial: RTree::bulk_load(items), edges, revision }
    }

    /// The entity with this id.
    pub fn get(&self, id: &str) -> Option<&Entity> {
        self.entities.get(id)
    }

    /// The entity with this id, to change its attributes. Changing the header through it would leave the
    /// indexes stale: use [`State::put_header`].
    pub fn get_mut(&mut self, id: &str) -> Option<&mut Entity> {
        self.entities.get_mut(id)
    }

    /// Creates the entity or replaces its static part, keeping the indexes right.
    pub fn put_header(&mut self, header: EntityStatic, revision: u64) {
        let id = header.id.clone();
        let new_envelope = header.geometry.as_ref().map(|g| aabb(&g.envelope()));
        match self.entities.get_mut(&id) {
            Some(e) => {
                if let Some(g) = &e.header.geometry {
                    self.spatial.remove(&SpatialItem { id: id.clone(), envelope: aabb(&g.envelope()) });
                }
                e.header = header;
                e.revision = revision;
            }
            None => {
                self.by_type.entry(header.entity_type.clone()).or_default().insert(id.clone());
                let mut e = Entity::new(header);
                e.revision = revision;
                self.ids.insert(id.clone());
                self.entities.insert(id.clone(), e);
            }
        }
        if let Some(envelope) = new_envelope {
            self.spatial.insert(SpatialItem { id, envelope });
        }
    }

    /// Entities in id order from `start` (inclusive).
    pub fn range_from<'a>(&'a self, start: &str) -> impl Iterator<Item = &'a Entity> + 'a {
        use std::ops::Bound;
        self.ids.range::<str, _>((Bound::Included(start), Bound::Unbounded)).filter_map(|id| self.entities.get(id))
    }

    /// Ids of one type in id order, after `after` (exclusive) when given.
    pub fn ids_of_type<'a>(&'a self, t: &str, after: Option<&'a str>) -> impl Iterator<Item = &'a EntityId> + 'a {
        use std::ops::Bound;
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.by_type.get(t).into_iter().flat_map(move |ids| ids.range::<str, _>((lower, Bound::Unbounded)))
    }

    /// Ids whose envelope intersects `b`, in no particular order.
    pub fn ids_in_box<'a>(&'a self, b: &BoundingBox) -> impl Iterator<Item = &'a EntityId> + 'a {
        self.spatial.locate_in_envelope_intersecting(&aabb(b)).map(|item| &item.id)
    }

    /// How many entities there are.
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    /// Whether there is no entity.
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// The highest applied batch sequence number of an edge (0 if none).
    pub fn edge_seq(&self, edge: &str) -> u64 {
        self.edge_progress(edge).seq
    }

    /// What an edge has delivered so far.
    pub fn edge_progress(&self, edge: &str) -> EdgeProgress {
        self.edges.get(edge).copied().unwrap_or_default()
    }

    /// Records an edge's progress.
    pub fn set_edge_progress(&mut self, edge: EdgeId, progress: EdgeProgress) {
        self.edges.insert(edge, progress);
    }

    /// Every entity, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Entity> {
        self.ids.iter().filter_map(|id| self.entities.get(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use twin_model::Geometry;

    fn header(id: &str, t: &str, lon: f64, lat: f64) -> EntityStatic {
        EntityStatic {
            id: EntityId::new(id).unwrap(),
            entity_type: TypeName::new(t).unwrap(),
            geometry: Some(Geometry::point(lon, lat)),
            relationships: Default::default(),
        }
    }

    #[test]
    fn moving_an_entity_updates_the_spatial_index() {
        let mut s = State::default();
        s.put_header(header("urn:a", "Bus", 1.0, 1.0), 1);
        let near = BoundingBox::new(0.5, 0.5, 1.5, 1.5).unwrap();
        let far = BoundingBox::new(9.5, 9.5, 10.5, 10.5).unwrap();
        assert_eq!(s.ids_in_box(&near).count(), 1);
        s.put_header(header("urn:a", "Bus", 10.0, 10.0), 2);
        assert_eq!(s.ids_in_box(&near).count(), 0);
        assert_eq!(s.ids_in_box(&far).count(), 1);
        assert_eq!(s.ids_of_type("Bus", None).count(), 1);
        assert_eq!(s.ids_of_type("Bus", Some("urn:a")).count(), 0);
    }
}

/// What one edge has delivered: its highest applied batch seq and how many updates its applied batches
/// carried (applied, stale, repeated or rejected; duplicates not counted), an audit of exactly-once delivery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EdgeProgress {
    /// The highest applied batch sequence number (0 if none).
    pub seq: u64,
    /// Updates in the applied batches.
    pub updates: u64,
}

impl EdgeProgress {
    /// The stored form: seq then updates, big-endian.
    pub fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.seq.to_be_bytes());
        b[8..].copy_from_slice(&self.updates.to_be_bytes());
        b
    }

    /// Reads the stored form; 8 bytes (a seq alone, as written before the update count) are accepted too.
    pub fn from_bytes(b: &[u8]) -> Option<EdgeProgress> {
        let word = |r: std::ops::Range<usize>| Some(u64::from_be_bytes(b.get(r)?.try_into().ok()?));
        match b.len() {
            8 => Some(EdgeProgress { seq: word(0..8)?, updates: 0 }),
            16 => Some(EdgeProgress { seq: word(0..8)?, updates: word(8..16)? }),
            _ => None,
        }
    }
}

//! Filters and paged listing over the in-memory state.
//!
//! Listing walks the most selective index the filter allows (the R-tree for a box or circle, the type
//! index for types, the id order for a prefix) and checks the whole filter on each candidate, so every
//! path returns exactly the matching entities, in id order.

use std::cmp::Ordering;

use twin_model::{AttrName, BoundingBox, Entity, EntityId, GeoPoint, TypeName, Value};

use crate::{Store, state::State};

/// How an attribute is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// Equal.
    Eq,
    /// Not equal.
    Ne,
    /// Less than.
    Lt,
    /// Less than or equal.
    Le,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Ge,
}

/// A comparison of an attribute's reported value with a constant.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The attribute.
    pub attribute: AttrName,
    /// The comparison.
    pub op: CompareOp,
    /// The constant.
    pub value: Value,
}

/// What to select; every part set must match. The default matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Any of these types (empty: any type).
    pub types: Vec<TypeName>,
    /// Id prefix (empty: any id).
    pub id_prefix: String,
    /// The geometry's envelope intersects this box.
    pub bbox: Option<BoundingBox>,
    /// The geometry's reference point is within this many metres of this point.
    pub within: Option<(GeoPoint, f64)>,
    /// Attribute comparisons.
    pub conditions: Vec<Condition>,
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    /// Matching entities in id order.
    pub entities: Vec<Entity>,
    /// The id to continue after, when there are more.
    pub next_after: Option<EntityId>,
    /// The revision the page was read at.
    pub revision: u64,
}

impl Condition {
    /// Whether the entity's reported value satisfies the condition.
    pub fn matches(&self, e: &Entity) -> bool {
        let Some(v) = e.reported(&self.attribute) else { return false };
        let ord = match (v, &self.value) {
            (Value::Text(a), Value::Text(b)) => Some(a.cmp(b)),
            (Value::Point(a), Value::Point(b)) => (a == b).then_some(Ordering::Equal),
            (a, b) => match (a.as_f64(), b.as_f64()) {
                (Some(x), Some(y)) => x.partial_cmp(&y),
                _ => None,
            },
        };
        match (self.op, ord) {
            (CompareOp::Ne, None) => true,
            (_, None) => false,
            (CompareOp::Eq, Some(o)) => o == Ordering::Equal,
            (CompareOp::Ne, Some(o)) => o != Ordering::Equal,
            (CompareOp::Lt, Some(o)) => o == Ordering::Less,
            (CompareOp::Le, Some(o)) => o != Ordering::Greater,
            (CompareOp::Gt, Some(o)) => o == Ordering::Greater,
            (CompareOp::Ge, Some(o)) => o != Ordering::Less,
        }
    }
}

impl Filter {
    /// Whether the entity matches every part of the filter.
    pub fn matches(&self, e: &Entity) -> bool {
        let h = &e.header;
        if !self.types.is_empty() && !self.types.contains(&h.entity_type) {
            return false;
        }
        if !h.id.as_str().starts_with(&self.id_prefix) {
            return false;
        }
        if self.bbox.is_some() || self.within.is_some() {
            let Some(g) = &h.geometry else { return false };
            if let Some(b) = &self.bbox
                && !g.envelope().intersects(b)
            {
                return false;
            }
            if let Some((center, radius_m)) = &self.within
                && center.distance_m(&g.reference_point()) > *radius_m
            {
                return false;
            }
        }
        self.conditions.iter().all(|c| c.matches(e))
    }

    /// The box spatial candidates must intersect, if the filter is spatial.
    fn search_box(&self) -> Option<BoundingBox> {
        let circle = self.within.map(|(c, r)| BoundingBox::around_circle(c, r));
        match (self.bbox, circle) {
            (Some(a), Some(b)) => Some(BoundingBox {
                min_lon: a.min_lon.max(b.min_lon),
                min_lat: a.min_lat.max(b.min_lat),
                max_lon: a.max_lon.min(b.max_lon),
                max_lat: a.max_lat.min(b.max_lat),
            }),
            (a, b) => a.or(b),
        }
    }
}

/// Lists up to `limit` matching entities with an id above `after`.
pub fn list(state: &State, filter: &Filter, after: Option<&str>, limit: usize) -> ListPage {
    let limit = limit.max(1);
    let after_ok = |id: &str| after.is_none_or(|a| id > a);
    // Collect up to limit + 1 to know whether another page exists.
    let mut found: Vec<&Entity> = Vec::with_capacity(limit + 1);
    if let Some(b) = filter.search_box() {
        let mut ids: Vec<&EntityId> = if b.min_lon <= b.max_lon && b.min_lat <= b.max_lat {
            state.ids_in_box(&b).filter(|id| after_ok(id)).collect()
        } else {
            Vec::new()
        };
        ids.sort_unstable();
        found.extend(ids.into_iter().filter_map(|id| state.get(id)).filter(|e| filter.matches(e)).take(limit + 1));
    } else if !filter.types.is_empty() {
        for t in &filter.types {
            let of_type = state.ids_of_type(t, after).filter_map(|id| state.get(id)).filter(|e| filter.matches(e));
            found.extend(of_type.take(limit + 1));
        }
        found.sort_unstable_by(|a, b| a.header.id.cmp(&b.header.id));
        found.dedup_by(|a, b| a.header.id == b.header.id);
        found.truncate(limit + 1);
    } else {
        let start = match after {
            Some(a) if a >= filter.id_prefix.as_str() => a,
            _ => filter.id_prefix.as_str(),
        };
        let candidates = state
            .range_from(start)
            .take_while(|e| e.header.id.as_str().starts_with(&filter.id_prefix))
            .filter(|e| after_ok(e.header.id.as_str()) && filter.matches(e));
        found.extend(candidates.take(limit + 1));
    }
    let more = found.len() > limit;
    found.truncate(limit);
    ListPage {
        next_after: if more { found.last().map(|e| e.header.id.clone()) } else { None },
        entities: found.into_iter().cloned().collect(),
        revision: state.revision,
    }
}

impl Store {
    /// Lists up to `limit` matching entities with an id above `after`, in id order.
    pub fn list(&self, filter: &Filter, after: Option<&str>, limit: usize) -> ListPage {
        self.with_state(|s| list(s, filter, after, limit))
    }
}

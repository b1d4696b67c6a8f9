//! Where circles live in the store, and how the app sees them: circle
//! records, contacts and sessions as a write set will leave them, and the
//! public [`Circle`] view.

use super::Engine;
use super::circles::{circle_id_of, load_chain};
use crate::circles::roster::RosterChain;
use crate::circles::{Circle, CircleId, CircleMember, CircleState, Role};
use crate::error::Error;
use crate::ids::MemberId;
use crate::records::{self, CircleRecord, ContactRecord, StoredCircleState};
use crate::store::{BLIND_LEN, Space, StoreError, WriteSet};

impl Engine {
    pub(super) fn circle_key(&self, circle: CircleId) -> [u8; BLIND_LEN] {
        self.store.blind("circle", &[circle.as_bytes()])
    }

    pub(super) fn sender_keys_key(&self, circle: CircleId, member: MemberId) -> [u8; BLIND_LEN] {
        self.store
            .blind("sender-keys", &[circle.as_bytes(), member.as_bytes()])
    }

    /// A circle as it will be after `writes`.
    pub(crate) fn circle_in(
        &self,
        writes: &WriteSet,
        circle: CircleId,
    ) -> Result<Option<CircleRecord>, StoreError> {
        writes
            .read(Space::Circles, &self.circle_key(circle))?
            .map(|bytes| records::decode(&bytes, "circle"))
            .transpose()
    }

    pub(super) fn put_circle(&self, writes: &mut WriteSet, record: &CircleRecord) {
        let id = circle_id_of(record);
        writes.put(
            Space::Circles,
            &self.circle_key(id),
            &records::encode(record),
        );
    }

    /// A contact (personal or fellow member) as it will be after `writes`.
    pub(crate) fn contact_in(
        &self,
        writes: &WriteSet,
        member: MemberId,
    ) -> Result<Option<ContactRecord>, StoreError> {
        writes
            .read(Space::Contacts, &self.contact_key(member))?
            .map(|bytes| records::decode(&bytes, "contact"))
            .transpose()
    }

    /// Every circle record.
    pub(super) fn circle_records(&self) -> Result<Vec<CircleRecord>, StoreError> {
        self.store
            .scan(Space::Circles, &[])?
            .iter()
            .map(|(_, bytes)| records::decode(bytes, "circle"))
            .collect()
    }

    /// Every circle, oldest first.
    pub(crate) fn circles(&self) -> Result<Vec<Circle>, StoreError> {
        let mut records = self.circle_records()?;
        records.sort_by_key(|r| (r.joined_at_ms, r.circle_id.clone()));
        records.iter().map(|r| self.circle_view(r)).collect()
    }

    /// The circle named by `query`: its id, or a name only one circle has
    /// (ignoring case).
    pub(crate) fn find_circle(&self, query: &str) -> Result<Circle, Error> {
        let id = query.parse::<CircleId>().ok();
        super::pick_named(self.circles()?, query, |c| Some(c.id) == id, |c| &c.name).map_err(
            |many| {
                if many {
                    Error::AmbiguousCircle
                } else {
                    Error::UnknownCircle
                }
            },
        )
    }

    /// The public view of a circle record.
    pub(crate) fn circle_view(&self, record: &CircleRecord) -> Result<Circle, StoreError> {
        let id = circle_id_of(record);
        let state = match StoredCircleState::try_from(record.state) {
            Ok(StoredCircleState::Joining) => CircleState::Joining,
            Ok(StoredCircleState::Active) => CircleState::Active,
            Ok(StoredCircleState::Left) => CircleState::Left,
            Ok(StoredCircleState::Removed) => CircleState::Removed,
            Err(_) => return Err(StoreError::Corrupt("circle")),
        };
        if record.chain.is_empty() {
            return Ok(Circle {
                id,
                name: record.invite_name.clone(),
                rules: String::new(),
                state,
                my_role: None,
                members: Vec::new(),
                epoch: 0,
                version: 0,
                parent: None,
            });
        }
        let chain = load_chain(record)?;
        let roster = chain.head().roster();
        let me = self.device.member_id;
        let mut members: Vec<CircleMember> = roster
            .members
            .iter()
            .map(|m| CircleMember {
                member_id: m.member_id(),
                display_name: m.display_name.clone(),
                role: m.role,
                is_me: m.member_id() == me,
            })
            .collect();
        members.sort_by(|a, b| {
            (
                a.role != Role::Facilitator,
                a.display_name.to_lowercase(),
                a.member_id,
            )
                .cmp(&(
                    b.role != Role::Facilitator,
                    b.display_name.to_lowercase(),
                    b.member_id,
                ))
        });
        let my_role = match state {
            CircleState::Active => roster.member(me).map(|m| m.role),
            _ => None,
        };
        Ok(Circle {
            id,
            name: roster.name.clone(),
            rules: roster.rules.clone(),
            state,
            my_role,
            members,
            epoch: roster.epoch,
            version: roster.version,
            parent: roster.parent_circle,
        })
    }

    /// An active circle and its roster chain, or why not.
    pub(crate) fn active_circle(
        &self,
        writes: &WriteSet,
        circle: CircleId,
    ) -> Result<(CircleRecord, RosterChain), Error> {
        let record = self
            .circle_in(writes, circle)?
            .ok_or(Error::UnknownCircle)?;
        if record.state != StoredCircleState::Active as i32 {
            return Err(Error::NotInCircle);
        }
        let chain = load_chain(&record)?;
        if chain
            .head()
            .roster()
            .member(self.device.member_id)
            .is_none()
        {
            return Err(Error::NotInCircle);
        }
        Ok((record, chain))
    }
}

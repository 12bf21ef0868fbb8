//! Organizations in memory: one lock guards them all, so every rule
//! (one membership per user, one pending invitation per address, single
//! use, an owner always left) holds by construction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{MemoryStore, State};
use crate::{
    store::{
        Invitation, InvitationState, MemberChange, Membership, OrgRole, OrgStore, Organization,
        StoreError, StoreResult, OWNER,
    },
    token::TokenHash,
    user::UserId,
};

/// Whether taking `owner` from `user` would leave `org_id` without one.
fn is_last_owner(state: &State, org_id: &str, user: &UserId) -> bool {
    let key = (org_id.to_owned(), user.clone());
    let Some(member) = state.members.get(&key) else {
        return false;
    };
    member.is_owner()
        && !state
            .members
            .iter()
            .any(|((org, other), m)| org == org_id && other != user && m.is_owner())
}

fn oldest_first(mut members: Vec<Membership>) -> Vec<Membership> {
    members.sort_by(|a, b| (a.joined_at, &a.user_id).cmp(&(b.joined_at, &b.user_id)));
    members
}

#[async_trait]
impl OrgStore for MemoryStore {
    async fn insert_org(&self, org: &Organization, owner: &Membership) -> StoreResult<()> {
        let mut state = self.state.write();
        if state.orgs.contains_key(&org.id) {
            return Err(StoreError::Conflict("organization"));
        }
        state.orgs.insert(org.id.clone(), org.clone());
        state
            .members
            .insert((owner.org_id.clone(), owner.user_id.clone()), owner.clone());
        Ok(())
    }

    async fn find_org(&self, id: &str) -> StoreResult<Option<Organization>> {
        Ok(self.state.read().orgs.get(id).cloned())
    }

    async fn rename_org(&self, id: &str, name: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        let mut state = self.state.write();
        let Some(org) = state.orgs.get_mut(id) else {
            return Ok(false);
        };
        name.clone_into(&mut org.name);
        org.updated_at = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        Ok(true)
    }

    async fn delete_org(&self, id: &str) -> StoreResult<bool> {
        let mut state = self.state.write();
        if state.orgs.remove(id).is_none() {
            return Ok(false);
        }
        state.members.retain(|(org, _), _| org != id);
        state.invitations.retain(|_, i| i.org_id != id);
        state.org_roles.retain(|(org, _), _| org != id);
        Ok(true)
    }

    async fn find_membership(
        &self,
        org_id: &str,
        user: &UserId,
    ) -> StoreResult<Option<Membership>> {
        let key = (org_id.to_owned(), user.clone());
        Ok(self.state.read().members.get(&key).cloned())
    }

    async fn list_user_memberships(&self, user: &UserId) -> StoreResult<Vec<Membership>> {
        let state = self.state.read();
        Ok(oldest_first(
            state
                .members
                .values()
                .filter(|m| m.user_id == *user)
                .cloned()
                .collect(),
        ))
    }

    async fn list_members(&self, org_id: &str) -> StoreResult<Vec<Membership>> {
        let state = self.state.read();
        Ok(oldest_first(
            state
                .members
                .values()
                .filter(|m| m.org_id == org_id)
                .cloned()
                .collect(),
        ))
    }

    async fn insert_membership(&self, membership: &Membership) -> StoreResult<()> {
        let mut state = self.state.write();
        let key = (membership.org_id.clone(), membership.user_id.clone());
        if state.members.contains_key(&key) || !state.orgs.contains_key(&membership.org_id) {
            return Err(StoreError::Conflict("membership"));
        }
        state.members.insert(key, membership.clone());
        Ok(())
    }

    async fn set_member_roles(
        &self,
        org_id: &str,
        user: &UserId,
        roles: &[String],
    ) -> StoreResult<MemberChange> {
        let mut state = self.state.write();
        if !roles.iter().any(|r| r == OWNER) && is_last_owner(&state, org_id, user) {
            return Ok(MemberChange::LastOwner);
        }
        let key = (org_id.to_owned(), user.clone());
        let Some(member) = state.members.get_mut(&key) else {
            return Ok(MemberChange::NotFound);
        };
        member.roles = roles.to_vec();
        Ok(MemberChange::Done)
    }

    async fn remove_membership(&self, org_id: &str, user: &UserId) -> StoreResult<MemberChange> {
        let mut state = self.state.write();
        if is_last_owner(&state, org_id, user) {
            return Ok(MemberChange::LastOwner);
        }
        let key = (org_id.to_owned(), user.clone());
        Ok(match state.members.remove(&key) {
            Some(_) => MemberChange::Done,
            None => MemberChange::NotFound,
        })
    }

    async fn insert_invitation(
        &self,
        invitation: &Invitation,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut state = self.state.write();
        let taken = state.invitations.values().any(|i| {
            (i.org_id == invitation.org_id && i.email == invitation.email && i.is_pending(now))
                || i.token_hash == invitation.token_hash
                || i.id == invitation.id
        });
        if taken {
            return Err(StoreError::Conflict("invitation"));
        }
        state
            .invitations
            .insert(invitation.id.clone(), invitation.clone());
        Ok(())
    }

    async fn find_invitation_by_token(&self, hash: &TokenHash) -> StoreResult<Option<Invitation>> {
        let state = self.state.read();
        Ok(state
            .invitations
            .values()
            .find(|i| i.token_hash == *hash)
            .cloned())
    }

    async fn list_invitations(
        &self,
        org_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Invitation>> {
        let state = self.state.read();
        let mut list: Vec<Invitation> = state
            .invitations
            .values()
            .filter(|i| i.org_id == org_id && i.is_pending(now))
            .cloned()
            .collect();
        list.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(list)
    }

    async fn revoke_invitation(&self, org_id: &str, id: &str) -> StoreResult<bool> {
        let mut state = self.state.write();
        Ok(match state.invitations.get_mut(id) {
            Some(i) if i.org_id == org_id && i.state == InvitationState::Pending => {
                i.state = InvitationState::Revoked;
                true
            }
            _ => false,
        })
    }

    async fn accept_invitation(
        &self,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Invitation>> {
        let mut state = self.state.write();
        let Some(invitation) = state
            .invitations
            .values_mut()
            .find(|i| i.token_hash == *hash && i.is_pending(now))
        else {
            return Ok(None);
        };
        invitation.state = InvitationState::Accepted;
        Ok(Some(invitation.clone()))
    }

    async fn insert_org_role(&self, role: &OrgRole) -> StoreResult<()> {
        let mut state = self.state.write();
        let key = (role.org_id.clone(), role.name.clone());
        if state.org_roles.contains_key(&key) {
            return Err(StoreError::Conflict("organization role"));
        }
        state.org_roles.insert(key, role.clone());
        Ok(())
    }

    async fn list_org_roles(&self, org_id: &str) -> StoreResult<Vec<OrgRole>> {
        let state = self.state.read();
        Ok(state
            .org_roles
            .values()
            .filter(|r| r.org_id == org_id)
            .cloned()
            .collect())
    }

    async fn update_org_role(&self, role: &OrgRole) -> StoreResult<bool> {
        let mut state = self.state.write();
        let key = (role.org_id.clone(), role.name.clone());
        let Some(stored) = state.org_roles.get_mut(&key) else {
            return Ok(false);
        };
        stored.description.clone_from(&role.description);
        stored.permissions.clone_from(&role.permissions);
        stored.updated_at = role.updated_at;
        Ok(true)
    }

    async fn delete_org_role(&self, org_id: &str, name: &str) -> StoreResult<bool> {
        let mut state = self.state.write();
        if state
            .org_roles
            .remove(&(org_id.to_owned(), name.to_owned()))
            .is_none()
        {
            return Ok(false);
        }
        for member in state.members.values_mut() {
            if member.org_id == org_id {
                member.roles.retain(|r| r != name);
            }
        }
        Ok(true)
    }
}

//! Run-time roles in memory: definitions by name, assignments on the users.

use async_trait::async_trait;

use super::MemoryStore;
use crate::{
    store::{Role, RoleStore, StoreError, StoreResult},
    user::UserId,
};

#[async_trait]
impl RoleStore for MemoryStore {
    async fn insert_role(&self, role: &Role) -> StoreResult<()> {
        let mut state = self.state.write();
        if state.roles.contains_key(&role.name) {
            return Err(StoreError::Conflict("role"));
        }
        state.roles.insert(role.name.clone(), role.clone());
        Ok(())
    }

    async fn find_roles(&self, names: &[String]) -> StoreResult<Vec<Role>> {
        let state = self.state.read();
        Ok(names
            .iter()
            .filter_map(|name| state.roles.get(name).cloned())
            .collect())
    }

    async fn list_roles(&self) -> StoreResult<Vec<Role>> {
        Ok(self.state.read().roles.values().cloned().collect())
    }

    async fn update_role(&self, role: &Role) -> StoreResult<bool> {
        let mut state = self.state.write();
        let Some(stored) = state.roles.get_mut(&role.name) else {
            return Ok(false);
        };
        stored.description.clone_from(&role.description);
        stored.permissions.clone_from(&role.permissions);
        stored.updated_at = role.updated_at;
        Ok(true)
    }

    async fn delete_role(&self, name: &str) -> StoreResult<bool> {
        Ok(self.state.write().roles.remove(name).is_some())
    }

    async fn add_user_role(&self, user: &UserId, role: &str) -> StoreResult<bool> {
        let mut state = self.state.write();
        let Some(user) = state.users.get_mut(user) else {
            return Ok(false);
        };
        if !user.roles.iter().any(|r| r == role) {
            user.roles.push(role.to_owned());
        }
        Ok(true)
    }

    async fn remove_user_role(&self, user: &UserId, role: &str) -> StoreResult<bool> {
        let mut state = self.state.write();
        let Some(user) = state.users.get_mut(user) else {
            return Ok(false);
        };
        user.roles.retain(|r| r != role);
        Ok(true)
    }

    async fn remove_role_from_users(&self, role: &str) -> StoreResult<u64> {
        let mut state = self.state.write();
        let mut held = 0;
        for user in state.users.values_mut() {
            let before = user.roles.len();
            user.roles.retain(|r| r != role);
            if user.roles.len() != before {
                held += 1;
            }
        }
        Ok(held)
    }
}

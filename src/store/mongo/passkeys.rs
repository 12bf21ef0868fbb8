//! Passkeys on MongoDB: collection `passkeys`, one document per credential
//! with the credential id as `_id` (one credential, one account), indexed
//! by `user_id`; a use is one `updateOne` with the last accepted signature
//! counter in its filter.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use mongodb::bson::{self, doc};
use serde::{Deserialize, Serialize};

use super::{backend, chrono, date, map_err, MongoStore};
use crate::{
    store::{PasskeyRecord, PasskeyStore, StoreError, StoreResult},
    user::UserId,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct PasskeyDoc {
    /// The credential id.
    #[serde(rename = "_id")]
    id: String,
    user_id: String,
    name: String,
    /// The credential as JSON text (kept byte for byte).
    credential: String,
    counter: i64,
    created_at: bson::DateTime,
    #[serde(default)]
    last_used_at: Option<bson::DateTime>,
}

impl PasskeyDoc {
    fn of(passkey: &PasskeyRecord) -> StoreResult<Self> {
        Ok(Self {
            id: passkey.id.clone(),
            user_id: passkey.user_id.to_string(),
            name: passkey.name.clone(),
            credential: serde_json::to_string(&passkey.credential).map_err(backend)?,
            counter: i64::from(passkey.counter),
            created_at: date(passkey.created_at),
            last_used_at: passkey.last_used_at.map(date),
        })
    }

    pub(super) fn into_record(self) -> StoreResult<PasskeyRecord> {
        let mut record = PasskeyRecord::new(
            self.id,
            UserId::new(self.user_id),
            self.name,
            serde_json::from_str(&self.credential).map_err(backend)?,
            u32::try_from(self.counter).unwrap_or(u32::MAX),
            chrono(self.created_at),
        );
        record.last_used_at = self.last_used_at.map(chrono);
        Ok(record)
    }
}

#[async_trait]
impl PasskeyStore for MongoStore {
    async fn insert_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<()> {
        self.passkeys
            .insert_one(PasskeyDoc::of(passkey)?)
            .await
            .map_err(|err| match map_err(err) {
                StoreError::Conflict(_) => StoreError::Conflict("passkey"),
                other => other,
            })?;
        Ok(())
    }

    async fn find_passkey(&self, id: &str) -> StoreResult<Option<PasskeyRecord>> {
        self.passkeys
            .find_one(doc! { "_id": id })
            .await
            .map_err(map_err)?
            .map(PasskeyDoc::into_record)
            .transpose()
    }

    async fn list_passkeys(&self, user_id: &UserId) -> StoreResult<Vec<PasskeyRecord>> {
        let docs: Vec<PasskeyDoc> = self
            .passkeys
            .find(doc! { "user_id": user_id.as_str() })
            .sort(doc! { "created_at": 1, "_id": 1 })
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        docs.into_iter().map(PasskeyDoc::into_record).collect()
    }

    async fn rename_passkey(&self, user_id: &UserId, id: &str, name: &str) -> StoreResult<bool> {
        let result = self
            .passkeys
            .update_one(
                doc! { "_id": id, "user_id": user_id.as_str() },
                doc! { "$set": { "name": name } },
            )
            .await
            .map_err(map_err)?;
        Ok(result.matched_count == 1)
    }

    async fn use_passkey(
        &self,
        id: &str,
        seen_counter: u32,
        credential: &serde_json::Value,
        counter: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let credential = serde_json::to_string(credential).map_err(backend)?;
        let result = self
            .passkeys
            .update_one(
                doc! { "_id": id, "counter": i64::from(seen_counter) },
                doc! { "$set": {
                    "credential": credential,
                    "counter": i64::from(counter),
                    "last_used_at": date(now),
                } },
            )
            .await
            .map_err(map_err)?;
        Ok(result.matched_count == 1)
    }

    async fn delete_passkey(&self, user_id: &UserId, id: &str) -> StoreResult<bool> {
        let result = self
            .passkeys
            .delete_one(doc! { "_id": id, "user_id": user_id.as_str() })
            .await
            .map_err(map_err)?;
        Ok(result.deleted_count == 1)
    }

    async fn delete_passkeys(&self, user_id: &UserId) -> StoreResult<u64> {
        let result = self
            .passkeys
            .delete_many(doc! { "user_id": user_id.as_str() })
            .await
            .map_err(map_err)?;
        Ok(result.deleted_count)
    }
}

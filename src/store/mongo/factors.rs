//! Second factors on MongoDB: collection `factors`, one document per
//! (user, kind) with `_id` `{user_id}:{kind}`, so "one factor of a kind per
//! user" is the primary key and every use is one `findAndModify` /
//! `updateOne` with the expected state in its filter.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use mongodb::{
    bson::{self, doc, Document},
    options::ReturnDocument,
};
use serde::{Deserialize, Serialize};

use super::{backend, chrono, date, map_err, passkeys::PasskeyDoc, MongoStore};
use crate::{
    factor::Sealed,
    store::{Factor, FactorKind, FactorStore, PasskeyRecord, StoreError, StoreResult},
    token::TokenHash,
    user::UserId,
};

/// The field `list_second_factors` marks passkey documents with.
const PASSKEY_MARK: &str = "__portcullis_passkey";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct FactorDoc {
    /// `{user_id}:{kind}`.
    #[serde(rename = "_id")]
    id: String,
    user_id: String,
    kind: FactorKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret: Option<Sealed>,
    #[serde(default)]
    codes: Vec<String>,
    #[serde(default)]
    last_step: Option<i64>,
    created_at: bson::DateTime,
    #[serde(default)]
    confirmed_at: Option<bson::DateTime>,
    #[serde(default)]
    last_used_at: Option<bson::DateTime>,
}

fn id(user_id: &UserId, kind: FactorKind) -> String {
    format!("{}:{}", user_id.as_str(), kind.as_str())
}

fn step(step: u64) -> i64 {
    i64::try_from(step).unwrap_or(i64::MAX)
}

impl FactorDoc {
    fn of(factor: &Factor) -> Self {
        Self {
            id: id(&factor.user_id, factor.kind),
            user_id: factor.user_id.to_string(),
            kind: factor.kind,
            secret: factor.secret.clone(),
            codes: factor.codes.iter().map(|c| c.as_str().to_owned()).collect(),
            last_step: factor.last_step.map(step),
            created_at: date(factor.created_at),
            confirmed_at: factor.confirmed_at.map(date),
            last_used_at: factor.last_used_at.map(date),
        }
    }

    fn into_factor(self) -> Factor {
        let mut factor = Factor::recovery_codes(
            UserId::new(self.user_id),
            self.codes.into_iter().map(TokenHash::from_hex).collect(),
            chrono(self.created_at),
        );
        factor.kind = self.kind;
        factor.secret = self.secret;
        factor.last_step = self.last_step.map(|s| u64::try_from(s).unwrap_or(0));
        factor.confirmed_at = self.confirmed_at.map(chrono);
        factor.last_used_at = self.last_used_at.map(chrono);
        factor
    }
}

#[async_trait]
impl FactorStore for MongoStore {
    async fn put_pending_factor(&self, factor: &Factor) -> StoreResult<()> {
        let doc = bson::to_document(&FactorDoc::of(factor)).map_err(super::backend)?;
        // Only a pending record matches; with a confirmed one in place the
        // upsert's insert hits the `_id` and fails as a duplicate.
        self.factors
            .clone_with_type::<bson::Document>()
            .replace_one(
                doc! { "_id": id(&factor.user_id, factor.kind), "confirmed_at": null },
                doc,
            )
            .upsert(true)
            .await
            .map_err(|err| match map_err(err) {
                StoreError::Conflict(_) => StoreError::Conflict("factor"),
                other => other,
            })?;
        Ok(())
    }

    async fn confirm_factor(
        &self,
        user_id: &UserId,
        kind: FactorKind,
        secret: &Sealed,
        last_step: u64,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let result = self
            .factors
            .update_one(
                doc! {
                    "_id": id(user_id, kind),
                    "confirmed_at": null,
                    "secret.key_id": secret.key_id.as_str(),
                    "secret.nonce": secret.nonce.as_str(),
                    "secret.ciphertext": secret.ciphertext.as_str(),
                },
                doc! { "$set": {
                    "confirmed_at": date(now),
                    "last_used_at": date(now),
                    "last_step": step(last_step),
                } },
            )
            .await
            .map_err(map_err)?;
        Ok(result.modified_count == 1)
    }

    async fn put_recovery_codes(&self, factor: &Factor) -> StoreResult<()> {
        let doc = FactorDoc::of(factor);
        self.factors
            .replace_one(doc! { "_id": doc.id.as_str() }, &doc)
            .upsert(true)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn insert_recovery_codes(&self, factor: &Factor) -> StoreResult<()> {
        // The `_id` is `{user_id}:recovery_codes`: a second insert is a
        // duplicate key, whoever wins the race.
        self.factors
            .insert_one(FactorDoc::of(factor))
            .await
            .map_err(|err| match map_err(err) {
                StoreError::Conflict(_) => StoreError::Conflict("recovery codes"),
                other => other,
            })?;
        Ok(())
    }

    async fn list_factors(&self, user_id: &UserId) -> StoreResult<Vec<Factor>> {
        let docs: Vec<FactorDoc> = self
            .factors
            .find(doc! { "user_id": user_id.as_str() })
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        let mut factors: Vec<Factor> = docs.into_iter().map(FactorDoc::into_factor).collect();
        factors.sort_by_key(|f| f.kind);
        Ok(factors)
    }

    async fn list_second_factors(
        &self,
        user_id: &UserId,
    ) -> StoreResult<(Vec<Factor>, Vec<PasskeyRecord>)> {
        // One command for both collections; each passkey comes back marked.
        let pipeline = vec![
            doc! { "$match": { "user_id": user_id.as_str() } },
            doc! { "$unionWith": {
                "coll": self.passkeys.name(),
                "pipeline": [
                    { "$match": { "user_id": user_id.as_str() } },
                    { "$addFields": { PASSKEY_MARK: true } },
                ],
            } },
        ];
        let docs: Vec<Document> = self
            .factors
            .clone_with_type::<Document>()
            .aggregate(pipeline)
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        let mut factors = Vec::new();
        let mut passkeys = Vec::new();
        for mut doc in docs {
            if doc.remove(PASSKEY_MARK).is_some() {
                let doc: PasskeyDoc = bson::from_document(doc).map_err(backend)?;
                passkeys.push(doc.into_record()?);
            } else {
                let doc: FactorDoc = bson::from_document(doc).map_err(backend)?;
                factors.push(doc.into_factor());
            }
        }
        factors.sort_by_key(|f| f.kind);
        passkeys.sort_by(|a: &PasskeyRecord, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok((factors, passkeys))
    }

    async fn use_totp_step(
        &self,
        user_id: &UserId,
        at_step: u64,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let at_step = step(at_step);
        let result = self
            .factors
            .update_one(
                doc! {
                    "_id": id(user_id, FactorKind::Totp),
                    "confirmed_at": { "$ne": null },
                    // `null` also matches a record without the field.
                    "$or": [ { "last_step": null }, { "last_step": { "$lt": at_step } } ],
                },
                doc! { "$set": { "last_step": at_step, "last_used_at": date(now) } },
            )
            .await
            .map_err(map_err)?;
        Ok(result.modified_count == 1)
    }

    async fn use_recovery_code(
        &self,
        user_id: &UserId,
        code: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<usize>> {
        let left = self
            .factors
            .find_one_and_update(
                doc! { "_id": id(user_id, FactorKind::RecoveryCodes), "codes": code.as_str() },
                doc! { "$pull": { "codes": code.as_str() }, "$set": { "last_used_at": date(now) } },
            )
            .return_document(ReturnDocument::After)
            .await
            .map_err(map_err)?;
        Ok(left.map(|doc| doc.codes.len()))
    }

    async fn delete_factor(&self, user_id: &UserId, kind: FactorKind) -> StoreResult<bool> {
        let result = self
            .factors
            .delete_one(doc! { "_id": id(user_id, kind) })
            .await
            .map_err(map_err)?;
        Ok(result.deleted_count == 1)
    }

    async fn delete_factors(&self, user_id: &UserId) -> StoreResult<u64> {
        let result = self
            .factors
            .delete_many(doc! { "user_id": user_id.as_str() })
            .await
            .map_err(map_err)?;
        Ok(result.deleted_count)
    }
}

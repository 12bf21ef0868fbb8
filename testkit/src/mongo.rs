use std::sync::Arc;

use portcullis::{MongoConfig, MongoStore};

/// The environment variable naming the test server's connection string.
pub const MONGODB_URI_VAR: &str = "PORTCULLIS_TEST_MONGODB_URI";

/// The test server's connection string.
///
/// # Panics
///
/// When the variable is not set: MongoDB tests never skip silently.
pub fn mongo_uri() -> String {
    std::env::var(MONGODB_URI_VAR).unwrap_or_else(|_| {
        panic!(
            "{MONGODB_URI_VAR} is not set. Run `scripts/test.sh`, which installs and starts \
             SecantusDB (a MongoDB wire-compatible server) and sets it, or start any MongoDB \
             6+ server and export {MONGODB_URI_VAR}=mongodb://127.0.0.1:PORT/?directConnection=true"
        )
    })
}

/// A `MongoStore` on a fresh, uniquely named database of the test server,
/// with its indexes created.
///
/// # Panics
///
/// When the variable is missing or the server cannot be reached.
pub async fn mongo_store() -> Arc<MongoStore> {
    let config = MongoConfig::new(mongo_uri())
        .with_database(format!("pt_{}", uuid::Uuid::new_v4().simple()));
    match MongoStore::connect(&config).await {
        Ok(store) => Arc::new(store),
        Err(err) => panic!(
            "cannot reach the test MongoDB server at {}: {err:?}",
            config.uri
        ),
    }
}

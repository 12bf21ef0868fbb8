//! The store conformance suite on every built-in store. The MongoDB half
//! needs `PORTCULLIS_TEST_MONGODB_URI` (set by `scripts/test.sh`) and fails
//! with instructions without it.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod memory {
    use std::sync::Arc;

    use portcullis::{MemoryStore, Store};

    async fn make() -> Arc<dyn Store> {
        Arc::new(MemoryStore::new())
    }

    portcullis_testkit::store_conformance_tests!(make);
}

mod mongo {
    use std::sync::Arc;

    use portcullis::Store;

    async fn make() -> Arc<dyn Store> {
        portcullis_testkit::mongo_store().await
    }

    portcullis_testkit::store_conformance_tests!(make);
}

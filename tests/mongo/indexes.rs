//! Every query MongoStore sends is served by an index.
//!
//! The queries are not listed by hand: the whole store conformance suite
//! runs on stores under the driver's command monitoring, so every store
//! method sends its real commands, and each filter they carry (`find`,
//! `findAndModify`, `update`, `delete`, `aggregate`'s first `$match`, a
//! `$unionWith` pipeline's `$match`, a `$lookup`'s foreign field) is
//! checked twice:
//!
//! 1. **Declared index.** Against the indexes the store created (read
//!    back with `listIndexes`): the filter constrains the leading field of
//!    one of them by equality, `$in` or a range (each branch of a
//!    top-level `$or` too), or the command hints an existing index, or an
//!    empty filter sorts on an index's leading keys. Server-independent.
//! 2. **The server's plan.** `explain` of a `find` with the same filter,
//!    sort and hint (update and delete commands are explained as that
//!    `find`: SecantusDB's `explain` of them ignores the filter); a
//!    `COLLSCAN` anywhere in the winning plan fails. SecantusDB (detected
//!    by `secantusVersion` in `buildInfo`) plans an index only for a filter
//!    on one field or a compound equality: a multi-field filter with a
//!    residual predicate (`{_id, revoked_at: null}`) is a collection scan
//!    there, where mongod uses the index. On SecantusDB such a filter's
//!    `COLLSCAN` is therefore excused when check 1 names its index, and
//!    reported; a single-field filter's `COLLSCAN` still fails. Against a
//!    real mongod every `COLLSCAN` fails.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use futures_util::{future::join_all, TryStreamExt};
use mongodb::{
    bson::{doc, Bson, Document},
    event::{command::CommandEvent, EventHandler},
    options::ClientOptions,
    Client,
};
use parking_lot::Mutex;
use portcullis::{MongoConfig, MongoStore, Store};

/// A command as the store sent it.
#[derive(Debug, Clone)]
struct Sent {
    db: String,
    name: String,
    command: Document,
}

/// One filter to check, where it came from.
#[derive(Debug, Clone)]
struct Query {
    db: String,
    collection: String,
    filter: Document,
    sort: Option<Document>,
    hint: Option<Bson>,
    origin: String,
}

/// Commands that carry no query to plan.
const NO_QUERY: [&str; 11] = [
    "insert",
    "createIndexes",
    "ping",
    "hello",
    "isMaster",
    "getMore",
    "killCursors",
    "endSessions",
    "listIndexes",
    "dropDatabase",
    "buildInfo",
];

fn get_doc(doc: &Document, key: &str) -> Option<Document> {
    doc.get_document(key).ok().cloned()
}

/// The queries of one command; panics on a command it does not know, so
/// a new kind of command cannot slip past unchecked.
fn queries_of(sent: &Sent) -> Vec<Query> {
    let c = &sent.command;
    let coll = |key: &str| c.get_str(key).unwrap_or_default().to_owned();
    let query = |collection: String, filter: Document, sort, hint, what: &str| Query {
        db: sent.db.clone(),
        collection,
        filter,
        sort,
        hint,
        origin: format!("{what} on {}", sent.name),
    };
    match sent.name.as_str() {
        n if NO_QUERY.contains(&n) => Vec::new(),
        "find" => vec![query(
            coll("find"),
            get_doc(c, "filter").unwrap_or_default(),
            get_doc(c, "sort"),
            c.get("hint").cloned(),
            "filter",
        )],
        "findAndModify" => vec![query(
            coll("findAndModify"),
            get_doc(c, "query").unwrap_or_default(),
            get_doc(c, "sort"),
            c.get("hint").cloned(),
            "query",
        )],
        "update" | "delete" => {
            let key = if sent.name == "update" {
                "updates"
            } else {
                "deletes"
            };
            c.get_array(key)
                .expect("statements")
                .iter()
                .filter_map(Bson::as_document)
                .map(|s| {
                    query(
                        coll(&sent.name),
                        get_doc(s, "q").unwrap_or_default(),
                        None,
                        s.get("hint").cloned(),
                        "q",
                    )
                })
                .collect()
        }
        "aggregate" => {
            let stages: Vec<Document> = c
                .get_array("pipeline")
                .expect("pipeline")
                .iter()
                .filter_map(|s| s.as_document().cloned())
                .collect();
            let first = stages
                .first()
                .and_then(|s| get_doc(s, "$match"))
                .unwrap_or_default();
            let mut out = vec![query(
                coll("aggregate"),
                first,
                None,
                c.get("hint").cloned(),
                "first $match",
            )];
            for stage in &stages {
                if let Some(union) = get_doc(stage, "$unionWith") {
                    let inner = union
                        .get_array("pipeline")
                        .ok()
                        .and_then(|p| p.first())
                        .and_then(Bson::as_document)
                        .and_then(|s| get_doc(s, "$match"))
                        .unwrap_or_default();
                    out.push(query(
                        union.get_str("coll").expect("coll").to_owned(),
                        inner,
                        None,
                        None,
                        "$unionWith $match",
                    ));
                }
                if let Some(lookup) = get_doc(stage, "$lookup") {
                    let field = lookup.get_str("foreignField").expect("foreignField");
                    out.push(query(
                        lookup.get_str("from").expect("from").to_owned(),
                        doc! { field: "value" },
                        None,
                        None,
                        "$lookup foreignField",
                    ));
                }
            }
            out
        }
        other => panic!("a command this test does not check: {other} {c}"),
    }
}

/// The filter's shape: field names and operators, values by type.
fn shape(value: &Bson) -> String {
    match value {
        Bson::Document(d) => {
            let parts: Vec<String> = d
                .iter()
                .map(|(k, v)| format!("{k}: {}", shape(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        Bson::Array(items) => {
            let parts: BTreeSet<String> = items.iter().map(shape).collect();
            format!("[{}]", parts.into_iter().collect::<Vec<_>>().join(", "))
        }
        other => format!("{:?}", other.element_type()),
    }
}

/// An index: its name and key fields in order.
type Index = (String, Vec<String>);

/// Whether a field condition is one an index bounds (equality, `$in`, a
/// range), not a residual such as `$ne` or `$exists`.
fn bounds(condition: &Bson) -> bool {
    match condition {
        Bson::Document(ops) if ops.keys().any(|k| k.starts_with('$')) => ops
            .keys()
            .any(|k| ["$eq", "$in", "$gt", "$gte", "$lt", "$lte"].contains(&k.as_str())),
        _ => true,
    }
}

/// The declared index that serves `query`, if any.
fn declared(query: &Query, indexes: &[Index]) -> Option<String> {
    if let Some(hint) = &query.hint {
        let named = match hint {
            Bson::String(name) => indexes.iter().find(|(n, _)| n == name),
            Bson::Document(keys) => {
                let keys: Vec<String> = keys.keys().cloned().collect();
                indexes.iter().find(|(_, k)| *k == keys)
            }
            _ => None,
        };
        return named.map(|(n, _)| format!("{n} (hinted)"));
    }
    if query.filter.is_empty() {
        let sort: Vec<String> = query.sort.iter().flat_map(|s| s.keys().cloned()).collect();
        return indexes
            .iter()
            .find(|(_, k)| !sort.is_empty() && k.starts_with(&sort))
            .map(|(n, _)| format!("{n} (sort)"));
    }
    let by_field = |filter: &Document| -> Option<String> {
        filter.iter().find_map(|(field, condition)| {
            if field.starts_with('$') || !bounds(condition) {
                return None;
            }
            indexes
                .iter()
                .find(|(_, keys)| keys.first() == Some(field))
                .map(|(n, _)| n.clone())
        })
    };
    if let Some(name) = by_field(&query.filter) {
        return Some(name);
    }
    // A top-level `$or`: every branch on an index.
    let branches = query.filter.get_array("$or").ok()?;
    let names: Option<Vec<String>> = branches
        .iter()
        .map(|b| b.as_document().and_then(by_field))
        .collect();
    names.map(|n| n.join(" | "))
}

/// Whether a plan tree has a `COLLSCAN` stage anywhere.
fn has_collscan(plan: &Bson) -> bool {
    match plan {
        Bson::Document(d) => d.get_str("stage") == Ok("COLLSCAN") || d.values().any(has_collscan),
        Bson::Array(items) => items.iter().any(has_collscan),
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_store_query_is_served_by_an_index() {
    let uri = portcullis_testkit::mongo_uri();
    let sent: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let seen = sent.clone();
    let mut options = ClientOptions::parse(&uri).await.unwrap();
    options.command_event_handler = Some(EventHandler::callback(move |event: CommandEvent| {
        if let CommandEvent::Started(started) = event {
            seen.lock().push(Sent {
                db: started.db,
                name: started.command_name,
                command: started.command,
            });
        }
    }));
    let checks = portcullis_testkit::conformance::all();
    assert!(checks.len() > 25, "the whole suite: {}", checks.len());
    let prefix = format!("pt_ix_{}", uuid::Uuid::new_v4().simple());
    let runs = checks.into_iter().enumerate().map(|(i, (name, check))| {
        let options = options.clone();
        let db = format!("{prefix}_{i}");
        let uri = uri.clone();
        async move {
            let store =
                MongoStore::connect_with_options(options, &MongoConfig::new(uri).with_database(db))
                    .await
                    .unwrap();
            let store: Arc<dyn Store> = Arc::new(store);
            // Each check in its own task: a failure names the check.
            tokio::spawn(check(store))
                .await
                .unwrap_or_else(|e| panic!("conformance check {name}: {e}"));
        }
    });
    join_all(runs).await;
    let sent = std::mem::take(&mut *sent.lock());
    let queries: Vec<Query> = sent
        .iter()
        .filter(|s| s.db.starts_with(&prefix))
        .flat_map(queries_of)
        .collect();

    // Every collection of the store is queried.
    let collections: BTreeSet<&str> = queries.iter().map(|q| q.collection.as_str()).collect();
    for name in [
        "users",
        "sessions",
        "one_time_tokens",
        "linked_accounts",
        "rate_limits",
        "factors",
        "passkeys",
    ] {
        assert!(
            collections.contains(format!("portcullis_{name}").as_str()),
            "no query on {name}: {collections:?}"
        );
    }

    // One check per (collection, shape, sort, hint).
    let mut unique: BTreeMap<String, Query> = BTreeMap::new();
    for q in queries {
        let key = format!(
            "{} {} sort {} hint {}",
            q.collection,
            shape(&Bson::Document(q.filter.clone())),
            q.sort
                .as_ref()
                .map_or("-".into(), |s| shape(&Bson::Document(s.clone()))),
            q.hint.as_ref().map_or("-".into(), ToString::to_string),
        );
        unique.entry(key).or_insert(q);
    }

    let plain = Client::with_uri_str(&uri).await.unwrap();
    let build = plain
        .database("admin")
        .run_command(doc! { "buildInfo": 1 })
        .await
        .unwrap();
    let secantus = build.contains_key("secantusVersion");
    let mut index_cache: BTreeMap<(String, String), Vec<Index>> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut report = Vec::new();
    for (key, q) in &unique {
        let db = plain.database(&q.db);
        let indexes = match index_cache.get(&(q.db.clone(), q.collection.clone())) {
            Some(found) => found.clone(),
            None => {
                let specs: Vec<Document> = db
                    .collection::<Document>(&q.collection)
                    .list_indexes()
                    .await
                    .unwrap()
                    .map_ok(|model| {
                        let name = model.options.and_then(|o| o.name).unwrap_or_default();
                        let mut d = doc! { "name": name };
                        d.insert("key", model.keys);
                        d
                    })
                    .try_collect()
                    .await
                    .unwrap();
                let found: Vec<Index> = specs
                    .iter()
                    .map(|s| {
                        (
                            s.get_str("name").unwrap_or_default().to_owned(),
                            s.get_document("key").unwrap().keys().cloned().collect(),
                        )
                    })
                    .chain(std::iter::once(("_id_".to_owned(), vec!["_id".to_owned()])))
                    .collect();
                index_cache.insert((q.db.clone(), q.collection.clone()), found.clone());
                found
            }
        };
        let index = declared(q, &indexes);
        let mut find = doc! { "find": &q.collection, "filter": q.filter.clone() };
        if let Some(sort) = &q.sort {
            find.insert("sort", sort.clone());
        }
        if let Some(hint) = &q.hint {
            find.insert("hint", hint.clone());
        }
        let explained = db
            .run_command(doc! { "explain": find, "verbosity": "queryPlanner" })
            .await
            .unwrap_or_else(|e| panic!("explain {key}: {e}"));
        let plan = explained
            .get_document("queryPlanner")
            .and_then(|p| p.get_document("winningPlan"))
            .unwrap_or_else(|_| panic!("explain {key} answered no winning plan: {explained}"));
        let collscan = has_collscan(&Bson::Document(plan.clone()));
        // SecantusDB's planner handles one field, or a compound equality.
        let beyond_secantus_planner =
            q.filter.len() > 1 || q.filter.keys().any(|k| k.starts_with('$'));
        let verdict = match (&index, collscan) {
            (None, _) => "FAIL: no declared index serves it",
            (Some(_), false) => "index scan",
            (Some(_), true) if secantus && beyond_secantus_planner => {
                "COLLSCAN on SecantusDB (its planner skips multi-field filters); declared index"
            }
            (Some(_), true) => "FAIL: COLLSCAN",
        };
        let line = format!(
            "{key}  [{}]  index: {}  plan: {verdict}",
            q.origin,
            index.as_deref().unwrap_or("none")
        );
        if verdict.starts_with("FAIL") {
            failures.push(line.clone());
        }
        report.push(line);
    }
    println!(
        "{} query shapes checked (server: {}):\n{}",
        unique.len(),
        if secantus { "SecantusDB" } else { "mongod" },
        report.join("\n")
    );
    assert!(
        failures.is_empty(),
        "queries not served by an index:\n{}",
        failures.join("\n")
    );
    for db in unique
        .values()
        .map(|q| q.db.clone())
        .collect::<BTreeSet<_>>()
    {
        plain.database(&db).drop().await.ok();
    }
}

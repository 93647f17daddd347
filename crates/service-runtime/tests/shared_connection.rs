//! `redis::SharedConnection` against the real Redis (`TEST_REDIS_URL`): one connection per
//! thread, reused on that thread, replaced after it breaks.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use service_runtime::redis::{RedisSettings, SharedConnection, pool};

fn shared() -> SharedConnection {
    let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let env: HashMap<String, String> = [("REDIS_URL".to_owned(), url)].into_iter().collect();
    SharedConnection::new(pool(&RedisSettings::from_env(&env).unwrap()).unwrap())
}

async fn client_id(shared: &SharedConnection) -> i64 {
    shared.query(redis::cmd("CLIENT").arg("ID")).await.unwrap()
}

/// The connection ids two calls on a fresh thread of its own saw.
fn ids_on_a_thread(shared: SharedConnection) -> (i64, i64) {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async { (client_id(&shared).await, client_id(&shared).await) })
    })
    .join()
    .unwrap()
}

#[test]
fn each_thread_keeps_its_own_connection() {
    let shared = shared();
    let (a1, a2) = ids_on_a_thread(shared.clone());
    let (b1, b2) = ids_on_a_thread(shared);
    assert_eq!(a1, a2, "a thread reuses its connection");
    assert_eq!(b1, b2, "a thread reuses its connection");
    assert_ne!(a1, b1, "threads do not share one");
}

#[tokio::test]
async fn a_broken_connection_is_replaced_after_the_failure_is_reported() {
    let shared = shared();
    let id = client_id(&shared).await;
    let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut admin = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(killed, 1);
    // The first command after the kill may fail (and reports itself); the next gets a
    // fresh connection.
    let first: anyhow::Result<i64> = shared.query(redis::cmd("CLIENT").arg("ID")).await;
    let next = client_id(&shared).await;
    assert_ne!(
        next, id,
        "still on the killed connection (first try: {first:?})"
    );
}

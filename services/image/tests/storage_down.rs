//! When object storage goes away: readiness says so, uploads answer 503 and leave no row,
//! and the service carries on once it is back. Runs its own moto (`MOTO_BIN`, exported by
//! scripts/test-all) so it can stop it.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;

use common::{create_bucket, jpeg, spawn};

fn moto_bin() -> String {
    std::env::var("MOTO_BIN").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/dailyfeed/moto-5.2.5/bin/moto_server")
    })
}

async fn start_moto(port: u16) -> tokio::process::Child {
    let child = tokio::process::Command::new(moto_bin())
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {} ({e}); run scripts/test-all", moto_bin()));
    test_harness::eventually("moto to listen", 60, || async move {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
    })
    .await;
    child
}

#[tokio::test]
async fn uploads_answer_503_and_store_nothing_while_object_storage_is_down() {
    let port = test_harness::closed_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut moto = start_moto(port).await;
    create_bucket(&endpoint, "down-test").await;
    let stack = spawn(&[("S3_ENDPOINT", &endpoint), ("S3_BUCKET", "down-test")]).await;
    let token = stack.token(60).await;
    let kept = stack.stored(&token, jpeg(40, 40), "post").await["id"]
        .as_i64()
        .unwrap();

    moto.kill().await.unwrap();
    test_harness::platform::assert_not_ready_naming(&stack.base, "object_store").await;
    let res = stack.upload(&token, jpeg(41, 40), "post").await;
    assert_eq!(res.status(), 503);
    let body = test_harness::platform::assert_json_error(res, "dependency_unavailable").await;
    assert!(
        !body["message"].as_str().unwrap().contains("127.0.0.1"),
        "no internals: {body}"
    );
    assert_eq!(stack.image_rows().await, 1, "no row for the failed upload");
    let res = stack.get(&format!("/api/v1/images/{kept}")).await;
    assert_eq!(res.status(), 503);

    // Back (empty: moto keeps nothing): new uploads work again.
    let _moto = start_moto(port).await;
    create_bucket(&endpoint, "down-test").await;
    test_harness::platform::wait_ready(&stack.base).await;
    stack.stored(&token, jpeg(42, 40), "post").await;
    stack.stop().await;
}

//! Signing keys: rotation, the JWKS, and tokens that must be refused.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{member_env, spawn};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use member::domain::keys::KeyRing;
use serde_json::{Value, json};
use service_runtime::postgres::connect_lazy;
use test_harness::platform::assert_json_error;

fn key_ring(env: &test_harness::TestEnv) -> Arc<KeyRing> {
    let config = member::Config::from_env(env.vars()).unwrap();
    let db = connect_lazy(&config.database).unwrap();
    Arc::new(KeyRing::new(
        db,
        &config.tokens.master_key,
        config.tokens.access_ttl,
        config.tokens.rotation,
    ))
}

async fn jwks(app: &common::App) -> Vec<Value> {
    let res = app.get("/.well-known/jwks.json").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    res.json::<Value>().await.unwrap()["keys"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn first_start_creates_a_key_and_publishes_it() {
    let app = spawn(&[]).await;
    let keys = jwks(&app).await;
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str()
        ),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
    );
    assert_eq!(key["status"], "active");
    assert!(key.get("d").is_none(), "never the private key");
    app.stop().await;
}

#[tokio::test]
async fn two_replicas_rotating_at_once_create_one_key() {
    let env = member_env(&[("JWT_KEY_ROTATION_SECONDS", "1")]).await;
    member::migrate(member::Config::from_env(env.vars()).unwrap())
        .await
        .unwrap();
    let (a, b) = (key_ring(&env), key_ring(&env));
    assert!(
        a.rotate_if_due().await.unwrap(),
        "an empty table gets its first key"
    );
    assert!(!b.rotate_if_due().await.unwrap(), "not due yet");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..3 {
        // Two replicas' schedulers tick at the same moment.
        let (ra, rb) = tokio::join!(a.rotate_if_due(), b.rotate_if_due());
        let created = [ra.unwrap(), rb.unwrap()].iter().filter(|c| **c).count();
        assert_eq!(created, 1, "exactly one replica rotates");
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let keys = a.jwks().await.unwrap().keys;
    assert_eq!(keys.len(), 4, "first key + three rotations: {keys:?}");
    assert_eq!(
        keys.iter()
            .filter(|k| k.status == auth::KeyStatus::Active)
            .count(),
        1
    );
}

#[tokio::test]
async fn a_retired_key_still_verifies_asks_for_refresh_and_leaves_the_jwks_after_its_tokens_expire()
{
    let app = spawn(&[
        ("JWT_KEY_ROTATION_SECONDS", "2"),
        ("ACCESS_TOKEN_TTL_SECONDS", "4"),
        ("JWKS_CACHE_SECONDS", "1"),
        ("JWKS_MIN_REFETCH_SECONDS", "0"),
    ])
    .await;
    let (_, access, _) = app.member("rotate").await;
    let old_kid = jwks(&app).await[0]["kid"].as_str().unwrap().to_owned();
    let res = app.get_as("/api/v1/members/me", &access).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("x-token-refresh-needed").is_none());

    // Wait for the rotation.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let keys = jwks(&app).await;
        if keys
            .iter()
            .any(|k| k["kid"] == old_kid.as_str() && k["status"] == "retired")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no rotation: {keys:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A token of the new key, and the old one (the verifier's key cache refreshes every 1 s
    // here; in production JWKS_CACHE_SECONDS bounds how soon verifiers learn of a rotation).
    let (_, fresh, _) = app.member("fresh").await;
    let res = app.get_as("/api/v1/members/me", &fresh).await;
    assert_eq!(res.status(), 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let res = app.get_as("/api/v1/members/me", &access).await;
    assert_eq!(res.status(), 200, "a token of a retired key still works");
    assert_eq!(res.headers()["x-token-refresh-needed"], "true");

    // Once every token the old key signed has expired, the key leaves the set.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while jwks(&app)
        .await
        .iter()
        .any(|k| k["kid"] == old_kid.as_str())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the retired key never left the JWKS"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn forged_and_malformed_tokens_are_refused() {
    let app = spawn(&[]).await;
    let (member_id, access, _) = app.member("forge").await;
    let keys = jwks(&app).await;
    let kid = keys[0]["kid"].as_str().unwrap().to_owned();
    let public = URL_SAFE_NO_PAD
        .decode(keys[0]["x"].as_str().unwrap())
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": member_id.to_string(), "jti": "forged", "iat": now, "exp": now + 600, "typ": "access", "role": "ADMIN"});

    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": kid})),
        b64(&claims)
    );

    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some(kid.clone());
    let hs256_with_public_key =
        jsonwebtoken::encode(&hs_header, &claims, &EncodingKey::from_secret(&public)).unwrap();

    let seed: [u8; 32] = rand::random();
    let der = [
        &[
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ][..],
        &seed,
    ]
    .concat();
    let mut own_header = Header::new(Algorithm::EdDSA);
    own_header.kid = Some(kid.clone());
    let signed_by_another_key =
        jsonwebtoken::encode(&own_header, &claims, &EncodingKey::from_ed_der(&der)).unwrap();
    own_header.kid = Some("no-such-key".into());
    let unknown_kid =
        jsonwebtoken::encode(&own_header, &claims, &EncodingKey::from_ed_der(&der)).unwrap();

    let parts: Vec<&str> = access.split('.').collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["role"] = json!("ADMIN");
    let tampered = format!("{}.{}.{}", parts[0], b64(&payload), parts[2]);

    let ring = key_ring(&app.env);
    let mut refresh_typed = claims.clone();
    refresh_typed["typ"] = json!("refresh");
    let wrong_typ = ring.sign_value(&refresh_typed).await.unwrap();
    let mut no_exp = claims.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    let missing_exp = ring.sign_value(&no_exp).await.unwrap();
    let mut mhdr = Header::new(Algorithm::EdDSA);
    mhdr.kid = None;
    let no_kid = jsonwebtoken::encode(&mhdr, &claims, &EncodingKey::from_ed_der(&der)).unwrap();

    for (name, token) in [
        ("alg none", alg_none.as_str()),
        ("HS256 keyed with the public key", &hs256_with_public_key),
        (
            "signed by another key under our kid",
            &signed_by_another_key,
        ),
        ("unknown kid", &unknown_kid),
        ("tampered payload", &tampered),
        ("typ refresh", &wrong_typ),
        ("no exp", &missing_exp),
        ("no kid", &no_kid),
        ("garbage", "not.a.jwt"),
        ("empty segments", ".."),
    ] {
        let res = app.get_as("/api/v1/members/me", token).await;
        assert_eq!(res.status(), 401, "{name}");
        assert_json_error(res, "invalid_token").await;
    }
    let res = app
        .client
        .get(app.url("/api/v1/members/me"))
        .header("authorization", format!("Basic {access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "wrong scheme");
    assert_eq!(
        app.get_as("/api/v1/members/me", &access).await.status(),
        200,
        "the real token still works"
    );
    app.stop().await;
}

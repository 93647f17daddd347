//! What a verifier refuses besides a bad signature: tokens that live too long or were issued
//! in the future, and a logged-out token inside the clock-skew leeway after its `exp`
//! (the blacklist on the real Redis).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use auth::{AuthError, AuthSettings, Blacklist, Jwk, JwkSet, JwksSource, KeyStatus, Verifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use service_runtime::redis::{RedisSettings, pool};
use test_harness::TestEnv;

/// The issuer's key set, as member's JWKS would publish it.
struct Published(JwkSet);

#[async_trait::async_trait]
impl JwksSource for Published {
    async fn fetch(&self) -> anyhow::Result<JwkSet> {
        Ok(self.0.clone())
    }
}

const SEED: [u8; 32] = [9; 32];

fn key_set() -> JwkSet {
    let public = ed25519_dalek::SigningKey::from_bytes(&SEED)
        .verifying_key()
        .to_bytes();
    JwkSet {
        keys: vec![Jwk::ed25519(
            "k1",
            &URL_SAFE_NO_PAD.encode(public),
            KeyStatus::Active,
        )],
    }
}

fn sign(claims: &serde_json::Value) -> String {
    let der = [
        &[
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ][..],
        &SEED,
    ]
    .concat();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("k1".into());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&der)).unwrap()
}

fn claims(jti: &str, iat: i64, exp: i64) -> serde_json::Value {
    serde_json::json!({"sub": "42", "jti": jti, "iat": iat, "exp": exp, "typ": "access", "role": "USER"})
}

fn at_epoch(jti: &str, epoch: u64) -> serde_json::Value {
    let t = now();
    let mut claims = claims(jti, t, t + 600);
    claims["epoch"] = epoch.into();
    claims
}

fn settings(leeway: u64) -> AuthSettings {
    let env = TestEnv::new().set("JWT_LEEWAY_SECONDS", leeway.to_string());
    AuthSettings::from_env(env.vars()).unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn tokens_living_longer_than_the_maximum_or_issued_in_the_future_are_refused() {
    let verifier = Verifier::new(Published(key_set()), settings(0), None);
    assert_eq!(settings(0).max_lifetime, Duration::from_secs(900));
    let t = now();
    assert!(
        verifier
            .verify(&sign(&claims("a", t, t + 900)))
            .await
            .is_ok()
    );
    for (what, token) in [
        ("901 s", sign(&claims("b", t, t + 901))),
        ("a week", sign(&claims("c", t - 60, t + 7 * 86_400))),
        ("issued in an hour", sign(&claims("d", t + 3600, t + 3900))),
        (
            "no iat",
            sign(
                &serde_json::json!({"sub": "42", "jti": "e", "exp": t + 60, "typ": "access", "role": "USER"}),
            ),
        ),
    ] {
        let err = verifier.verify(&token).await.unwrap_err();
        assert!(matches!(err, AuthError::Invalid(_)), "{what}: {err:?}");
    }
    let longer = TestEnv::new().set("JWT_MAX_LIFETIME_SECONDS", "3600");
    let verifier = Verifier::new(
        Published(key_set()),
        AuthSettings::from_env(longer.vars()).unwrap(),
        None,
    );
    assert!(
        verifier
            .verify(&sign(&claims("f", t, t + 3600)))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_logged_out_token_stays_refused_inside_the_leeway_after_its_exp() {
    let env = TestEnv::new().redis();
    let redis = RedisSettings::from_env(env.vars()).unwrap();
    let pool = pool(&redis).unwrap();
    let blacklist = Blacklist::new(pool, &redis.key_prefix);
    let verifier = Verifier::new(Published(key_set()), settings(60), Some(blacklist.clone()));
    // Expired 10 s ago: inside a 60 s leeway the signature still passes.
    let t = now();
    let token = sign(&claims("logged-out", t - 600, t - 10));
    assert!(
        verifier.verify(&token).await.is_ok(),
        "valid within the leeway"
    );
    // Logged out with the token's own exp, as member does.
    blacklist.add("logged-out", t - 10).await.unwrap();
    assert_eq!(
        verifier.verify(&token).await.unwrap_err(),
        AuthError::Revoked
    );
    let err = TestEnv::new().set("JWT_LEEWAY_SECONDS", "301");
    assert_eq!(
        AuthSettings::from_env(err.vars()).unwrap_err().var,
        "JWT_LEEWAY_SECONDS"
    );
}

#[tokio::test]
async fn a_member_wide_revocation_refuses_every_earlier_token_at_once_in_every_process() {
    let env = TestEnv::new().redis();
    let redis = RedisSettings::from_env(env.vars()).unwrap();
    let pool = pool(&redis).unwrap();
    // member (which revokes) and a gateway (which mirrors the blacklist) in other processes.
    let issuer = Blacklist::new(pool.clone(), &redis.key_prefix);
    let mirror = Blacklist::mirrored(pool.clone(), &redis.key_prefix, &redis.url).unwrap();
    let asks_redis = Verifier::new(Published(key_set()), settings(0), Some(issuer.clone()));
    let mirrored = Verifier::new(Published(key_set()), settings(0), Some(mirror.clone()));
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while !mirror.in_sync() {
        assert!(std::time::Instant::now() < deadline, "mirror never in sync");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = sign(&at_epoch("before", 0));
    assert!(mirrored.verify(&before).await.is_ok());
    assert_eq!(issuer.member_epoch(42).await.unwrap(), 0);

    let epoch = issuer
        .revoke_member(42, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(epoch, 1);
    assert_eq!(
        asks_redis.verify(&before).await.unwrap_err(),
        AuthError::Revoked
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while mirrored.verify(&before).await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the mirror never heard it"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        mirrored.verify(&before).await.unwrap_err(),
        AuthError::Revoked
    );
    // Tokens issued at the new epoch pass; other members are untouched.
    let after = sign(&at_epoch("after", 1));
    assert!(asks_redis.verify(&after).await.is_ok());
    assert!(mirrored.verify(&after).await.is_ok());
    let other = sign(
        &serde_json::json!({"sub": "43", "jti": "o", "iat": now(), "exp": now() + 600, "typ": "access", "role": "USER"}),
    );
    assert!(mirrored.verify(&other).await.is_ok());
    // A mirror started later loads the epoch with the rest.
    let late = Blacklist::mirrored(pool.clone(), &redis.key_prefix, &redis.url).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while !late.in_sync() {
        assert!(
            std::time::Instant::now() < deadline,
            "late mirror never in sync"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(late.member_epoch(42).await.unwrap(), 1);
}

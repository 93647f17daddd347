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

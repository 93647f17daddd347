//! Access-token verification cost (no blacklist: that is one Redis round trip on top).
//! `cargo bench -p auth --bench verify`
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use auth::{AuthSettings, Jwk, JwkSet, JwksSource, KeyStatus, Verifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use contracts::auth::{AccessClaims, MemberRole, TokenType};
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

struct Fixed(JwkSet);

#[async_trait::async_trait]
impl JwksSource for Fixed {
    async fn fetch(&self) -> anyhow::Result<JwkSet> {
        Ok(self.0.clone())
    }
}

fn bench(c: &mut Criterion) {
    let seed = [7u8; 32];
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    let der = [
        &[
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ][..],
        &seed,
    ]
    .concat();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("k1".into());
    let now = chrono::Utc::now().timestamp();
    let claims = AccessClaims {
        sub: "42".into(),
        jti: uuid::Uuid::now_v7().to_string(),
        iat: now,
        exp: now + 3600,
        typ: TokenType::Access,
        role: MemberRole::User,
        epoch: 0,
    };
    let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&der)).unwrap();
    let set = JwkSet {
        keys: vec![Jwk::ed25519(
            "k1",
            &URL_SAFE_NO_PAD.encode(public),
            KeyStatus::Active,
        )],
    };
    let settings = AuthSettings {
        jwks_url: url::Url::parse("http://unused/").unwrap(),
        cache_ttl: Duration::from_secs(3600),
        min_refetch: Duration::from_secs(3600),
        leeway: 0,
        max_lifetime: Duration::from_secs(3600),
        blacklist_fail_open: false,
        verified_cache_entries: 0,
        blacklist_mirror: false,
    };
    let remembering = Verifier::new(
        Fixed(set.clone()),
        AuthSettings {
            verified_cache_entries: 1024,
            ..settings.clone()
        },
        None,
    );
    let verifier = Verifier::new(Fixed(set), settings, None);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(verifier.verify(&token)).unwrap();
    c.bench_function("verify EdDSA access token (cached key)", |b| {
        b.iter(|| {
            runtime
                .block_on(verifier.verify(std::hint::black_box(&token)))
                .unwrap()
        })
    });
    runtime.block_on(remembering.verify(&token)).unwrap();
    c.bench_function(
        "verify a remembered access token (signature checked before)",
        |b| {
            b.iter(|| {
                runtime
                    .block_on(remembering.verify(std::hint::black_box(&token)))
                    .unwrap()
            })
        },
    );
    c.bench_function("sign EdDSA access token", |b| {
        let key = EncodingKey::from_ed_der(&der);
        b.iter(|| jsonwebtoken::encode(&header, std::hint::black_box(&claims), &key).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

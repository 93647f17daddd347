//! argon2id password hashing, off the async workers and bounded, since each hash costs
//! tens of milliseconds of CPU by design.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

/// `ARGON2_MEMORY_KIB` / `ARGON2_ITERATIONS` / `ARGON2_PARALLELISM` (defaults: OWASP's
/// argon2id minimum, 19 MiB, 2 passes, 1 lane).
#[derive(Debug, Clone, Copy)]
pub struct HashParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    permits: Arc<Semaphore>,
    /// A real hash of a random password: unknown emails are checked against it so a login
    /// takes the same time whether or not the account exists.
    decoy: Arc<String>,
}

impl PasswordHasher {
    pub fn new(params: HashParams) -> anyhow::Result<Self> {
        let params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("invalid argon2 parameters: {e}"))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let decoy = hash_with(&argon2, &uuid::Uuid::new_v4().to_string())?;
        Ok(Self {
            argon2,
            permits: Arc::new(Semaphore::new(cpus)),
            decoy: Arc::new(decoy),
        })
    }

    pub async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await?;
        let argon2 = self.argon2.clone();
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || hash_with(&argon2, &password)).await?
    }

    /// Whether `password` matches `hash`; with `None` (no such account) it checks against
    /// the decoy and answers `false`, taking the same time.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> anyhow::Result<bool> {
        let _permit = self.permits.acquire().await?;
        let argon2 = self.argon2.clone();
        let password = password.to_owned();
        let (hash, real) = match hash {
            Some(h) => (h.to_owned(), true),
            None => ((*self.decoy).clone(), false),
        };
        tokio::task::spawn_blocking(move || {
            let parsed =
                PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("bad stored hash: {e}"))?;
            let matches = argon2.verify_password(password.as_bytes(), &parsed).is_ok();
            Ok(matches && real)
        })
        .await?
    }
}

fn hash_with(argon2: &Argon2<'_>, password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash password: {e}"))
}

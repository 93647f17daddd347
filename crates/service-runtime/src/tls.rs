//! TLS for outgoing HTTPS (OAuth providers, OTLP collectors, peers behind TLS): rustls with
//! the `ring` provider, installed once per process before any client is built.

/// Installs rustls' `ring` crypto provider as the process default (idempotent).
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Fails only if another provider was installed first, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

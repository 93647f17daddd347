//! The image service binary.

/// jemalloc hands the large, short-lived buffers of decoding (tens of MB each) back to the
/// system within seconds; glibc's allocator raises its mmap threshold after the first frees
/// and then keeps such buffers in its heap, so RSS stays at the burst's peak.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    service_runtime::run_main_with_migrations(
        image::SERVICE,
        image::Config::from_env,
        image::start,
        image::migrate,
    )
    .await
}

//! Image bytes in object storage through the `object_store` crate: an S3-API bucket
//! (`IMAGE_STORE=s3`), or a local directory (`IMAGE_STORE=fs`, the zero-setup default).
//! Keys are `images/{id}/{rendition}`; an image's objects never change after upload.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};
use secrecy::ExposeSecret;
use service_runtime::Probe;

use crate::config::StoreSettings;

/// The renditions of one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendition {
    Original,
    Thumbnail,
    Medium,
}

impl Rendition {
    pub const ALL: [Rendition; 3] = [Rendition::Original, Rendition::Thumbnail, Rendition::Medium];

    pub fn as_str(self) -> &'static str {
        match self {
            Rendition::Original => "original",
            Rendition::Thumbnail => "thumbnail",
            Rendition::Medium => "medium",
        }
    }
}

/// Where an image's rendition lives.
pub fn key(image_id: i64, rendition: Rendition) -> Path {
    Path::from(format!("images/{image_id}/{}", rendition.as_str()))
}

/// An object's bytes as they stream from the store.
pub struct Download {
    pub size: u64,
    pub stream: BoxStream<'static, object_store::Result<Bytes>>,
}

#[derive(Clone)]
pub struct ObjectStorage {
    store: Arc<dyn ObjectStore>,
}

impl ObjectStorage {
    /// Builds the configured store (no I/O beyond creating the local root directory).
    pub fn new(settings: &StoreSettings) -> anyhow::Result<Self> {
        let store: Arc<dyn ObjectStore> = match settings {
            StoreSettings::Filesystem { root } => {
                std::fs::create_dir_all(root).map_err(|e| {
                    anyhow::anyhow!("cannot create IMAGE_FS_ROOT {}: {e}", root.display())
                })?;
                Arc::new(LocalFileSystem::new_with_prefix(root)?.with_automatic_cleanup(true))
            }
            StoreSettings::S3(s3) => {
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(&s3.bucket)
                    .with_region(&s3.region)
                    .with_client_options(
                        ClientOptions::new()
                            .with_allow_http(s3.allow_http)
                            .with_connect_timeout(Duration::from_secs(2))
                            .with_timeout(Duration::from_secs(30)),
                    )
                    // A few quick retries: a request should fail within the route's 30 s
                    // budget (seeds/003), not after the crate's default 3 minutes.
                    .with_retry(RetryConfig {
                        backoff: BackoffConfig::default(),
                        max_retries: 3,
                        retry_timeout: Duration::from_secs(10),
                    });
                if let Some(endpoint) = &s3.endpoint {
                    // Custom endpoints (MinIO, moto) serve buckets as paths.
                    builder = builder
                        .with_endpoint(endpoint.as_str().trim_end_matches('/'))
                        .with_virtual_hosted_style_request(false);
                }
                match (&s3.access_key_id, &s3.secret_access_key) {
                    (Some(id), Some(secret)) => {
                        builder = builder
                            .with_access_key_id(id)
                            .with_secret_access_key(secret.expose_secret());
                    }
                    // A custom endpoint without keys gets unsigned requests (moto, a public
                    // bucket); AWS without keys uses the instance's role.
                    _ if s3.endpoint.is_some() => builder = builder.with_skip_signature(true),
                    _ => {}
                }
                Arc::new(builder.build()?)
            }
        };
        Ok(Self { store })
    }

    pub async fn put(&self, path: &Path, bytes: Vec<u8>) -> object_store::Result<()> {
        self.store.put(path, PutPayload::from(bytes)).await?;
        Ok(())
    }

    /// The object, or `None` when it does not exist.
    pub async fn get(&self, path: &Path) -> object_store::Result<Option<Download>> {
        match self.store.get(path).await {
            Ok(found) => Ok(Some(Download {
                size: found.meta.size,
                stream: found.into_stream(),
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Deletes every rendition of an image; missing objects are fine.
    pub async fn delete_image(&self, image_id: i64) -> object_store::Result<()> {
        for rendition in Rendition::ALL {
            match self.store.delete(&key(image_id, rendition)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Best-effort cleanup after a failed or duplicate upload; failures are logged.
    pub async fn discard_image(&self, image_id: i64) {
        if let Err(err) = self.delete_image(image_id).await {
            tracing::warn!(image_id, error = %err, "cannot delete the objects of an unsaved image");
        }
    }
}

/// Readiness: a listing under `images/` (a missing bucket or a refused connection fails it,
/// where a HEAD of a missing key would not tell a missing bucket apart).
pub struct ObjectStoreProbe(pub ObjectStorage);

#[async_trait]
impl Probe for ObjectStoreProbe {
    fn name(&self) -> &str {
        "object_store"
    }

    async fn check(&self) -> Result<(), String> {
        self.0
            .store
            .list_with_delimiter(Some(&Path::from("images")))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

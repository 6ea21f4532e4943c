//! The HTTP/JSON client of the host protocol, for agent processes.

use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{ErrorBody, BLOBS, HEARTBEAT, IMAGES, INTENT, REGISTER, REPORT};
use crate::{
    BlobInfo, BlobKind, BlobRef, ControlLink, Credential, Heartbeat, HeartbeatAck, HostSpec, Intent, ProtoError,
    Registered, Report,
};

/// A control plane reached over HTTP at `http://host:port`.
#[derive(Clone)]
pub struct HttpLink {
    base: String,
    client: reqwest::Client,
}

fn unreachable(e: reqwest::Error) -> ProtoError {
    ProtoError::Unavailable(format!("cannot reach the control plane: {e}"))
}

impl HttpLink {
    /// `endpoint` is `http://host:port` (or `host:port`).
    pub fn new(endpoint: &str) -> Result<HttpLink, ProtoError> {
        let base = endpoint.trim_end_matches('/');
        let base = if base.starts_with("http://") || base.starts_with("https://") {
            base.to_string()
        } else {
            format!("http://{base}")
        };
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| ProtoError::Internal(format!("HTTP client: {e}")))?;
        Ok(HttpLink { base, client })
    }

    pub fn endpoint(&self) -> &str {
        &self.base
    }

    async fn answer<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, ProtoError> {
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(unreachable)?;
        if status < 300 {
            return serde_json::from_slice(&bytes)
                .map_err(|e| ProtoError::Internal(format!("unreadable answer from the control plane: {e}")));
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Err(body.into_error(status)),
            Err(_) if status >= 500 => Err(ProtoError::Unavailable(format!("control plane answered {status}"))),
            Err(_) => Err(ProtoError::Internal(format!(
                "control plane answered {status}: {}",
                String::from_utf8_lossy(&bytes).chars().take(200).collect::<String>()
            ))),
        }
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        bearer: &str,
        body: &B,
        timeout: Duration,
    ) -> Result<T, ProtoError> {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(bearer)
            .json(body)
            .timeout(timeout)
            .send()
            .await
            .map_err(unreachable)?;
        Self::answer(resp).await
    }
}

#[async_trait::async_trait]
impl ControlLink for HttpLink {
    async fn register(&self, token: &str, spec: HostSpec) -> Result<Registered, ProtoError> {
        self.post(REGISTER, token, &spec, Duration::from_secs(30)).await
    }

    async fn heartbeat(&self, credential: &Credential, beat: Heartbeat) -> Result<HeartbeatAck, ProtoError> {
        self.post(HEARTBEAT, &credential.0, &beat, Duration::from_secs(15)).await
    }

    async fn intent(&self, credential: &Credential, since: u64, wait: Duration) -> Result<Intent, ProtoError> {
        let resp = self
            .client
            .get(format!("{}{INTENT}?since={since}&wait={}ms", self.base, wait.as_millis()))
            .bearer_auth(&credential.0)
            .timeout(wait + Duration::from_secs(15))
            .send()
            .await
            .map_err(unreachable)?;
        Self::answer(resp).await
    }

    async fn report(&self, credential: &Credential, report: Report) -> Result<(), ProtoError> {
        let _: serde_json::Value = self.post(REPORT, &credential.0, &report, Duration::from_secs(30)).await?;
        Ok(())
    }

    async fn fetch_image(&self, credential: &Credential, image_id: &str, dest: &Path) -> Result<u64, ProtoError> {
        self.download(&format!("{}{IMAGES}{image_id}", self.base), credential, dest).await
    }

    async fn upload_blob(
        &self,
        credential: &Credential,
        kind: BlobKind,
        id: &str,
        src: &Path,
    ) -> Result<BlobInfo, ProtoError> {
        let io = |e: std::io::Error| ProtoError::Internal(format!("cannot read {}: {e}", src.display()));
        let file = tokio::fs::File::open(src).await.map_err(io)?;
        let len = file.metadata().await.map_err(io)?.len();
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
        let resp = self
            .client
            .put(format!("{}{BLOBS}{}/{id}", self.base, kind.as_str()))
            .bearer_auth(&credential.0)
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(body)
            .timeout(Duration::from_secs(3600))
            .send()
            .await
            .map_err(unreachable)?;
        Self::answer(resp).await
    }

    async fn fetch_blob(&self, credential: &Credential, blob: &BlobRef, dest: &Path) -> Result<u64, ProtoError> {
        self.download(&format!("{}{BLOBS}{}/{}", self.base, blob.kind.as_str(), blob.id), credential, dest).await
    }
}

impl HttpLink {
    async fn download(&self, url: &str, credential: &Credential, dest: &Path) -> Result<u64, ProtoError> {
        use tokio::io::AsyncWriteExt;
        let mut resp = self
            .client
            .get(url)
            .bearer_auth(&credential.0)
            .timeout(Duration::from_secs(3600))
            .send()
            .await
            .map_err(unreachable)?;
        let status = resp.status().as_u16();
        if status >= 300 {
            let err: Result<(), ProtoError> = Self::answer(resp).await;
            return Err(err.err().unwrap_or_else(|| ProtoError::Internal(format!("download answered {status}"))));
        }
        let io = |e: std::io::Error| ProtoError::Internal(format!("cannot write {}: {e}", dest.display()));
        let mut file = tokio::fs::File::create(dest).await.map_err(io)?;
        let mut n = 0u64;
        while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
            file.write_all(&chunk).await.map_err(io)?;
            n += chunk.len() as u64;
        }
        file.sync_all().await.map_err(io)?;
        Ok(n)
    }
}

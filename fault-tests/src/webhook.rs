//! A webhook endpoint in the test process that counts the deliveries it
//! receives per event id, so a test sees what the notifier actually sent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use uuid::Uuid;

/// The header that carries the event id (the notifier's `EVENT_ID`).
pub const EVENT_ID_HEADER: &str = "orderflow-event-id";

/// The receiver; it stops serving when dropped.
pub struct WebhookReceiver {
    address: SocketAddr,
    deliveries: Arc<Mutex<HashMap<Uuid, u32>>>,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookReceiver {
    pub async fn start() -> anyhow::Result<Self> {
        let deliveries: Arc<Mutex<HashMap<Uuid, u32>>> = Arc::default();
        let counted = deliveries.clone();
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap| {
                let counted = counted.clone();
                async move {
                    let id = headers
                        .get(EVENT_ID_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| Uuid::parse_str(v).ok());
                    match id {
                        Some(id) => {
                            *counted.lock().unwrap().entry(id).or_default() += 1;
                            StatusCode::OK
                        }
                        None => StatusCode::BAD_REQUEST,
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            address,
            deliveries,
            task,
        })
    }

    /// The URL to register.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    /// Deliveries received so far, per event id.
    pub fn deliveries(&self) -> HashMap<Uuid, u32> {
        self.deliveries.lock().unwrap().clone()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

use tokio_tungstenite::tungstenite;

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server said no: an `error` frame, a close frame or an HTTP status instead of
    /// the WebSocket upgrade. `code` is the server's stable error code, `close_<n>` for a
    /// close frame, `http_<status>` for a refused upgrade.
    #[error("refused by server: {code}: {message}")]
    Refused { code: String, message: String },
    /// The WebSocket failed.
    #[error("signaling: {0}")]
    Signaling(#[from] Box<tungstenite::Error>),
    /// The signaling connection or the client task is gone.
    #[error("signaling closed")]
    Closed,
    /// No answer in time; names what was awaited.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The server sent something this client cannot use.
    #[error("protocol: {0}")]
    Protocol(String),
    /// No such track (own publication or remote subscription).
    #[error("unknown track {0}")]
    UnknownTrack(String),
    /// The WebRTC core refused an operation.
    #[error("webrtc: {0}")]
    Rtc(#[from] rtc::shared::error::Error),
    /// A UDP socket failed.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
}

impl From<tungstenite::Error> for ClientError {
    fn from(err: tungstenite::Error) -> Self {
        match err {
            tungstenite::Error::Http(response) => ClientError::Refused {
                code: format!("http_{}", response.status().as_u16()),
                message: response
                    .body()
                    .as_deref()
                    .map(|body| String::from_utf8_lossy(body).into_owned())
                    .unwrap_or_default(),
            },
            other => ClientError::Signaling(Box::new(other)),
        }
    }
}

//! Built-in HTTPS and WSS on the real binary (`CHORUS_TLS_CERT_FILE`,
//! `CHORUS_TLS_KEY_FILE`): a client that trusts the certificate reaches the control API
//! and joins over WSS; plain HTTP and a client that does not trust the certificate are
//! turned away, counted, and harm no one after them. (Stalled handshakes: the unit tests
//! of `chorus_server::tls`.)

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use chorus_protocol::signal::{ClientMessage, ServerMessage};
use chorus_server::config::{DEV_API_KEY, DEV_API_SECRET};
use common::binary::Binary;
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(20);

/// A self-signed certificate for 127.0.0.1 and localhost, written to a temp directory
/// (removed on drop).
struct SelfSigned {
    dir: PathBuf,
    cert_file: PathBuf,
    key_file: PathBuf,
    der: CertificateDer<'static>,
}

impl SelfSigned {
    fn new(name: &str) -> Self {
        let pair = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .unwrap();
        let dir = std::env::temp_dir().join(format!("chorus-tls-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert_file = dir.join("cert.pem");
        let key_file = dir.join("key.pem");
        std::fs::write(&cert_file, pair.cert.pem()).unwrap();
        std::fs::write(&key_file, pair.signing_key.serialize_pem()).unwrap();
        Self {
            dir,
            cert_file,
            key_file,
            der: pair.cert.der().clone(),
        }
    }
}

impl Drop for SelfSigned {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TLS client whose only root is `trusted`.
fn client(trusted: &CertificateDer<'static>) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn tls_connect(
    connector: &TlsConnector,
    addr: SocketAddr,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::IpAddress(addr.ip().into());
    tokio::time::timeout(WAIT, connector.connect(name, tcp))
        .await
        .expect("the handshake ends in time")
}

/// Sends one HTTP/1.1 request and reads the whole answer (the connection closes after it).
async fn http_exchange(
    mut io: impl AsyncRead + AsyncWrite + Unpin,
    request: String,
) -> std::io::Result<String> {
    io.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(WAIT, io.read_to_end(&mut answer))
        .await
        .expect("the answer ends in time");
    // A peer that closes without a TLS close_notify still sent its whole answer.
    match read {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => {}
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
}

async fn https_get(
    connector: &TlsConnector,
    addr: SocketAddr,
    path: &str,
) -> std::io::Result<String> {
    let tls = tls_connect(connector, addr).await?;
    http_exchange(tls, get(path)).await
}

fn body(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

fn addr_of(url: &str) -> SocketAddr {
    url.strip_prefix("https://")
        .expect("the server announces an https:// URL")
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_wss_for_a_client_that_trusts_the_certificate_only() {
    let cert = SelfSigned::new("serve");
    let server = Binary::start(
        &[
            ("CHORUS_TLS_CERT_FILE", cert.cert_file.to_str().unwrap()),
            ("CHORUS_TLS_KEY_FILE", cert.key_file.to_str().unwrap()),
        ],
        false,
    )
    .await;
    let addr = addr_of(&server.url);
    let trusting = client(&cert.der);

    let health = https_get(&trusting, addr, "/healthz").await.unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");

    // Plain HTTP on the HTTPS port gets no HTTP answer.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let plain = http_exchange(tcp, get("/healthz"))
        .await
        .unwrap_or_default();
    assert!(
        !plain.starts_with("HTTP/"),
        "plain HTTP was answered: {plain}"
    );

    // A client that trusts another certificate refuses this one.
    let stranger = SelfSigned::new("stranger");
    let refused = tls_connect(&client(&stranger.der), addr).await;
    let Err(err) = refused else {
        panic!("an untrusting client completed its handshake");
    };
    assert!(
        err.to_string().contains("UnknownIssuer") || err.to_string().contains("invalid peer"),
        "{err}"
    );

    // A token through the control API over HTTPS points at wss://.
    let credentials = format!("{DEV_API_KEY}:{DEV_API_SECRET}");
    let basic = base64::engine::general_purpose::STANDARD.encode(credentials);
    let request_body = r#"{"room":"secure","identity":"alice"}"#;
    let tls = tls_connect(&trusting, addr).await.unwrap();
    let answer = http_exchange(
        tls,
        format!(
            "POST /v1/tokens HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\
             authorization: Basic {basic}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n{request_body}",
            request_body.len()
        ),
    )
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let token: serde_json::Value = serde_json::from_str(body(&answer)).unwrap();
    let ws_url = token["url"].as_str().unwrap();
    assert_eq!(ws_url, format!("wss://{addr}/v1/rtc"));

    // Signaling over WSS: the join is answered with `joined`.
    let tls = tls_connect(&trusting, addr).await.unwrap();
    let url = format!("{ws_url}?access_token={}", token["token"].as_str().unwrap());
    let (mut ws, _) = tokio_tungstenite::client_async(url, tls).await.unwrap();
    let join = serde_json::to_string(&ClientMessage::Join {}).unwrap();
    ws.send(Message::text(join)).await.unwrap();
    let frame = tokio::time::timeout(WAIT, ws.next()).await.unwrap();
    let Some(Ok(Message::Text(text))) = frame else {
        panic!("no joined: {frame:?}");
    };
    assert!(
        matches!(serde_json::from_str(&text), Ok(ServerMessage::Joined { ref room, .. }) if room == "secure"),
        "{text}"
    );

    // Both refusals were counted, and the server still answers.
    let metrics = https_get(&trusting, addr, "/metrics").await.unwrap();
    let refused = metrics
        .lines()
        .find_map(|l| l.strip_prefix("chorus_tls_handshake_failures_total{reason=\"refused\"} "))
        .unwrap_or_else(|| panic!("no refused count in {metrics}"));
    assert_eq!(refused.trim(), "2", "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_refuses_to_start_on_a_file_that_is_not_a_key() {
    let cert = SelfSigned::new("refuse");
    let output = tokio::task::spawn_blocking({
        let cert_file = cert.cert_file.clone();
        move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_chorus"))
                .env_clear()
                .env("CHORUS_HTTP_BIND", "127.0.0.1:0")
                .env("CHORUS_MEDIA_BIND", "127.0.0.1:0")
                .env("CHORUS_TLS_CERT_FILE", &cert_file)
                .env("CHORUS_TLS_KEY_FILE", &cert_file)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "http.tls_key_file {} holds no PEM private key",
            cert.cert_file.display()
        )),
        "{stderr}"
    );
}

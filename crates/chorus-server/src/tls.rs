//! Built-in HTTPS and WSS: the certificate chain and key from PEM files
//! (`http.tls_cert_file`, `http.tls_key_file`), and [`TlsListener`], which hands the
//! HTTP server only connections whose TLS handshake has finished.
//!
//! Handshakes run side by side, each in its own task and time-limited, so a client that
//! stalls or speaks garbage delays nobody else; failures are counted
//! (`chorus_tls_handshake_failures_total`) and logged at debug (a flood of them must not
//! flood the log).

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chorus_api::metrics::TlsHandshakeFailure;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::task::AbortOnDropHandle;
use tracing::{debug, warn};

/// Longest a client may take from its TCP connect to a finished TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes under way at once; past that, new connections wait in the kernel's
/// backlog, so a crowd of stalled clients costs bounded memory.
pub const MAX_PENDING_HANDSHAKES: usize = 1024;
/// Finished handshakes waiting for the HTTP server to take them.
const READY_QUEUE: usize = 64;

/// Why the TLS files cannot be used; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error(
        "http.tls_cert_file and http.tls_key_file (CHORUS_TLS_CERT_FILE, CHORUS_TLS_KEY_FILE) \
         go together: {missing} is not set"
    )]
    Half { missing: &'static str },
    #[error("cannot read http.tls_cert_file {}: {source}", path.display())]
    ReadCert { path: PathBuf, source: io::Error },
    #[error(
        "http.tls_cert_file {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
        path.display()
    )]
    NoCert { path: PathBuf },
    #[error("cannot read http.tls_key_file {}: {source}", path.display())]
    ReadKey { path: PathBuf, source: io::Error },
    #[error(
        "http.tls_key_file {} holds no PEM private key (-----BEGIN PRIVATE KEY-----, \
         RSA PRIVATE KEY or EC PRIVATE KEY)",
        path.display()
    )]
    NoKey { path: PathBuf },
    #[error(
        "the key in http.tls_key_file {} does not fit the certificate in \
         http.tls_cert_file {}: {source}",
        key.display(),
        cert.display()
    )]
    Unusable {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
}

/// The server's TLS settings from the two files, or `None` when neither is set.
pub fn server_config(
    cert_file: Option<&Path>,
    key_file: Option<&Path>,
) -> Result<Option<Arc<ServerConfig>>, TlsConfigError> {
    let (cert_file, key_file) = match (cert_file, key_file) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(TlsConfigError::Half {
                missing: "http.tls_key_file",
            });
        }
        (None, Some(_)) => {
            return Err(TlsConfigError::Half {
                missing: "http.tls_cert_file",
            });
        }
        (Some(c), Some(k)) => (c, k),
    };
    let pem = std::fs::read(cert_file).map_err(|source| TlsConfigError::ReadCert {
        path: cert_file.into(),
        source,
    })?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsConfigError::NoCert {
            path: cert_file.into(),
        })?;
    if certs.is_empty() {
        return Err(TlsConfigError::NoCert {
            path: cert_file.into(),
        });
    }
    let pem = std::fs::read(key_file).map_err(|source| TlsConfigError::ReadKey {
        path: key_file.into(),
        source,
    })?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|_| TlsConfigError::NoKey {
        path: key_file.into(),
    })?;
    let unusable = |source| TlsConfigError::Unusable {
        cert: cert_file.into(),
        key: key_file.into(),
        source,
    };
    // ring: the provider that builds without cmake (aws-lc-rs needs it).
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(unusable)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(unusable)?;
    // The HTTP server speaks HTTP/1.1 (WebSocket upgrades ride on it).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}

/// Accepts TCP connections, runs their TLS handshakes, and yields the finished ones
/// to `axum::serve`. Dropping it stops accepting.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
    _acceptor: AbortOnDropHandle<()>,
}

impl TlsListener {
    /// Each handshake gets `handshake_timeout` ([`HANDSHAKE_TIMEOUT`] in the server);
    /// `failed` is told of every one that did not finish (to count it).
    pub fn new(
        tcp: TcpListener,
        config: Arc<ServerConfig>,
        handshake_timeout: Duration,
        failed: impl Fn(TlsHandshakeFailure) + Send + Sync + 'static,
    ) -> io::Result<Self> {
        let local_addr = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        let acceptor = tokio::spawn(accept_loop(
            tcp,
            TlsAcceptor::from(config),
            handshake_timeout,
            tx,
            Arc::new(failed),
        ));
        Ok(Self {
            ready,
            local_addr,
            _acceptor: AbortOnDropHandle::new(acceptor),
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

type Ready = mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>;

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
    ready: Ready,
    failed: Arc<dyn Fn(TlsHandshakeFailure) + Send + Sync>,
) {
    let pending = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let Ok(permit) = pending.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match tcp.accept().await {
            Ok(connection) => connection,
            Err(e) => {
                // As axum's own loop: a connection that died in the backlog is nothing;
                // anything else (out of file descriptors) gets a pause before retrying.
                if !is_connection_error(&e) {
                    warn!("accepting an HTTPS connection failed: {e}; pausing 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        let failed = failed.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    // Fails only when the listener is gone (the server is stopping).
                    let _ = ready.send((tls, peer)).await;
                }
                Ok(Err(e)) => {
                    failed(TlsHandshakeFailure::Refused);
                    debug!(%peer, "TLS handshake failed: {e}");
                }
                Err(_) => {
                    failed(TlsHandshakeFailure::Timeout);
                    debug!(%peer, "TLS handshake not finished within {handshake_timeout:?}");
                }
            }
        });
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::{Config, Overrides};

    /// Files in a fresh temp directory, removed on drop.
    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("chorus-tls-test-{}-{name}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn file(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn self_signed() -> rcgen::CertifiedKey<rcgen::KeyPair> {
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap()
    }

    #[test]
    fn the_files_are_checked_and_each_error_names_its_file() {
        let dir = Dir::new("files");
        let pair = self_signed();
        let other = self_signed();
        let cert = dir.file("cert.pem", &pair.cert.pem());
        let key = dir.file("key.pem", &pair.signing_key.serialize_pem());
        let other_key = dir.file("other-key.pem", &other.signing_key.serialize_pem());
        let garbage = dir.file("garbage.pem", "not a certificate\n");
        let missing = dir.0.join("missing.pem");

        assert!(server_config(None, None).unwrap().is_none());
        assert!(server_config(Some(&cert), Some(&key)).unwrap().is_some());

        // (cert, key, what the error says)
        let cases: [(Option<&Path>, Option<&Path>, Vec<String>); 7] = [
            (
                Some(&cert),
                None,
                vec!["http.tls_key_file is not set".into()],
            ),
            (
                None,
                Some(&key),
                vec!["http.tls_cert_file is not set".into()],
            ),
            (
                Some(&missing),
                Some(&key),
                vec![format!(
                    "cannot read http.tls_cert_file {}",
                    missing.display()
                )],
            ),
            (
                Some(&cert),
                Some(&missing),
                vec![format!(
                    "cannot read http.tls_key_file {}",
                    missing.display()
                )],
            ),
            (
                Some(&garbage),
                Some(&key),
                vec![format!(
                    "http.tls_cert_file {} holds no PEM certificate",
                    garbage.display()
                )],
            ),
            // The key where the certificate should be, and the other way round.
            (
                Some(&cert),
                Some(&cert),
                vec![format!(
                    "http.tls_key_file {} holds no PEM private key",
                    cert.display()
                )],
            ),
            (
                Some(&cert),
                Some(&other_key),
                vec![
                    format!("http.tls_key_file {}", other_key.display()),
                    "does not fit".into(),
                ],
            ),
        ];
        for (cert, key, want) in cases {
            let err = server_config(cert, key).unwrap_err().to_string();
            for part in want {
                assert!(
                    err.contains(&part),
                    "{cert:?} {key:?}: {err:?} lacks {part:?}"
                );
            }
        }
        let err = server_config(Some(&key), Some(&key))
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds no PEM certificate"), "{err}");
    }

    #[test]
    fn the_environment_turns_tls_on_and_loading_checks_it() {
        let dir = Dir::new("env");
        let pair = self_signed();
        let cert = dir.file("cert.pem", &pair.cert.pem());
        let key = dir.file("key.pem", &pair.signing_key.serialize_pem());
        let vars = |cert: &Path, key: &Path| {
            let (cert, key) = (cert.display().to_string(), key.display().to_string());
            move |name: &str| match name {
                "CHORUS_TLS_CERT_FILE" => Some(cert.clone()),
                "CHORUS_TLS_KEY_FILE" => Some(key.clone()),
                _ => None,
            }
        };
        let config = Config::load(None, &vars(&cert, &key), &Overrides::default()).unwrap();
        assert_eq!(config.http.tls_cert_file.as_deref(), Some(cert.as_path()));
        assert_eq!(config.http.tls_key_file.as_deref(), Some(key.as_path()));
        assert_eq!(
            config.public_url_for("127.0.0.1:7443".parse().unwrap()),
            "https://127.0.0.1:7443"
        );
        // The TOML form names them too, and reads back the same.
        let again = Config::from_toml(&config.to_toml().unwrap()).unwrap();
        assert_eq!(again, config);
        assert_eq!(
            Config::default().public_url_for("127.0.0.1:7880".parse().unwrap()),
            "http://127.0.0.1:7880"
        );

        // A wrong path stops loading, before any server starts.
        let missing = dir.0.join("missing.pem");
        let err = Config::load(None, &vars(&cert, &missing), &Overrides::default()).unwrap_err();
        assert!(
            format!("{err:#}").contains(&missing.display().to_string()),
            "{err:#}"
        );
    }

    /// A listener on loopback with `pair`'s certificate, reporting failures on a channel.
    async fn listener(
        dir: &Dir,
        pair: &rcgen::CertifiedKey<rcgen::KeyPair>,
        handshake_timeout: Duration,
    ) -> (
        TlsListener,
        SocketAddr,
        mpsc::UnboundedReceiver<TlsHandshakeFailure>,
    ) {
        let cert = dir.file("cert.pem", &pair.cert.pem());
        let key = dir.file("key.pem", &pair.signing_key.serialize_pem());
        let config = server_config(Some(&cert), Some(&key)).unwrap().unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let (tx, failures) = mpsc::unbounded_channel();
        let listener = TlsListener::new(tcp, config, handshake_timeout, move |reason| {
            let _ = tx.send(reason);
        })
        .unwrap();
        (listener, addr, failures)
    }

    async fn handshake(
        pair: &rcgen::CertifiedKey<rcgen::KeyPair>,
        addr: SocketAddr,
    ) -> io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pair.cert.der().clone()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(addr.ip().into(), tcp)
            .await
    }

    const LIMIT: Duration = Duration::from_secs(20);

    /// Handshakes run side by side: with a client that stalls for good (the time limit is
    /// an hour), the next one is still accepted at once.
    #[tokio::test]
    async fn a_stalled_handshake_holds_up_no_one() {
        use axum::serve::Listener;
        use tokio::io::AsyncWriteExt;

        let dir = Dir::new("stall");
        let pair = self_signed();
        let (mut listener, addr, mut failures) =
            listener(&dir, &pair, Duration::from_secs(3600)).await;
        let mut stalled = tokio::net::TcpStream::connect(addr).await.unwrap();
        // The start of a TLS record, and then nothing.
        stalled.write_all(&[0x16, 0x03, 0x01]).await.unwrap();

        let client = tokio::spawn(async move { handshake(&pair, addr).await });
        let (_, peer) = tokio::time::timeout(LIMIT, listener.accept())
            .await
            .expect("the second client is accepted while the first stalls");
        let client = client.await.unwrap().unwrap();
        assert_eq!(peer, client.get_ref().0.local_addr().unwrap());
        assert!(failures.try_recv().is_err());
        drop(stalled);
    }

    /// A handshake past its time limit is closed and counted; plain HTTP is refused and
    /// counted; the listener goes on accepting.
    #[tokio::test]
    async fn stalled_and_broken_handshakes_are_closed_and_counted() {
        use axum::serve::Listener;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let dir = Dir::new("count");
        let pair = self_signed();
        let (mut listener, addr, mut failures) =
            listener(&dir, &pair, Duration::from_millis(100)).await;
        async fn recv(
            failures: &mut mpsc::UnboundedReceiver<TlsHandshakeFailure>,
        ) -> TlsHandshakeFailure {
            let reason = tokio::time::timeout(LIMIT, failures.recv()).await;
            reason.expect("the failure is reported").unwrap()
        }

        let mut stalled = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert_eq!(recv(&mut failures).await, TlsHandshakeFailure::Timeout);
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(LIMIT, stalled.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the stalled connection is closed");

        let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
        plain
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(recv(&mut failures).await, TlsHandshakeFailure::Refused);

        let client = tokio::spawn(async move { handshake(&pair, addr).await });
        tokio::time::timeout(LIMIT, listener.accept())
            .await
            .expect("accepted after the failures");
        client.await.unwrap().unwrap();
    }
}

//! HTTPS for the hub and the agent: a listener that terminates TLS (rustls, TLS 1.2 and 1.3, HTTP/1.1) and
//! picks up a renewed certificate without a restart.
//!
//! - [`CertStore`] holds the certificate chain and private key read from two PEM files and answers every
//!   handshake with the current pair. [`CertStore::reload_if_changed`] rereads the files when their size or
//!   modification time changed; a pair that does not load (a half-written file, a key that does not match)
//!   is refused with a log line and the previous pair stays in service. [`CertStore::watch`] checks on an
//!   interval, so a certificate renewed by an agent such as cert-manager or an ACM export job is in use
//!   within that interval.
//! - [`TlsListener`] implements [`axum::serve::Listener`], so `axum::serve` (and its graceful shutdown)
//!   serves HTTPS exactly as it serves plain HTTP. Handshakes run in their own tasks with a deadline, so a
//!   client that connects and stalls never holds up the connections behind it; a failed handshake is
//!   logged at debug level and dropped.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::crypto::aws_lc_rs;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client has to finish its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshaken connections waiting for the server to take them.
const ACCEPT_BACKLOG: usize = 256;

/// Why a certificate pair could not be loaded. The message names the file and the problem.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A file holds no usable PEM block of the kind expected.
    #[error("`{path}` holds no {what} in PEM form")]
    Missing {
        /// The file.
        path: PathBuf,
        /// `certificate` or `private key`.
        what: &'static str,
    },
    /// The key does not suit the certificate, or rustls refused the pair.
    #[error("`{cert}` and `{key}` do not make a usable pair: {reason}")]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The certificate and key files, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// What identifies one version of the files on disk.
type Fingerprint = [(u64, Option<SystemTime>); 2];

fn fingerprint(files: &TlsFiles) -> Fingerprint {
    let stat = |path: &Path| {
        std::fs::metadata(path)
            .map(|m| (m.len(), m.modified().ok()))
            .unwrap_or((0, None))
    };
    [stat(&files.cert), stat(&files.key)]
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads and checks one certificate pair.
///
/// # Errors
///
/// [`TlsError`] naming the file and the problem.
pub fn load_pair(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    let cert_pem = read(&files.cert)?;
    let key_pem = read(&files.key)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::Missing {
            path: files.cert.clone(),
            what: "certificate",
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::Missing {
        path: files.key.clone(),
        what: "private key",
    })?;
    let pair_error = |reason: String| TlsError::Pair {
        cert: files.cert.clone(),
        key: files.key.clone(),
        reason,
    };
    let provider = aws_lc_rs::default_provider();
    let certified =
        CertifiedKey::from_der(chain, key, &provider).map_err(|e| pair_error(e.to_string()))?;
    certified
        .keys_match()
        .map_err(|e| pair_error(e.to_string()))?;
    Ok(certified)
}

/// The certificate pair in service, reloadable while the server runs.
#[derive(Debug)]
pub struct CertStore {
    files: TlsFiles,
    current: RwLock<(Arc<CertifiedKey>, Fingerprint)>,
}

impl CertStore {
    /// Loads the pair from `files`.
    ///
    /// # Errors
    ///
    /// When the pair does not load; the server must not start without one.
    pub fn load(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        let stamp = fingerprint(&files);
        let pair = load_pair(&files)?;
        Ok(Arc::new(Self {
            files,
            current: RwLock::new((Arc::new(pair), stamp)),
        }))
    }

    /// The files this store reads.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Rereads the files if their size or modification time changed. Returns `Ok(true)` when a new pair
    /// is in service, `Ok(false)` when nothing changed.
    ///
    /// # Errors
    ///
    /// When the files changed but do not load; the previous pair stays in service and the same files are
    /// tried again next time.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let stamp = fingerprint(&self.files);
        let unchanged = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            == stamp;
        if unchanged {
            return Ok(false);
        }
        let pair = load_pair(&self.files)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = (Arc::new(pair), stamp);
        Ok(true)
    }

    /// Checks the files every `interval` for as long as the store is in use, logging each reload and each
    /// refused pair.
    pub fn watch(self: &Arc<Self>, interval: Duration) {
        let store = Arc::downgrade(self);
        crate::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(store) = store.upgrade() else { return };
                match store.reload_if_changed() {
                    Ok(true) => tracing::info!(
                        cert = %store.files.cert.display(),
                        "TLS certificate reloaded"
                    ),
                    Ok(false) => {}
                    Err(err) => tracing::error!(
                        error = %err,
                        "the renewed TLS certificate was refused; the previous one stays in service"
                    ),
                }
            }
        });
    }

    /// A rustls server configuration answering every handshake with this store's current pair, offering
    /// HTTP/1.1 by ALPN.
    ///
    /// # Errors
    ///
    /// When rustls refuses the protocol versions (it does not with its own provider).
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, TlsError> {
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| TlsError::Pair {
                    cert: self.files.cert.clone(),
                    key: self.files.key.clone(),
                    reason: e.to_string(),
                })?
                .with_no_client_auth()
                .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .0,
        ))
    }
}

/// A TCP listener that hands `axum::serve` connections whose TLS handshake has completed.
#[derive(Debug)]
pub struct TlsListener {
    local_addr: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsListener {
    /// Terminates TLS with `store`'s certificate on connections accepted by `listener`. Accepted
    /// connections have Nagle's algorithm off (streamed answers are many small writes).
    ///
    /// # Errors
    ///
    /// When the listener has no local address or the TLS configuration cannot be built.
    pub fn new(listener: TcpListener, store: &Arc<CertStore>) -> Result<Self, TlsError> {
        let local_addr = listener.local_addr().map_err(|source| TlsError::Read {
            path: PathBuf::from("<listener>"),
            source,
        })?;
        let acceptor = TlsAcceptor::from(store.server_config()?);
        let (tx, ready) = mpsc::channel(ACCEPT_BACKLOG);
        crate::spawn(accept_loop(listener, acceptor, tx));
        Ok(Self { local_addr, ready })
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let accepted = tokio::select! {
            // The server stopped: release the port.
            () = ready.closed() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and similar: wait instead of spinning.
                tracing::warn!(error = %err, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::warn!(%err, "could not turn off Nagle's algorithm on a connection");
        }
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        crate::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    // The server is gone when the send fails; the connection just closes.
                    let _ = ready.send((tls, peer)).await;
                }
                Ok(Err(err)) => tracing::debug!(%peer, error = %err, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop only stops when this receiver is dropped, so this is never reached while
            // `self` lives; wait forever rather than hand out a connection that does not exist.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

#[cfg(test)]
mod tests;

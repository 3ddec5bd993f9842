use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// A self-signed certificate for `localhost` and its key, as PEM.
fn self_signed() -> (String, String) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    (generated.cert.pem(), generated.signing_key.serialize_pem())
}

fn write_pair(dir: &Path, (cert, key): &(String, String)) -> TlsFiles {
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&files.cert, cert).unwrap();
    std::fs::write(&files.key, key).unwrap();
    files
}

/// Serves a one-route router over TLS on 127.0.0.1; returns its address.
async fn serve(store: &Arc<CertStore>) -> SocketAddr {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listener = TlsListener::new(tcp, store).unwrap();
    let addr = axum::serve::Listener::local_addr(&listener).unwrap();
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "over tls" }));
    crate::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// The leaf certificate the server at `addr` presents, trusting any of `trusted`.
async fn presented(addr: SocketAddr, trusted: &[&str]) -> Vec<u8> {
    let mut roots = RootCertStore::empty();
    for pem in trusted {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

#[tokio::test]
async fn https_is_served_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pair = self_signed();
    let store = CertStore::load(write_pair(dir.path(), &pair)).unwrap();
    let addr = serve(&store).await;

    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pair.0.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let body = client
        .get(format!("https://localhost:{}/", addr.port()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "over tls");

    // A client that does not trust the certificate gets no answer.
    let untrusting = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(self_signed().0.as_bytes()).unwrap()])
        .build()
        .unwrap();
    assert!(
        untrusting
            .get(format!("https://localhost:{}/", addr.port()))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart_and_a_broken_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = self_signed();
    let files = write_pair(dir.path(), &first);
    let store = CertStore::load(files.clone()).unwrap();
    let addr = serve(&store).await;
    let second = self_signed();
    let trusted = [first.0.as_str(), second.0.as_str()];
    assert_eq!(presented(addr, &trusted).await, der(&first.0));
    assert!(!store.reload_if_changed().unwrap(), "nothing changed yet");

    // Renewal: new files in place (the size differs or the modification time moves on).
    std::thread::sleep(Duration::from_millis(20));
    write_pair(dir.path(), &second);
    assert!(store.reload_if_changed().unwrap());
    assert_eq!(presented(addr, &trusted).await, der(&second.0));

    // A half-written renewal: the key file is not a key. Refused, and the pair in service stays.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&files.key, "-----BEGIN PRIVATE KEY-----\ntruncated").unwrap();
    let err = store.reload_if_changed().unwrap_err();
    assert!(err.to_string().contains("key.pem"), "{err}");
    assert_eq!(presented(addr, &trusted).await, der(&second.0));

    // A key that belongs to another certificate is refused too.
    std::fs::write(&files.key, &first.1).unwrap();
    let err = store.reload_if_changed().unwrap_err();
    assert!(err.to_string().contains("usable pair"), "{err}");
    assert_eq!(presented(addr, &trusted).await, der(&second.0));
}

#[tokio::test]
async fn a_stalled_handshake_does_not_hold_up_other_clients() {
    let dir = tempfile::tempdir().unwrap();
    let pair = self_signed();
    let store = CertStore::load(write_pair(dir.path(), &pair)).unwrap();
    let addr = serve(&store).await;

    // Connects and says nothing.
    let _stalled = TcpStream::connect(addr).await.unwrap();
    assert_eq!(presented(addr, &[pair.0.as_str()]).await, der(&pair.0));

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer).await;
    assert!(!String::from_utf8_lossy(&answer).contains("over tls"));
}

#[test]
fn missing_and_empty_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let files = TlsFiles {
        cert: dir.path().join("absent.pem"),
        key: dir.path().join("key.pem"),
    };
    let err = CertStore::load(files).unwrap_err();
    assert!(err.to_string().starts_with("cannot read `"), "{err}");
    assert!(err.to_string().contains("absent.pem"), "{err}");

    let pair = self_signed();
    let files = write_pair(dir.path(), &pair);
    std::fs::write(&files.cert, "not a certificate").unwrap();
    let err = CertStore::load(files).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("cert.pem` holds no certificate in PEM form"),
        "{err}"
    );
}

//! Certificates the tests make themselves (rcgen): a private CA, server
//! certificates it signs for 127.0.0.1 and localhost, written as PEM files
//! in a private directory; and TLS clients (tokio-rustls) that trust only
//! that CA, for `wss://` and `https://` against a test server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HOST;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;

use super::within;

/// The names a loopback server certificate is for.
pub const LOOPBACK: [&str; 2] = ["127.0.0.1", "localhost"];

/// A `wss://` client connection.
pub type Wss = WebSocketStream<TlsStream<TcpStream>>;

/// A private certificate authority and the directory its files go to.
pub struct TestCa {
    /// The CA's certificate and key, to sign server certificates.
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// Where PEM files are written; removed on drop.
    pub dir: PathBuf,
}

/// A server certificate written as PEM files.
pub struct ServerPem {
    /// The chain file (leaf, then the CA).
    pub cert: PathBuf,
    /// The private key file.
    pub key: PathBuf,
    /// The leaf, as a client sees it in the handshake.
    pub leaf: CertificateDer<'static>,
}

impl TestCa {
    /// A new CA named `name` with an empty private directory.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("roomcast test CA {name}"),
        );
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key"))
            .expect("CA certificate");
        let dir = std::env::temp_dir().join(format!(
            "roomcast-tls-test-{name}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).expect("creating the certificate directory");
        TestCa { issuer, dir }
    }

    /// The CA certificate as PEM.
    pub fn pem(&self) -> String {
        self.issuer.as_ref().pem()
    }

    /// Writes the CA certificate to `file` in the directory; returns its path.
    pub fn write_ca(&self, file: &str) -> PathBuf {
        let path = self.dir.join(file);
        std::fs::write(&path, self.pem()).expect("writing the CA file");
        path
    }

    /// A server certificate for `names` (host names or IP addresses), as
    /// the PEM strings of its chain and key, and the leaf.
    pub fn server_pem(&self, names: &[&str]) -> (String, String, CertificateDer<'static>) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let key = KeyPair::generate().expect("server key");
        let cert = CertificateParams::new(names)
            .expect("server params")
            .signed_by(&key, &self.issuer)
            .expect("server certificate");
        let chain = format!("{}{}", cert.pem(), self.pem());
        (chain, key.serialize_pem(), cert.der().clone())
    }

    /// Writes a fresh server certificate as `<stem>.crt` and `<stem>.key`,
    /// each renamed into place (as a certificate manager does).
    pub fn write_server(&self, stem: &str) -> ServerPem {
        let (chain, key, leaf) = self.server_pem(&LOOPBACK);
        let cert_path = self.dir.join(format!("{stem}.crt"));
        let key_path = self.dir.join(format!("{stem}.key"));
        replace(&cert_path, chain.as_bytes());
        replace(&key_path, key.as_bytes());
        ServerPem {
            cert: cert_path,
            key: key_path,
            leaf,
        }
    }

    /// A TLS client configuration that trusts this CA only.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.issuer.as_ref().der().clone())
            .expect("the test CA");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }

    /// A TLS connection to `addr` (verified as 127.0.0.1), or the error.
    pub async fn try_connect(&self, addr: SocketAddr) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(addr).await?;
        let name = ServerName::IpAddress(addr.ip().into());
        TlsConnector::from(self.client_config())
            .connect(name, tcp)
            .await
    }

    /// A TLS connection to `addr`; fails the test if it cannot be made.
    pub async fn connect(&self, addr: SocketAddr) -> TlsStream<TcpStream> {
        within("TLS connect", self.try_connect(addr))
            .await
            .expect("TLS handshake")
    }

    /// A `wss://` WebSocket to `path` on `addr`.
    pub async fn wss_connect(&self, addr: SocketAddr, path: &str) -> Wss {
        let tls = self.connect(addr).await;
        let (ws, _) = within(
            "wss handshake",
            tokio_tungstenite::client_async(format!("wss://{addr}{path}"), tls),
        )
        .await
        .expect("websocket handshake over TLS");
        ws
    }

    /// A `wss://` WebSocket to `path` over a socket whose receive buffer is
    /// tiny, so a client that stops reading backs the server up quickly.
    pub async fn wss_connect_small_rcvbuf(&self, addr: SocketAddr, path: &str) -> Wss {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let tcp = within("tcp connect", socket.connect(addr))
            .await
            .expect("tcp connect");
        let name = ServerName::IpAddress(addr.ip().into());
        let tls = within(
            "TLS connect",
            TlsConnector::from(self.client_config()).connect(name, tcp),
        )
        .await
        .expect("TLS handshake");
        let (ws, _) = within(
            "wss handshake",
            tokio_tungstenite::client_async(format!("wss://{addr}{path}"), tls),
        )
        .await
        .expect("websocket handshake over TLS");
        ws
    }

    /// A kept-alive `https://` client connection to `addr`.
    pub async fn https_client(&self, addr: SocketAddr) -> HttpsClient {
        let tls = self.connect(addr).await;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .expect("http handshake over TLS");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        HttpsClient { addr, sender }
    }

    /// `GET path` over `https://`: status and body.
    pub async fn https_get(&self, addr: SocketAddr, path: &str) -> (StatusCode, Bytes) {
        let tls = self.connect(addr).await;
        https_request(tls, addr, hyper::Method::GET, path, None).await
    }

    /// `POST path` with a JSON body over `https://`: status and body.
    pub async fn https_post(
        &self,
        addr: SocketAddr,
        path: &str,
        body: &str,
    ) -> (StatusCode, Bytes) {
        let tls = self.connect(addr).await;
        https_request(tls, addr, hyper::Method::POST, path, Some(body)).await
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A kept-alive HTTP/1.1 connection over TLS.
pub struct HttpsClient {
    /// The server, for `Host`.
    addr: SocketAddr,
    /// hyper's handle on the connection.
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl HttpsClient {
    /// `POST path` with a JSON body: status and JSON body.
    pub async fn post(&mut self, path: &str, body: &str) -> (StatusCode, serde_json::Value) {
        let request = Request::post(path)
            .header(HOST, self.addr.to_string())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_owned())))
            .expect("request");
        within("https response", async {
            self.sender.ready().await.expect("https connection ready");
            let response = self
                .sender
                .send_request(request)
                .await
                .expect("https request");
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .expect("https body")
                .to_bytes();
            (status, super::json_body(&body))
        })
        .await
    }
}

/// One request on `tls`.
async fn https_request(
    tls: TlsStream<TcpStream>,
    addr: SocketAddr,
    method: hyper::Method,
    path: &str,
    body: Option<&str>,
) -> (StatusCode, Bytes) {
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("http handshake over TLS");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, addr.to_string());
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let request = request
        .body(Full::new(Bytes::from(body.unwrap_or("").to_owned())))
        .expect("request");
    within("https response", async {
        let response = sender.send_request(request).await.expect("https request");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("https body")
            .to_bytes();
        (status, body)
    })
    .await
}

/// Writes `bytes` to `path` by renaming a temporary file into place.
pub fn replace(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).expect("writing a PEM file");
    std::fs::rename(&tmp, path).expect("renaming a PEM file into place");
}

/// The leaf certificate `tls` was shown.
pub fn presented_leaf(tls: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    tls.get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .expect("the server presented a certificate")
        .clone()
        .into_owned()
}

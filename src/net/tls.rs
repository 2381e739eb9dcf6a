//! TLS for `rediss://` endpoints: the client configuration built once from
//! the `--tls-*` flags, and [`TlsStream`], one rustls session over one
//! non-blocking mio socket.
//!
//! rustls is sans-IO: it never touches the socket. A session holds its own
//! queues (TLS records to send, decrypted bytes to hand out), so this file
//! moves bytes between them and the socket, and the connection must flush
//! rustls's records even when rump's own queue is empty (a handshake
//! message, an alert). Reads drain `read_tls` and `process_new_packets`
//! until the socket says `WouldBlock` or plaintext is available, as mio's
//! edge-triggered readiness requires.
//!
//! A failed handshake becomes one sentence a user can act on (`describe`):
//! rustls's errors name the TLS detail, not what to do about it.

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct,
    RootCertStore, SignatureScheme,
};

/// Most TLS bytes rustls holds before a write must wait for the socket:
/// a few records' worth, so one vectored write of RESTOREs is encrypted in
/// large pieces without buffering the whole window twice.
const BUFFER_LIMIT: usize = 256 * 1024;

/// What the command line asked for (`--tls-*`), before any file is read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// `--tls-ca`: trust only the CAs in this PEM bundle.
    pub ca: Option<PathBuf>,
    /// `--tls-cert` and `--tls-key`: a client certificate and its key.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// `--tls-server-name`: the name verified and sent as SNI.
    pub server_name: Option<String>,
    /// `--tls-insecure`: no verification at all.
    pub insecure: bool,
}

impl TlsOptions {
    /// True when any TLS flag was given.
    pub fn any(&self) -> bool {
        self.ca.is_some()
            || self.cert.is_some()
            || self.key.is_some()
            || self.server_name.is_some()
            || self.insecure
    }
}

/// A certificate file that cannot be used: named, with the flag that gave it.
#[derive(Debug)]
pub struct TlsFileError {
    pub flag: &'static str,
    pub path: PathBuf,
    pub reason: String,
}

impl fmt::Display for TlsFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.flag, self.path.display(), self.reason)
    }
}

impl std::error::Error for TlsFileError {}

/// The TLS client every `rediss://` connection of a run shares: the roots it
/// trusts, the client certificate it presents, and the name it verifies.
pub struct TlsClient {
    config: Arc<ClientConfig>,
    server_name: Option<String>,
    insecure: bool,
    roots: &'static str,
}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key: only what is safe to print.
        f.debug_struct("TlsClient")
            .field("server_name", &self.server_name)
            .field("insecure", &self.insecure)
            .field("roots", &self.roots)
            .finish()
    }
}

impl TlsClient {
    /// Reads the files the options name (each once; the key is held only
    /// inside rustls's configuration) and builds the client configuration.
    pub fn new(options: &TlsOptions) -> Result<TlsClient, TlsFileError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsFileError {
                flag: "TLS",
                path: PathBuf::new(),
                reason: e.to_string(),
            })?;
        let (builder, roots) = if options.insecure {
            let verifier = Arc::new(NoVerification(provider));
            (
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(verifier),
                "none (--tls-insecure)",
            )
        } else {
            let (store, roots) = match &options.ca {
                Some(path) => (ca_bundle(path)?, "--tls-ca"),
                None => system_roots(),
            };
            (builder.with_root_certificates(store), roots)
        };
        let mut config = match (&options.cert, &options.key) {
            (Some(cert), Some(key)) => {
                let chain = certificates(cert, "--tls-cert")?;
                let key_der = private_key(key)?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| TlsFileError {
                        flag: "--tls-key",
                        path: key.clone(),
                        reason: match e {
                            rustls::Error::InconsistentKeys(_) => format!(
                                "is not the private key of the certificate in {}",
                                cert.display()
                            ),
                            other => format!(
                                "cannot be used with the certificate in {}: {}",
                                cert.display(),
                                plain_reason(&other)
                            ),
                        },
                    })?
            }
            _ => builder.with_no_client_auth(),
        };
        // Redis does not resume sessions across connections in a way that
        // helps a copy; keep the default cache, and no ALPN (Redis has none).
        config.enable_sni = true;
        Ok(TlsClient {
            config: Arc::new(config),
            server_name: options.server_name.clone(),
            insecure: options.insecure,
            roots,
        })
    }

    /// True with `--tls-insecure`.
    pub fn insecure(&self) -> bool {
        self.insecure
    }

    /// Where the trusted roots come from, for messages.
    pub fn roots(&self) -> &'static str {
        self.roots
    }

    /// The name a connection to `host` verifies: `--tls-server-name` first,
    /// then `name` (a cluster seed's host, for its nodes), then `host`.
    pub fn name_for<'a>(&'a self, name: Option<&'a str>, host: &'a str) -> &'a str {
        self.server_name.as_deref().or(name).unwrap_or(host)
    }

    /// Starts a session over `tcp` (whose connect may still be in progress)
    /// that verifies `name`.
    pub fn session(&self, tcp: mio::net::TcpStream, name: &str) -> io::Result<TlsStream> {
        let server_name = ServerName::try_from(name.to_string()).map_err(|_| {
            failure(format!(
                "{name:?} is not a valid TLS server name (give --tls-server-name)"
            ))
        })?;
        let mut session = ClientConnection::new(self.config.clone(), server_name)
            .map_err(|e| failure(plain_reason(&e)))?;
        session.set_buffer_limit(Some(BUFFER_LIMIT));
        Ok(TlsStream {
            tcp,
            session,
            first_byte: None,
            name: name.to_string(),
        })
    }
}

/// A rustls session over a non-blocking TCP socket.
pub struct TlsStream {
    tcp: mio::net::TcpStream,
    session: ClientConnection,
    /// The first byte the server ever sent: a TLS record starts with 0x14 to
    /// 0x18, so anything else is a server that does not speak TLS.
    first_byte: Option<u8>,
    /// The name being verified, for messages.
    name: String,
}

impl fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("tcp", &self.tcp)
            .field("name", &self.name)
            .finish()
    }
}

impl TlsStream {
    pub fn tcp(&self) -> &mio::net::TcpStream {
        &self.tcp
    }

    pub fn tcp_mut(&mut self) -> &mut mio::net::TcpStream {
        &mut self.tcp
    }

    /// True until the TLS handshake is complete.
    pub fn is_handshaking(&self) -> bool {
        self.session.is_handshaking()
    }

    /// True when rustls holds TLS records not yet written to the socket.
    pub fn wants_write(&self) -> bool {
        self.session.wants_write()
    }

    /// Writes rustls's pending records until none is left (`Ok`) or the
    /// socket is full (`WouldBlock`).
    pub fn flush_records(&mut self) -> io::Result<()> {
        while self.session.wants_write() {
            match self.session.write_tls(&mut self.tcp) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads what the socket has into rustls and processes it: `Ok(0)` at
    /// end of stream, `Ok(n)` when `n` bytes arrived, `WouldBlock` when none.
    pub fn pull(&mut self) -> io::Result<usize> {
        let mut reader = FirstByte {
            tcp: &mut self.tcp,
            first: &mut self.first_byte,
        };
        let n = match self.session.read_tls(&mut reader) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                // rustls's own buffer is full of records it could not
                // process: a broken peer.
                return Err(failure(format!("the server sent invalid TLS data ({e})")));
            }
            Err(e) => return Err(e),
        };
        if let Some(b) = self.first_byte {
            if !(0x14..=0x18).contains(&b) {
                return Err(failure(
                    "the server answered in plain text, not TLS: is this a plain-text port? \
                     (use redis:// for it)"
                        .into(),
                ));
            }
        }
        if n == 0 {
            return Ok(0);
        }
        if let Err(e) = self.session.process_new_packets() {
            // Send the alert rustls queued, so the server logs why.
            let _ = self.flush_records();
            return Err(failure(describe(&e, &self.name)));
        }
        // A handshake message or a key update may now be due; the
        // connection flushes the rest when the socket is full.
        match self.flush_records() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        Ok(n)
    }

    /// Appends what the session has decrypted to `buf`, at most `room`
    /// bytes, reading from the socket first when it has nothing: `Ok(0)` at
    /// the end of the stream, `WouldBlock` when nothing arrived. Unlike
    /// [`Read::read`] it needs no zeroed buffer, and takes every record
    /// rustls holds in one call rather than one record per call.
    pub fn read_into(&mut self, buf: &mut bytes::BytesMut, room: usize) -> io::Result<usize> {
        use std::io::BufRead;
        loop {
            let mut got = 0;
            while got < room {
                let mut reader = self.session.reader();
                match reader.fill_buf() {
                    // A clean close_notify: nothing more will come.
                    Ok([]) => return Ok(got),
                    Ok(chunk) => {
                        let n = chunk.len().min(room - got);
                        buf.extend_from_slice(&chunk[..n]);
                        reader.consume(n);
                        got += n;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(got),
                    Err(e) => return Err(e),
                }
            }
            if got > 0 {
                return Ok(got);
            }
            if self.pull()? == 0 {
                return Ok(0);
            }
        }
    }

    /// Tells the server no more commands come: a TLS close_notify, then the
    /// TCP write half.
    pub fn shutdown_write(&mut self) {
        self.session.send_close_notify();
        let _ = self.flush_records();
        let _ = socket2::SockRef::from(&self.tcp).shutdown(std::net::Shutdown::Write);
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.session.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The server closed the socket without close_notify: to
                // rump, the same as any closed connection.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if self.pull()? == 0 {
                return Ok(0);
            }
        }
    }
}

impl Write for TlsStream {
    /// Encrypts as much of `bufs` as rustls takes and writes what the socket
    /// takes; `WouldBlock` only when the socket is full and rustls is too.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.flush_records()?;
        let n = self.session.writer().write_vectored(bufs)?;
        match self.flush_records() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && n > 0 => {}
            Err(e) => return Err(e),
        }
        if n == 0 && bufs.iter().any(|b| !b.is_empty()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_records()
    }
}

/// Passes the socket's bytes to rustls, noting the first one.
struct FirstByte<'a> {
    tcp: &'a mut mio::net::TcpStream,
    first: &'a mut Option<u8>,
}

impl Read for FirstByte<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.tcp.read(buf)?;
        if n > 0 && self.first.is_none() {
            *self.first = Some(buf[0]);
        }
        Ok(n)
    }
}

/// A failed TLS session, carried inside an `io::Error` so the connection
/// can tell it from a socket error and report it as such.
#[derive(Debug)]
pub struct TlsFailure(pub String);

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsFailure {}

fn failure(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, TlsFailure(reason))
}

/// The TLS failure inside `e`, if it is one.
pub fn tls_failure(e: &io::Error) -> Option<&str> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<TlsFailure>())
        .map(|f| f.0.as_str())
}

/// What went wrong in a handshake, as a user can act on it.
fn describe(e: &rustls::Error, name: &str) -> String {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => {
                "the server's certificate is signed by an unknown CA \
                 (give the CA bundle with --tls-ca)"
                    .to_string()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "the server's certificate is not valid for {name:?} (give the name it holds \
                     with --tls-server-name)"
                )
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server's certificate has expired".to_string()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet (check the clocks)".to_string()
            }
            CertificateError::Revoked => "the server's certificate is revoked".to_string(),
            CertificateError::BadSignature => {
                "the server's certificate has a bad signature".to_string()
            }
            other => format!("the server's certificate was refused ({other:?})"),
        },
        E::AlertReceived(AlertDescription::CertificateRequired) => {
            "the server requires a client certificate (give --tls-cert and --tls-key)".to_string()
        }
        E::AlertReceived(
            alert @ (AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::AccessDenied),
        ) => format!(
            "the server refused the client certificate ({alert:?}; check --tls-cert and --tls-key)"
        ),
        E::AlertReceived(AlertDescription::HandshakeFailure) => {
            "the server refused the handshake (no common cipher or protocol version, or it \
             requires a client certificate: give --tls-cert and --tls-key)"
                .to_string()
        }
        E::AlertReceived(AlertDescription::ProtocolVersion) => {
            "the server supports neither TLS 1.2 nor TLS 1.3".to_string()
        }
        E::AlertReceived(alert) => format!("the server ended the TLS session ({alert:?})"),
        E::InvalidMessage(_)
        | E::InappropriateMessage { .. }
        | E::InappropriateHandshakeMessage { .. } => {
            format!("the server does not speak TLS as expected ({e})")
        }
        other => plain_reason(other),
    }
}

fn plain_reason(e: &rustls::Error) -> String {
    let s = e.to_string();
    s.strip_prefix("invalid peer certificate: ")
        .map(|rest| format!("certificate: {rest}"))
        .unwrap_or(s)
}

/// Reads `path` once.
fn read_file(path: &Path, flag: &'static str) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|e| TlsFileError {
        flag,
        path: path.to_path_buf(),
        reason: format!("cannot read: {}", io_reason(&e)),
    })
}

fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => {
            let s = e.to_string();
            s.find(" (os error")
                .map_or(s.clone(), |i| s[..i].to_string())
        }
    }
}

/// Every certificate in a PEM file; at least one.
fn certificates(
    path: &Path,
    flag: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let pem = read_file(path, flag)?;
    let bad = |reason: String| TlsFileError {
        flag,
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not a valid PEM file ({})", pem_reason(&e))))?;
    if certs.is_empty() {
        return Err(bad(
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(certs)
}

/// The trust store of `--tls-ca`: only these CAs.
fn ca_bundle(path: &Path) -> Result<RootCertStore, TlsFileError> {
    let certs = certificates(path, "--tls-ca")?;
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(TlsFileError {
            flag: "--tls-ca",
            path: path.to_path_buf(),
            reason: "holds no certificate that can be used as a CA".into(),
        });
    }
    Ok(store)
}

/// The machine's trust store, or Mozilla's roots (webpki-roots) on a machine
/// that has none, such as a minimal container.
fn system_roots() -> (RootCertStore, &'static str) {
    let mut store = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    let (added, _) = store.add_parsable_certificates(found.certs);
    if added > 0 {
        return (store, "the system's trust store");
    }
    store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    (
        store,
        "the bundled Mozilla roots (no system trust store found)",
    )
}

/// The private key of `--tls-key`: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsFileError> {
    let pem = read_file(path, "--tls-key")?;
    // Never echo the file: it is a secret. Only say what kind of thing is wrong.
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsFileError {
        flag: "--tls-key",
        path: path.to_path_buf(),
        reason: match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "holds no PEM private key (PKCS#8, PKCS#1 or SEC1)".to_string()
            }
            _ => "is not a valid PEM private key".to_string(),
        },
    })
}

fn pem_reason(e: &rustls::pki_types::pem::Error) -> &'static str {
    use rustls::pki_types::pem::Error as P;
    match e {
        P::MissingSectionEnd { .. } => "a section has no END line",
        P::IllegalSectionStart { .. } => "a malformed BEGIN line",
        P::Base64Decode(_) => "bad base64",
        P::SectionTooLarge => "a section is too large",
        _ => "unreadable",
    }
}

/// `--tls-insecure`: accepts any certificate for any name, but still checks
/// that the handshake is signed by the certificate's key, so the session is
/// encrypted to whoever holds it.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(ca: Option<&Path>) -> TlsOptions {
        TlsOptions {
            ca: ca.map(Path::to_path_buf),
            ..TlsOptions::default()
        }
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let e = TlsClient::new(&options(Some(Path::new("/nonexistent/ca.pem")))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--tls-ca /nonexistent/ca.pem: cannot read: no such file"
        );
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let e = TlsClient::new(&options(Some(&path))).unwrap_err();
        assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
    }

    #[test]
    fn a_key_file_is_never_echoed() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        let key = dir.path().join("k.pem");
        std::fs::write(&cert, "x").unwrap();
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nc2VjcmV0IQ==\n").unwrap();
        let e = private_key(&key).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("--tls-key") && !text.contains("c2VjcmV0"),
            "{text}"
        );
    }

    #[test]
    fn system_or_bundled_roots_are_never_empty() {
        let (store, _) = system_roots();
        assert!(!store.is_empty());
    }

    #[test]
    fn the_server_name_flag_wins_over_the_seed_and_host() {
        let client = TlsClient::new(&TlsOptions {
            server_name: Some("redis.example".into()),
            insecure: true,
            ..TlsOptions::default()
        })
        .unwrap();
        assert_eq!(client.name_for(Some("seed"), "10.0.0.1"), "redis.example");
        let plain = TlsClient::new(&TlsOptions {
            insecure: true,
            ..TlsOptions::default()
        })
        .unwrap();
        assert_eq!(plain.name_for(Some("seed"), "10.0.0.1"), "seed");
        assert_eq!(plain.name_for(None, "10.0.0.1"), "10.0.0.1");
    }
}

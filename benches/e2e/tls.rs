//! TLS mode (issue 10): certificates the harness makes itself, the servers'
//! TLS arguments, and the harness's own blocking TLS client.
//!
//! In TLS mode every server listens on its plain port (the harness loads and
//! scans through it, untimed) and on a TLS port, with a server certificate for
//! 127.0.0.1 and `localhost` signed by a throwaway CA. Everything timed or
//! checked in TLS mode goes through the TLS port: rump, the peers, the
//! ceilings and the check after each run. Plain mode uses the plain port of
//! the same servers, so both modes see the same processes and the same data.
//!
//! The client is rustls (the ring provider rump itself uses), its defaults
//! unchanged, on a blocking `TcpStream`. The pipeline writes from one thread
//! and reads from another, so the `ClientConnection` is shared behind a mutex
//! that is never held across a socket call: the reader reads ciphertext
//! without it, then locks to decrypt; the writer locks to encrypt, then
//! writes the records without it. Only the writer ever writes to the socket,
//! so records leave in the order they were sealed.

use std::io::{self, IoSlice, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::BytesMut;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use crate::redis::Res;

/// How the tools, the ceilings and the check reach the servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Plain,
    Tls,
}

impl Mode {
    pub(crate) const ALL: [Mode; 2] = [Mode::Plain, Mode::Tls];

    pub(crate) fn parse(name: &str) -> Res<Vec<Mode>> {
        match name {
            "both" => Ok(Mode::ALL.to_vec()),
            _ => Mode::ALL
                .into_iter()
                .find(|m| m.name() == name)
                .map(|m| vec![m])
                .ok_or_else(|| format!("unknown TLS mode {name:?} (plain, tls, both)")),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Plain => "plain",
            Mode::Tls => "tls",
        }
    }
}

/// Bytes of ciphertext asked of the socket per read.
const RAW_CHUNK: usize = 256 * 1024;

/// The CA and server certificate of one lab, as PEM files, and the client
/// configuration that trusts exactly that CA.
pub(crate) struct Certs {
    pub(crate) ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    config: Arc<ClientConfig>,
}

fn write(path: &Path, text: &str) -> Res<()> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn cert_error(what: &str) -> impl Fn(rcgen::Error) -> String + '_ {
    move |e| format!("cannot make the {what} certificate: {e}")
}

impl Certs {
    /// A fresh CA and a server certificate for 127.0.0.1 and `localhost`
    /// (ECDSA P-256, rcgen's default), written to `ca.pem`, `server.pem` and
    /// `server.key` under `dir`.
    pub(crate) fn generate(dir: &Path) -> Res<Certs> {
        let ca_key = KeyPair::generate().map_err(cert_error("CA"))?;
        let mut ca_params = CertificateParams::new(Vec::new()).map_err(cert_error("CA"))?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Distinct subjects: OpenSSL (redis-cli, a TLS cluster bus) takes a
        // certificate whose issuer is its own subject for self-signed.
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "rump e2e CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(cert_error("CA"))?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().map_err(cert_error("server"))?;
        let mut server_params =
            CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
                .map_err(cert_error("server"))?;
        server_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server_params.use_authority_key_identifier_extension = true;
        let server_cert = server_params
            .signed_by(&server_key, &issuer)
            .map_err(cert_error("server"))?;

        let certs = Certs {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            config: client_config(ca_cert.der().clone())?,
        };
        write(&certs.ca, &ca_cert.pem())?;
        write(&certs.cert, &server_cert.pem())?;
        write(&certs.key, &server_key.serialize_pem())?;
        Ok(certs)
    }

    /// The `redis-server` arguments that add a TLS listener on `port`; no
    /// client certificate is asked for.
    pub(crate) fn server_args(&self, port: u16) -> Vec<String> {
        let path = |p: &Path| p.display().to_string();
        vec![
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            path(&self.cert),
            "--tls-key-file".into(),
            path(&self.key),
            "--tls-ca-cert-file".into(),
            path(&self.ca),
            "--tls-auth-clients".into(),
            "no".into(),
        ]
    }

    /// A TLS session over `socket` to 127.0.0.1, the handshake done
    /// (blocking), the certificate verified against the lab's CA.
    pub(crate) fn connect(&self, mut socket: TcpStream, name: &str) -> Res<Session> {
        let server = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into());
        let mut conn = ClientConnection::new(self.config.clone(), server)
            .map_err(|e| format!("{name}: TLS: {e}"))?;
        while conn.is_handshaking() {
            conn.complete_io(&mut socket)
                .map_err(|e| format!("{name}: TLS handshake: {e}"))?;
        }
        Ok(Session {
            shared: Arc::new(Mutex::new(conn)),
            socket,
            raw: vec![0; RAW_CHUNK],
            plain: vec![0; RAW_CHUNK],
        })
    }
}

fn client_config(ca: rustls::pki_types::CertificateDer<'static>) -> Res<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    roots
        .add(ca)
        .map_err(|e| format!("the generated CA is not usable: {e}"))?;
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS client configuration: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}

fn lock(shared: &Mutex<ClientConnection>) -> io::Result<MutexGuard<'_, ClientConnection>> {
    shared
        .lock()
        .map_err(|_| io::Error::other("the TLS session's other half panicked"))
}

/// The read half of a TLS connection (and the owner of the session).
pub(crate) struct Session {
    shared: Arc<Mutex<ClientConnection>>,
    socket: TcpStream,
    raw: Vec<u8>,
    plain: Vec<u8>,
}

impl Session {
    /// Reads ciphertext (blocking) until it yields plaintext, appends the
    /// plaintext to `buf` and returns its length; 0 when the server closed.
    pub(crate) fn fill(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        loop {
            let n = match self.socket.read(&mut self.raw) {
                Ok(0) => return Ok(0),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let mut conn = lock(&self.shared)?;
            let mut rest = &self.raw[..n];
            let mut got = 0;
            let mut closed = false;
            // rustls takes a few KiB per `read_tls` and holds at most 16 KiB
            // of plaintext: feed, decrypt and drain in turns.
            while !rest.is_empty() {
                conn.read_tls(&mut rest)?;
                let state = conn
                    .process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                closed |= state.peer_has_closed();
                loop {
                    match conn.reader().read(&mut self.plain) {
                        Ok(0) => break,
                        Ok(k) => {
                            buf.extend_from_slice(&self.plain[..k]);
                            got += k;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
            }
            if got > 0 || closed {
                return Ok(got);
            }
            // Only handshake or session-ticket records so far: read on.
        }
    }

    /// The write half, for another thread.
    pub(crate) fn writer(&self) -> io::Result<Writer> {
        Ok(Writer {
            shared: self.shared.clone(),
            socket: self.socket.try_clone()?,
            out: Vec::new(),
        })
    }

    pub(crate) fn shutdown(&self) {
        let _ = self.socket.shutdown(Shutdown::Both);
    }

    /// "TLSv1_3 TLS13_AES_256_GCM_SHA384 X25519": what was negotiated.
    pub(crate) fn describe(&self) -> String {
        let Ok(conn) = lock(&self.shared) else {
            return "unknown".to_owned();
        };
        let version = conn
            .protocol_version()
            .map_or("unknown version".to_owned(), |v| format!("{v:?}"));
        let suite = conn
            .negotiated_cipher_suite()
            .map_or("unknown suite".to_owned(), |s| format!("{:?}", s.suite()));
        let group = conn
            .negotiated_key_exchange_group()
            .map_or("unknown group".to_owned(), |g| format!("{:?}", g.name()));
        format!("{version} {suite} {group}")
    }
}

/// The write half of a TLS connection: seals under the lock, sends outside it.
pub(crate) struct Writer {
    shared: Arc<Mutex<ClientConnection>>,
    socket: TcpStream,
    out: Vec<u8>,
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    /// Seals as much of `bufs` as rustls buffers at once (64 KiB, in full
    /// records across slice boundaries) and sends it all before returning.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let n = {
            let mut conn = lock(&self.shared)?;
            let n = conn.writer().write_vectored(bufs)?;
            while conn.wants_write() {
                conn.write_tls(&mut self.out)?;
            }
            n
        };
        let sent = self.socket.write_all(&self.out);
        self.out.clear();
        sent.map(|()| n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

//! TLS fixtures: test certificates generated once per test process, Debian's
//! `redis-server` listening with `--tls-port`, and a cluster whose nodes talk
//! TLS to clients, to each other and to replicas.
//!
//! Certificates come from rcgen in-process. rcgen (with ring) writes keys
//! only as PKCS#8 and cannot make RSA keys, so `openssl` makes the RSA key
//! and rewrites keys in the legacy formats (PKCS#1, SEC1) that `--tls-key`
//! must also read.
//!
//! The fixtures check themselves with `redis-cli --tls`, an independent TLS
//! client (OpenSSL), so a test failing against rump is not a broken fixture.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

use super::cluster::{node_args, watchdog, Cluster};
use super::{clean_up_after_exit, free_port, server_binary, spawn_server, Flavor, Server};

/// The files of the test PKI, all PEM.
pub struct Pki {
    dir: PathBuf,
}

/// Which certificate a TLS server presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerCert {
    /// Signed by the CA for `127.0.0.1`, `::1` and `localhost`.
    Good,
    /// Signed by the CA for `other.example` only.
    OtherName,
    /// Signed by the CA for `127.0.0.1` and `localhost`, expired in 2001.
    Expired,
    /// Signed by the CA for `localhost` only (no IP address): what a
    /// cluster whose nodes announce IPs may present.
    LocalhostOnly,
}

impl ServerCert {
    /// The file stem of its certificate (`.pem`) and key (`.key`).
    fn stem(self) -> &'static str {
        match self {
            ServerCert::Good => "server",
            ServerCert::OtherName => "other-name",
            ServerCert::Expired => "expired",
            ServerCert::LocalhostOnly => "localhost-only",
        }
    }
}

impl Pki {
    /// A file of the PKI, as an argument.
    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// The CA that signs every certificate below.
    pub fn ca(&self) -> String {
        self.file("ca.pem")
    }

    /// A second CA, unrelated to [`Pki::ca`]: it signed nothing here.
    pub fn other_ca(&self) -> String {
        self.file("other-ca.pem")
    }

    /// A bundle of both CAs, the unrelated one first.
    pub fn ca_bundle(&self) -> String {
        self.file("ca-bundle.pem")
    }

    /// A server certificate and its key (PKCS#8).
    pub fn server(&self, which: ServerCert) -> (String, String) {
        (
            self.file(&format!("{}.pem", which.stem())),
            self.file(&format!("{}.key", which.stem())),
        )
    }

    /// The client certificate (ECDSA P-256), signed by the CA.
    pub fn client_cert(&self) -> String {
        self.file("client.pem")
    }

    /// Its key in PKCS#8 (`BEGIN PRIVATE KEY`).
    pub fn client_key(&self) -> String {
        self.file("client.key")
    }

    /// The same key in SEC1 (`BEGIN EC PRIVATE KEY`).
    pub fn client_key_sec1(&self) -> String {
        self.file("client-sec1.key")
    }

    /// A second client certificate, for an RSA key, signed by the CA.
    pub fn client_rsa_cert(&self) -> String {
        self.file("client-rsa.pem")
    }

    /// Its key in PKCS#1 (`BEGIN RSA PRIVATE KEY`).
    pub fn client_rsa_key_pkcs1(&self) -> String {
        self.file("client-rsa-pkcs1.key")
    }

    /// A file that is not PEM at all.
    pub fn garbage(&self) -> String {
        self.file("garbage.pem")
    }
}

/// The test PKI, generated on first use into a temp dir that is removed
/// after the test process exits.
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("rump-pki-")
            .tempdir()
            .expect("temp dir for the test PKI")
            .keep();
        generate(&dir);
        clean_up_after_exit(&[], &[&dir]);
        Pki { dir }
    })
}

/// Writes every file of [`Pki`] into `dir`.
fn generate(dir: &Path) {
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("write {name}: {e}"));
    };
    let ca = new_ca("rump test CA");
    let other_ca = new_ca("rump unrelated CA");
    write("ca.pem", &ca.pem());
    write("other-ca.pem", &other_ca.pem());
    write("ca-bundle.pem", &format!("{}{}", other_ca.pem(), ca.pem()));

    let forever = 4000;
    let leaves: [(ServerCert, &[&str], i32); 4] = [
        (
            ServerCert::Good,
            &["127.0.0.1", "::1", "localhost"],
            forever,
        ),
        (ServerCert::OtherName, &["other.example"], forever),
        (ServerCert::Expired, &["127.0.0.1", "localhost"], 2001),
        (ServerCert::LocalhostOnly, &["localhost"], forever),
    ];
    for (which, names, not_after) in leaves {
        let key = KeyPair::generate().expect("server key");
        // Redis presents its server certificate as a client certificate
        // too, on the cluster bus and to its master: both usages.
        let cert = leaf(
            &ca,
            names,
            &key,
            not_after,
            &[
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        );
        write(&format!("{}.pem", which.stem()), &cert);
        write(&format!("{}.key", which.stem()), &key.serialize_pem());
    }

    let client_key = KeyPair::generate().expect("client key");
    let client = &[ExtendedKeyUsagePurpose::ClientAuth];
    write(
        "client.pem",
        &leaf(&ca, &["rump-client"], &client_key, forever, client),
    );
    write("client.key", &client_key.serialize_pem());
    let sec1 = openssl(&["pkey", "-traditional"], &client_key.serialize_pem());
    assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"), "{sec1}");
    write("client-sec1.key", &sec1);

    let rsa_pkcs8 = openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
        "",
    );
    let rsa_key = KeyPair::from_pem(&rsa_pkcs8).expect("rcgen reads the RSA key");
    write(
        "client-rsa.pem",
        &leaf(&ca, &["rump-rsa-client"], &rsa_key, forever, client),
    );
    let pkcs1 = openssl(&["pkey", "-traditional"], &rsa_pkcs8);
    assert!(
        pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"),
        "{pkcs1}"
    );
    write("client-rsa-pkcs1.key", &pkcs1);

    write("garbage.pem", "this is not a PEM file\n");
}

/// A self-signed CA named `name`.
fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name = common_name(name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key")).expect("CA")
}

/// A certificate for `names` (IP addresses become IP SANs) and `key`,
/// signed by `ca`, valid from 2000 until the start of `until_year`, as PEM.
fn leaf(
    ca: &CertifiedIssuer<'static, KeyPair>,
    names: &[&str],
    key: &KeyPair,
    until_year: i32,
    usages: &[ExtendedKeyUsagePurpose],
) -> String {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names.clone()).expect("leaf params");
    params.distinguished_name = common_name(&names[0]);
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(until_year, 1, 1);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = usages.to_vec();
    params.signed_by(key, ca).expect("sign leaf").pem()
}

fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

/// Runs `openssl args` with `input` on stdin; returns its stdout.
fn openssl(args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run openssl: {e}; install openssl"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write to openssl");
    let out = child.wait_with_output().expect("openssl output");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("PEM is text")
}

/// How a TLS server is started.
#[derive(Clone, Debug)]
pub struct TlsOpts {
    /// The certificate it presents.
    pub cert: ServerCert,
    /// `--tls-auth-clients yes`: a client must present a certificate.
    pub auth_clients: bool,
    /// Also listen in plain text on [`Server::port`], for the test's own
    /// client (rump is only ever given the TLS port).
    pub plain_port: bool,
    /// `--requirepass`.
    pub password: Option<&'static str>,
    /// More `--name value` arguments.
    pub extra: Vec<String>,
}

impl Default for TlsOpts {
    fn default() -> TlsOpts {
        TlsOpts {
            cert: ServerCert::Good,
            auth_clients: false,
            plain_port: true,
            password: None,
            extra: Vec::new(),
        }
    }
}

impl TlsOpts {
    /// The good certificate, no client certificate required, a plain port.
    pub fn new() -> TlsOpts {
        TlsOpts::default()
    }

    pub fn cert(mut self, cert: ServerCert) -> TlsOpts {
        self.cert = cert;
        self
    }

    pub fn auth_clients(mut self) -> TlsOpts {
        self.auth_clients = true;
        self
    }

    pub fn tls_only(mut self) -> TlsOpts {
        self.plain_port = false;
        self
    }

    pub fn password(mut self, password: &'static str) -> TlsOpts {
        self.password = Some(password);
        self
    }

    /// The server arguments for TLS on `tls_port`.
    fn args(&self, tls_port: u16) -> Vec<String> {
        let pki = pki();
        let (cert, key) = pki.server(self.cert);
        let mut args: Vec<String> = [
            "--tls-port",
            &tls_port.to_string(),
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &pki.ca(),
            "--tls-auth-clients",
            if self.auth_clients { "yes" } else { "no" },
            // Both loopbacks, so `localhost` and `[::1]` reach it however
            // they resolve.
            "--bind",
            "127.0.0.1",
            "::1",
        ]
        .map(String::from)
        .to_vec();
        if let Some(password) = self.password {
            args.extend(["--requirepass".to_string(), password.to_string()]);
        }
        args.extend(self.extra.iter().cloned());
        args
    }
}

/// How long a TLS server gets to say it is ready.
const READY_WITHIN: Duration = Duration::from_secs(10);

impl Server {
    /// Starts Debian's redis-server with TLS on [`Server::tls_port`] (and,
    /// with `opts.plain_port`, plain text on [`Server::port`]).
    pub fn start_tls(opts: &TlsOpts) -> Server {
        let binary = server_binary(Flavor::Redis);
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let dir = tempfile::tempdir().expect("temp dir");
            let port = if opts.plain_port { free_port() } else { 0 };
            let tls_port = loop {
                let p = free_port();
                if p != port {
                    break p;
                }
            };
            let extra = opts.args(tls_port);
            let child = spawn_server(Flavor::Redis, &binary, port, dir.path(), &extra);
            let mut server = Server {
                child,
                port,
                tls_port: Some(tls_port),
                dir,
                flavor: Flavor::Redis,
                extra,
            };
            if server.wait_tls_ready() {
                return server;
            }
            // Lost a port race (or failed to start): try other ports.
            last_log = server.log();
            drop(server);
        }
        panic!("{binary} with TLS did not start after 5 attempts; last log:\n{last_log}");
    }

    /// True once the log says the server accepts connections (a TLS port
    /// cannot be probed with the plain test client); false if it exited.
    fn wait_tls_ready(&mut self) -> bool {
        let deadline = Instant::now() + READY_WITHIN;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if self.log().contains("Ready to accept connections") {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The TLS port; panics for a server without one.
    pub fn tls(&self) -> u16 {
        self.tls_port
            .expect("not a TLS server: start it with Server::start_tls")
    }

    /// `rediss://127.0.0.1:TLS_PORT`.
    pub fn tls_url(&self) -> String {
        self.tls_url_via("127.0.0.1")
    }

    /// `rediss://HOST:TLS_PORT` (`host` as it goes into a URI: `[::1]`).
    pub fn tls_url_via(&self, host: &str) -> String {
        format!("rediss://{host}:{}", self.tls())
    }

    /// `127.0.0.1:TLS_PORT`: how rump names the endpoint.
    pub fn tls_addr(&self) -> String {
        format!("127.0.0.1:{}", self.tls())
    }

    /// Runs `redis-cli --tls` (with the client certificate, which a server
    /// requiring one accepts and others ignore) on the TLS port; returns
    /// its output. Panics if redis-cli fails.
    pub fn tls_cli(&self, password: Option<&str>, args: &[&str]) -> String {
        let pki = pki();
        let cli = std::env::var("REDIS_CLI").unwrap_or_else(|_| "redis-cli".into());
        let mut cmd = Command::new(&cli);
        cmd.args(["--tls", "--cacert", &pki.ca()])
            .args(["--cert", &pki.client_cert(), "--key", &pki.client_key()])
            .args(["-h", "127.0.0.1", "-p", &self.tls().to_string()]);
        if let Some(password) = password {
            cmd.args(["-a", password, "--no-auth-warning"]);
        }
        let out = cmd
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cli:?}: {e}; install redis-tools"));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success() && !stdout.starts_with("ERR") && !stdout.contains("error"),
            "{cli} --tls -p {} {args:?}: {:?}\n{stdout}\n{}\n{}",
            self.tls(),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        stdout
    }

    /// `DBSIZE` read over TLS with `redis-cli` (for a TLS-only server).
    pub fn tls_dbsize(&self, password: Option<&str>) -> i64 {
        let out = self.tls_cli(password, &["DBSIZE"]);
        out.trim()
            .parse()
            .unwrap_or_else(|_| panic!("DBSIZE over TLS -> {out:?}"))
    }
}

/// A cluster of 3 masters without replicas (the machine has 2 cores), every
/// node with `--tls-cluster yes --tls-replication yes` and the
/// [`ServerCert::LocalhostOnly`] certificate, so the nodes announce IPs that
/// their certificates do not name. Each node also has a plain port for the
/// test helpers, which reach it as a [`Cluster`] does; over TLS, `CLUSTER
/// SLOTS` announces the TLS ports.
///
/// Shared by every test of this process like
/// [`super::cluster::shared_cluster`], with the same rules: a key prefix of
/// one's own, no flushing, no topology changes.
pub fn shared_tls_cluster() -> &'static Cluster {
    static SHARED: OnceLock<Cluster> = OnceLock::new();
    SHARED.get_or_init(|| {
        let nodes: Vec<Server> = (0..3)
            .map(|_| {
                let mut opts = TlsOpts::new().cert(ServerCert::LocalhostOnly);
                opts.extra = node_args();
                opts.extra
                    .extend(["--tls-cluster", "yes", "--tls-replication", "yes"].map(String::from));
                Server::start_tls(&opts)
            })
            .collect();
        let cluster = Cluster::form(nodes, 3, 0);
        watchdog(&cluster);
        cluster
    })
}

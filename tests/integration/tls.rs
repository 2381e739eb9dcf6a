//! TLS: `rediss://` at either end and with dump files, client certificates
//! in every key format, server names, `--tls-insecure`, clusters over TLS,
//! and each handshake failure as one line naming the endpoint, exit 1,
//! nothing written. Against Debian's redis-server (OpenSSL) with
//! certificates the fixtures generate.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, RandomState};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use resp::Frame;

use crate::cluster::mixed_keys;
use crate::cmd;
use crate::migrate::{assert_same_values, load_every_type};
use crate::util::cluster::Cluster;
use crate::util::tls::{pki, shared_tls_cluster, ServerCert, TlsOpts};
use crate::util::{
    assert_same_snapshots, free_port, snapshot_matching, Client, Run, Running, Server,
};

/// `openssl verify` of a fixture certificate against `ca`: the fixtures
/// are what the tests say they are, checked by a verifier that is not rump's.
fn openssl_verify(ca: &str, cert: &str) -> (bool, String) {
    let out = Command::new("openssl")
        .args(["verify", "-CAfile", ca, cert])
        .output()
        .expect("run openssl");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn fixtures_are_what_they_claim() {
    let pki = pki();
    let (good, _) = pki.server(ServerCert::Good);
    let (expired, _) = pki.server(ServerCert::Expired);
    let (other, _) = pki.server(ServerCert::OtherName);
    for cert in [&good, &other, &pki.client_cert(), &pki.client_rsa_cert()] {
        let (ok, out) = openssl_verify(&pki.ca(), cert);
        assert!(ok, "{cert}: {out}");
        let (ok, out) = openssl_verify(&pki.other_ca(), cert);
        assert!(!ok, "{cert} verifies against the unrelated CA: {out}");
        let (ok, out) = openssl_verify(&pki.ca_bundle(), cert);
        assert!(ok, "{cert} against the bundle: {out}");
    }
    let (ok, out) = openssl_verify(&pki.ca(), &expired);
    assert!(!ok && out.contains("expired"), "{out}");
    let sans = |cert: &str| {
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-ext", "subjectAltName", "-in", cert])
            .output()
            .expect("run openssl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let good_sans = sans(&good);
    for name in [
        "IP Address:127.0.0.1",
        "IP Address:0:0:0:0:0:0:0:1",
        "DNS:localhost",
    ] {
        assert!(good_sans.contains(name), "{good_sans}");
    }
    assert!(!sans(&other).contains("127.0.0.1"), "{}", sans(&other));
}

#[test]
fn tls_servers_answer_redis_cli() {
    let pki = pki();
    let plain_and_tls = Server::start_tls(&TlsOpts::new());
    assert_eq!(plain_and_tls.tls_cli(None, &["PING"]).trim(), "PONG");
    assert_eq!(plain_and_tls.client().int(&["DBSIZE"]), 0);

    let strict = Server::start_tls(&TlsOpts::new().tls_only().auth_clients().password("pw"));
    strict.tls_cli(Some("pw"), &["SET", "k", "v"]);
    assert_eq!(strict.tls_dbsize(Some("pw")), 1);
    // Every client key format is one OpenSSL accepts, and the server
    // refuses a client without a certificate.
    let cli = |cert: Option<(&str, &str)>| {
        let mut cmd = Command::new("redis-cli");
        cmd.args([
            "--tls",
            "--cacert",
            &pki.ca(),
            "-p",
            &strict.tls().to_string(),
        ]);
        if let Some((cert, key)) = cert {
            cmd.args(["--cert", cert, "--key", key]);
        }
        let out = cmd
            .args(["-a", "pw", "--no-auth-warning", "PING"])
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    assert_eq!(
        cli(Some((&pki.client_cert(), &pki.client_key_sec1()))).trim(),
        "PONG"
    );
    assert_eq!(
        cli(Some((&pki.client_rsa_cert(), &pki.client_rsa_key_pkcs1()))).trim(),
        "PONG"
    );
    assert_ne!(cli(None).trim(), "PONG");

    // Redis serves the bad certificates (OpenSSL, like rump, refuses them
    // unless told not to verify).
    for cert in [ServerCert::Expired, ServerCert::OtherName] {
        let server = Server::start_tls(&TlsOpts::new().tls_only().cert(cert));
        let out = Command::new("redis-cli")
            .args([
                "--tls",
                "--insecure",
                "-p",
                &server.tls().to_string(),
                "PING",
            ])
            .output()
            .expect("redis-cli");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "PONG",
            "{cert:?}"
        );
    }
}

#[test]
fn tls_cluster_announces_its_tls_ports() {
    let cluster = shared_tls_cluster();
    for node in &cluster.masters {
        let slots = node.tls_cli(None, &["CLUSTER", "SLOTS"]);
        for other in &cluster.masters {
            assert!(
                slots.lines().any(|l| l.trim() == other.tls().to_string()),
                "node {} over TLS does not announce {}'s TLS port {}:\n{slots}",
                node.tls(),
                other.port,
                other.tls()
            );
        }
    }
}

// ---------------------------------------------------------------- helpers

/// How long one rump run may take here: a debug build on 2 busy cores.
const RUN_WITHIN: Duration = Duration::from_secs(60);

/// Runs rump to completion within [`RUN_WITHIN`].
fn run(args: &[&str]) -> Run {
    Running::start(args).wait(RUN_WITHIN)
}

/// Runs rump with `args` and then `tls` (the `--tls-*` flags).
fn run_tls(args: &[&str], tls: &[&str]) -> Run {
    run(&[args, tls].concat())
}

/// `--tls-ca` naming the test CA (owned: the path is built at run time).
fn trust_ca() -> [String; 2] {
    ["--tls-ca".into(), pki().ca()]
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Every type (binary names and values; a 1.5 MB string, so a value spans
/// many TLS records), 2000 small strings, and two keys with a TTL.
fn seed(server: &Server) {
    let mut c = server.client();
    load_every_type(&mut c);
    c.populate(2000, 32);
    c.pipeline(&[
        cmd!("SET", "ttl:string", "v", "PX", "600000"),
        cmd!("RPUSH", "ttl:list", "a", "b"),
        cmd!("PEXPIRE", "ttl:list", "900000"),
    ]);
}

/// `dst` holds exactly `src`'s keys with equal values, and the TTL keys the
/// same absolute expiry (rump writes them with ABSTTL).
fn assert_copied(src: &Server, dst: &Server) {
    let (mut s, mut d) = (src.client(), dst.client());
    let keys = s.keys();
    assert!(
        keys.len() > 2000,
        "the source holds only {} keys",
        keys.len()
    );
    assert_eq!(d.dbsize(), s.dbsize(), "key counts differ");
    assert!(
        d.keys() == keys,
        "the target holds other keys than the source"
    );
    assert_same_values(&mut s, &mut d, &keys);
    for key in [&b"ttl:string"[..], b"ttl:list", b"string"] {
        assert_eq!(
            d.pexpiretime(key),
            s.pexpiretime(key),
            "{:?}",
            String::from_utf8_lossy(key)
        );
    }
}

/// Empties the plain `target`, copies `from` into it with the `tls` flags,
/// and checks it then holds `keys` keys.
fn copy_all(from: &str, target: &Server, tls: &[&str], keys: i64) -> Run {
    target.client().ok(&["FLUSHALL"]);
    let run = run_tls(&["-from", from, "-to", &target.url()], tls);
    run.success();
    assert_eq!(target.client().dbsize(), keys, "from {from}");
    run
}

/// Empties the plain `target`, runs rump from `from` into it with the `tls`
/// flags: it must fail as [`assert_failed`] says, having written nothing.
fn fail_into(from: &str, target: &Server, tls: &[&str], endpoint: &str, needles: &[&str]) {
    target.client().ok(&["FLUSHALL"]);
    let run = run_tls(&["-from", from, "-to", &target.url()], tls);
    assert_failed(&run, endpoint, needles);
    assert_eq!(target.client().dbsize(), 0, "written to the target");
}

/// Panics unless `run` failed as a refused connection must: exit 1, and
/// one error line that names `endpoint` and says each of `needles`
/// (compared case-insensitively).
fn assert_failed(run: &Run, endpoint: &str, needles: &[&str]) {
    run.expect_code(1);
    let line = run.error_line();
    assert!(
        line.contains(endpoint),
        "the error line does not name {endpoint}: {line:?}\n$ {}\n{}",
        run.command,
        run.stderr
    );
    let lower = line.to_lowercase();
    for needle in needles {
        assert!(
            lower.contains(&needle.to_lowercase()),
            "expected {needle:?} in the error line {line:?}\n$ {}\n{}",
            run.command,
            run.stderr
        );
    }
}

/// A TLS server started with `opts`, reached as `rediss://HOST:PORT`, fails
/// the handshake for rump given the `tls` flags, as the source and as the
/// target: exit 1, the error line names it and says `needles`, and the
/// target holds nothing.
fn assert_handshake_fails(opts: TlsOpts, host: &str, tls: &[&str], needles: &[&str]) {
    let server = Server::start_tls(&opts);
    let plain = Server::start();
    let url = server.tls_url_via(host);
    let endpoint = format!("{host}:{}", server.tls());

    server.client().populate(100, 16);
    fail_into(&url, &plain, tls, &endpoint, needles);

    server.client().ok(&["FLUSHALL"]);
    plain.client().populate(100, 16);
    let run = run_tls(&["-from", &plain.url(), "-to", &url], tls);
    assert_failed(&run, &endpoint, needles);
    assert_eq!(server.client().dbsize(), 0, "written to the TLS target");
}

// ---------------------------------------------------------- copies over TLS

#[test]
fn tls_at_both_ends_copies_everything() {
    let source = Server::start_tls(&TlsOpts::new());
    let target = Server::start_tls(&TlsOpts::new());
    seed(&source);
    run_tls(
        &["-from", &source.tls_url(), "-to", &target.tls_url()],
        &strs(&trust_ca()),
    )
    .success();
    assert_copied(&source, &target);
}

#[test]
fn tls_source_to_plain_target_and_plain_source_to_tls_target() {
    let source = Server::start_tls(&TlsOpts::new());
    let middle = Server::start();
    let target = Server::start_tls(&TlsOpts::new());
    seed(&source);
    let ca = trust_ca();
    run_tls(
        &["-from", &source.tls_url(), "-to", &middle.url()],
        &strs(&ca),
    )
    .success();
    assert_copied(&source, &middle);
    run_tls(
        &["-from", &middle.url(), "-to", &target.tls_url()],
        &strs(&ca),
    )
    .success();
    assert_copied(&middle, &target);
}

/// A TLS server → dump file → another TLS server; the CA comes from a
/// bundle that holds an unrelated CA first.
#[test]
fn dump_file_to_and_from_tls_servers() {
    let source = Server::start_tls(&TlsOpts::new());
    let target = Server::start_tls(&TlsOpts::new());
    seed(&source);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("tls.rump").display().to_string();
    let bundle = ["--tls-ca", &pki().ca_bundle()];
    run_tls(&["-from", &source.tls_url(), "-to", &file], &bundle).success();
    run_tls(&["-from", &file, "-to", &target.tls_url()], &bundle).success();
    assert_copied(&source, &target);
}

/// `--tls-auth-clients yes` at both ends: the client certificate with its
/// key in PKCS#8 and SEC1 (ECDSA) and PKCS#1 (RSA). The key is read once:
/// from a FIFO written once, for a run with connections to both servers.
#[test]
fn client_certificates_with_keys_in_every_format() {
    let pki = pki();
    let source = Server::start_tls(&TlsOpts::new().auth_clients());
    let target = Server::start_tls(&TlsOpts::new().auth_clients());
    seed(&source);
    let ca = pki.ca();
    let (ec, rsa) = (pki.client_cert(), pki.client_rsa_cert());
    // Both ends over TLS, each asking for the client certificate.
    let copy_with = |cert: &str, key: &str| {
        target.client().ok(&["FLUSHALL"]);
        let ends = ["-from", &source.tls_url(), "-to", &target.tls_url()];
        run_tls(
            &ends,
            &["--tls-ca", &ca, "--tls-cert", cert, "--tls-key", key],
        )
        .success();
        assert_copied(&source, &target);
    };
    copy_with(&ec, &pki.client_key());
    copy_with(&ec, &pki.client_key_sec1());
    copy_with(&rsa, &pki.client_rsa_key_pkcs1());

    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("key.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let key = std::fs::read(pki.client_key_sec1()).expect("read the key");
    let writer_path = fifo.clone();
    // Opening a FIFO for writing waits for a reader: this writes the key
    // exactly once. A second read by rump would wait forever for a writer,
    // and the run's deadline would fail the test. Not joined: if rump never
    // opens the FIFO, the assertion below fails the test anyway.
    std::thread::spawn(move || std::fs::write(writer_path, key));
    copy_with(&ec, &fifo.display().to_string());
}

/// A certificate for `other.example` only: accepted with `--tls-server-name
/// other.example`, refused without it and with another name.
#[test]
fn tls_server_name_verifies_another_name() {
    let source = Server::start_tls(&TlsOpts::new().cert(ServerCert::OtherName));
    let target = Server::start();
    seed(&source);
    let ca = trust_ca();
    let mut tls = strs(&ca);
    tls.extend(["--tls-server-name", "other.example"]);
    run_tls(&["-from", &source.tls_url(), "-to", &target.url()], &tls).success();
    assert_copied(&source, &target);

    let url = source.tls_url();
    let mismatch = ["not valid for"];
    fail_into(&url, &target, &strs(&ca), &source.tls_addr(), &mismatch);
    let mut wrong = strs(&ca);
    wrong.extend(["--tls-server-name", "wrong.example"]);
    fail_into(&url, &target, &wrong, &source.tls_addr(), &mismatch);
}

/// An IP address in the URI verifies against the certificate's IP SANs
/// (IPv4 and IPv6), a name against its DNS names; a certificate naming only
/// `localhost` is not valid for 127.0.0.1, however that resolves.
#[test]
fn the_uri_host_verifies_against_ip_and_dns_names() {
    let good = Server::start_tls(&TlsOpts::new());
    let named = Server::start_tls(&TlsOpts::new().cert(ServerCert::LocalhostOnly));
    good.client().populate(50, 8);
    named.client().populate(50, 8);
    let target = Server::start();
    let ca = trust_ca();
    for (server, host) in [
        (&good, "127.0.0.1"),
        (&good, "[::1]"),
        (&good, "localhost"),
        (&named, "localhost"),
    ] {
        copy_all(&server.tls_url_via(host), &target, &strs(&ca), 50);
    }
    let (url, addr) = (named.tls_url(), named.tls_addr());
    fail_into(&url, &target, &strs(&ca), &addr, &["not valid for"]);
}

/// `--tls-insecure` connects without verifying (a CA rump does not trust,
/// an expired certificate, the wrong name) and says so on stderr.
#[test]
fn tls_insecure_connects_unverified_and_warns() {
    let untrusted = Server::start_tls(&TlsOpts::new());
    let expired = Server::start_tls(&TlsOpts::new().cert(ServerCert::Expired));
    let other = Server::start_tls(&TlsOpts::new().cert(ServerCert::OtherName));
    let target = Server::start();
    let other_ca = pki().other_ca();
    for (server, tls) in [
        (&untrusted, vec!["--tls-insecure"]),
        (&untrusted, vec!["--tls-insecure", "--tls-ca", &other_ca]),
        (&expired, vec!["--tls-insecure"]),
        (&other, vec!["--tls-insecure"]),
    ] {
        server.client().populate(20, 8);
        let run = copy_all(&server.tls_url(), &target, &tls, 20);
        assert!(
            run.stderr.contains("--tls-insecure"),
            "no warning on stderr: {}",
            run.stderr
        );
    }
}

// ------------------------------------------------------------ usage errors

/// Every TLS flag needs a `rediss://` endpoint: with `redis://` at both
/// ends, or with a dump file, it is a usage error (exit 2) found before
/// anything is connected or written.
#[test]
fn tls_flags_without_a_rediss_endpoint_are_usage_errors() {
    let pki = pki();
    let (a, b) = (free_port(), free_port());
    let (from, to) = (
        format!("redis://127.0.0.1:{a}"),
        format!("redis://127.0.0.1:{b}"),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("never.rump").display().to_string();
    let (ca, cert, key) = (pki.ca(), pki.client_cert(), pki.client_key());
    let flag_sets: [&[&str]; 4] = [
        &["--tls-ca", &ca],
        &["--tls-cert", &cert, "--tls-key", &key],
        &["--tls-server-name", "localhost"],
        &["--tls-insecure"],
    ];
    for flags in flag_sets {
        for ends in [["-from", &from, "-to", &to], ["-from", &from, "-to", &file]] {
            let run = run_tls(&ends, flags);
            run.expect_code(2);
            let line = run.error_line();
            assert!(line.contains("rediss://"), "{line:?}\n{}", run.command);
        }
    }
    assert!(!Path::new(&file).exists(), "a dump file was written");
}

#[test]
fn tls_cert_and_tls_key_need_each_other() {
    let pki = pki();
    let from = format!("rediss://127.0.0.1:{}", free_port());
    let to = format!("redis://127.0.0.1:{}", free_port());
    let (cert, key) = (pki.client_cert(), pki.client_key());
    for (given, missing) in [
        (["--tls-cert", &cert], "--tls-key"),
        (["--tls-key", &key], "--tls-cert"),
    ] {
        let run = run_tls(&["-from", &from, "-to", &to], &given);
        run.expect_code(2);
        let line = run.error_line();
        assert!(
            line.contains(missing),
            "{line:?} does not ask for {missing}"
        );
    }
}

// ------------------------------------------------------- handshake failures

#[test]
fn an_unknown_ca_fails_at_either_end() {
    let other_ca = pki().other_ca();
    assert_handshake_fails(
        TlsOpts::new(),
        "127.0.0.1",
        &["--tls-ca", &other_ca],
        &["unknown ca"],
    );
}

/// Without `--tls-ca` the system roots are trusted, and they do not hold
/// the test CA.
#[test]
fn a_ca_outside_the_system_roots_is_unknown() {
    assert_handshake_fails(TlsOpts::new(), "127.0.0.1", &[], &["unknown ca"]);
}

#[test]
fn a_host_name_mismatch_fails_at_either_end() {
    let ca = trust_ca();
    assert_handshake_fails(
        TlsOpts::new().cert(ServerCert::OtherName),
        "localhost",
        &strs(&ca),
        &["not valid for"],
    );
}

#[test]
fn an_expired_certificate_fails_at_either_end() {
    let ca = trust_ca();
    assert_handshake_fails(
        TlsOpts::new().cert(ServerCert::Expired),
        "127.0.0.1",
        &strs(&ca),
        &["expired"],
    );
}

#[test]
fn a_required_client_certificate_not_given_fails_at_either_end() {
    let ca = trust_ca();
    assert_handshake_fails(
        TlsOpts::new().auth_clients(),
        "127.0.0.1",
        &strs(&ca),
        &["client certificate"],
    );
}

/// A plain-text server behind `rediss://`: Redis does not answer a TLS
/// ClientHello at all, so rump must give up by itself, within about its
/// `--timeout`, and say what is wrong, at either end.
#[test]
fn a_plain_text_server_behind_rediss_fails_without_hanging() {
    let source = Server::start();
    let target = Server::start();
    source.client().populate(100, 16);
    let rediss = |s: &Server| format!("rediss://127.0.0.1:{}", s.port);
    let ca = pki().ca();
    let tls = ["--tls-ca", &ca, "--timeout", "5"];
    let start = Instant::now();
    // Both directions at once: each may take its whole timeout.
    let mut as_source =
        Running::start(&[&["-from", &rediss(&source), "-to", &target.url()][..], &tls].concat());
    let mut as_target =
        Running::start(&[&["-from", &source.url(), "-to", &rediss(&target)][..], &tls].concat());
    let (run_source, run_target) = (as_source.wait(RUN_WITHIN), as_target.wait(RUN_WITHIN));
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(25),
        "rump took {took:?} with --timeout 5"
    );
    assert_failed(
        &run_source,
        &format!("127.0.0.1:{}", source.port),
        &["plain text", "redis://"],
    );
    assert_failed(
        &run_target,
        &format!("127.0.0.1:{}", target.port),
        &["plain text", "redis://"],
    );
    assert_eq!(target.client().dbsize(), 0);
}

/// A TLS server behind `redis://` resets the connection: the error says
/// to use rediss://, at either end. The servers are TLS-only.
#[test]
fn a_tls_server_behind_redis_hints_rediss() {
    let tls_source = Server::start_tls(&TlsOpts::new().tls_only());
    let tls_target = Server::start_tls(&TlsOpts::new().tls_only());
    let plain_target = Server::start();
    let plain_source = Server::start();
    tls_source.tls_cli(None, &["DEBUG", "POPULATE", "100"]);
    plain_source.client().populate(100, 16);
    let redis = |s: &Server| format!("redis://127.0.0.1:{}", s.tls());
    let timeout = ["--timeout", "5"];
    let start = Instant::now();
    let mut as_source = Running::start(
        &[
            &["-from", &redis(&tls_source), "-to", &plain_target.url()][..],
            &timeout,
        ]
        .concat(),
    );
    let mut as_target = Running::start(
        &[
            &["-from", &plain_source.url(), "-to", &redis(&tls_target)][..],
            &timeout,
        ]
        .concat(),
    );
    let (run_source, run_target) = (as_source.wait(RUN_WITHIN), as_target.wait(RUN_WITHIN));
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(25),
        "rump took {took:?} with --timeout 5"
    );
    assert_failed(&run_source, &tls_source.tls_addr(), &["rediss://"]);
    assert_failed(&run_target, &tls_target.tls_addr(), &["rediss://"]);
    assert_eq!(plain_target.client().dbsize(), 0);
    assert_eq!(tls_target.tls_dbsize(None), 0);
}

/// A missing or malformed `--tls-ca`, `--tls-cert` or `--tls-key` file (or
/// one holding the wrong kind of PEM, or a key that is not the
/// certificate's) fails the run before anything is written, naming the
/// file and the flag.
#[test]
fn unusable_certificate_files_are_named() {
    let pki = pki();
    let source = Server::start_tls(&TlsOpts::new().tls_only());
    source.tls_cli(None, &["DEBUG", "POPULATE", "100"]);
    let target = Server::start();
    let missing = "/nonexistent/rump-tls/file.pem".to_string();
    let (ca, cert, key, garbage) = (pki.ca(), pki.client_cert(), pki.client_key(), pki.garbage());
    let (_, server_key) = pki.server(ServerCert::Good);
    // (flag at fault, its file, the other flags)
    let cases: Vec<(&str, &String, Vec<&str>)> = vec![
        ("--tls-ca", &missing, vec![]),
        ("--tls-ca", &garbage, vec![]),
        ("--tls-ca", &key, vec![]),
        ("--tls-cert", &missing, vec!["--tls-key", &key]),
        ("--tls-cert", &garbage, vec!["--tls-key", &key]),
        ("--tls-cert", &key, vec!["--tls-key", &key]),
        ("--tls-key", &missing, vec!["--tls-cert", &cert]),
        ("--tls-key", &garbage, vec!["--tls-cert", &cert]),
        ("--tls-key", &cert, vec!["--tls-cert", &cert]),
        ("--tls-key", &server_key, vec!["--tls-cert", &cert]),
    ];
    for (flag, file, others) in cases {
        let mut tls = vec![flag, file.as_str()];
        tls.extend(others);
        if flag != "--tls-ca" {
            tls.extend(["--tls-ca", &ca]);
        }
        let run = run_tls(&["-from", &source.tls_url(), "-to", &target.url()], &tls);
        run.expect_code(1);
        let line = run.error_line();
        assert!(
            line.contains(file.as_str()) && line.contains(flag),
            "{flag} {file}: the error line names neither: {line:?}\n{}",
            run.command
        );
        assert_eq!(target.client().dbsize(), 0, "{flag} {file}");
    }
}

// ----------------------------------------------------------------- secrets

/// The password of the servers in [`no_password_or_key_material_in_any_output`].
const PASSWORD: &str = "TlsS3cretPw0rd";

/// Panics if `run`'s output holds the password, a PEM private-key header,
/// or any line of the body of the private keys in `keys`.
fn assert_no_secrets(run: &Run, keys: &[String]) {
    let output = format!("{}\n{}", run.stdout, run.stderr);
    assert!(
        !output.contains(PASSWORD),
        "the password leaked:\n$ {}\n{output}",
        run.command
    );
    assert!(!output.contains("PRIVATE KEY"), "a key leaked:\n{output}");
    for key in keys {
        let pem = std::fs::read_to_string(key).expect("read the key");
        for body in pem
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 16)
        {
            assert!(!output.contains(body), "{key} leaked:\n{output}");
        }
    }
}

/// Passwords in `rediss://` URIs and client keys never appear in any output:
/// a successful run, handshake failures, a wrong password, and key files
/// given where a certificate belongs.
#[test]
fn no_password_or_key_material_in_any_output() {
    let pki = pki();
    let opts = TlsOpts::new().auth_clients().password(PASSWORD);
    let source = Server::start_tls(&opts);
    let target = Server::start_tls(&opts);
    let mut admin = source.client();
    admin.ok(&["AUTH", PASSWORD]);
    admin.populate(200, 16);
    let url = |s: &Server, pw: &str| format!("rediss://:{pw}@127.0.0.1:{}", s.tls());
    let (ca, other_ca) = (pki.ca(), pki.other_ca());
    let (cert, key, sec1) = (pki.client_cert(), pki.client_key(), pki.client_key_sec1());
    let keys = [key.clone(), sec1.clone(), pki.client_rsa_key_pkcs1()];
    let ends = [
        "-from".to_string(),
        url(&source, PASSWORD),
        "-to".into(),
        url(&target, PASSWORD),
    ];
    let ends = strs(&ends);
    let client = ["--tls-cert", &cert, "--tls-key", &sec1];

    let ok = run(&[&ends[..], &["--tls-ca", &ca, "--json"], &client].concat());
    ok.success();
    assert_no_secrets(&ok, &keys);
    let mut check = target.client();
    check.ok(&["AUTH", PASSWORD]);
    assert_eq!(check.dbsize(), 200);

    let failing: [Vec<&str>; 5] = [
        [&ends[..], &["--tls-ca", &other_ca], &client].concat(),
        [&ends[..], &["--tls-ca", &ca]].concat(),
        [
            &ends[..],
            &["--tls-ca", &ca, "--tls-cert", &key, "--tls-key", &key],
        ]
        .concat(),
        [
            &ends[..],
            &["--tls-ca", &ca, "--tls-cert", &cert, "--tls-key", &ca],
        ]
        .concat(),
        [&ends[..], &["--tls-ca", &key], &client].concat(),
    ];
    for args in failing {
        let run = run(&args);
        run.expect_code(1);
        assert_no_secrets(&run, &keys);
    }
    let wrong = url(&source, "wrong-password");
    let run = run(&[
        &["-from", &wrong, "-to", ends[3]][..],
        &["--tls-ca", &ca],
        &client,
    ]
    .concat());
    run.expect_code(1);
    assert_no_secrets(&run, &keys);
}

// ---------------------------------------------------------------- clusters

/// The `CLIENT LIST` entries named `name` (rump names its connections
/// `rump-source` and `rump-target`) on each of `nodes`, sampled until
/// stopped: which port of the node each connection came in on.
struct ConnectionWatch {
    stop: Arc<AtomicBool>,
    sampler: JoinHandle<BTreeSet<(u16, u16)>>,
}

impl ConnectionWatch {
    /// Starts sampling `nodes` (by their plain ports) every few ms.
    fn start(nodes: &[Server], name: &'static str) -> ConnectionWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
        let stopped = Arc::clone(&stop);
        let sampler = std::thread::spawn(move || {
            let mut clients: Vec<(u16, Client)> = ports
                .iter()
                .map(|&p| (p, Client::try_connect(p).expect("connect to a node")))
                .collect();
            let mut seen = BTreeSet::new();
            while !stopped.load(Ordering::SeqCst) {
                for (port, client) in &mut clients {
                    let Frame::Bulk(list) = client.ok(&["CLIENT", "LIST"]) else {
                        panic!("CLIENT LIST is not a bulk string");
                    };
                    for line in String::from_utf8_lossy(&list).lines() {
                        if field(line, "name") == Some(name) {
                            let laddr = field(line, "laddr").and_then(|a| a.rsplit(':').next());
                            let local = laddr.and_then(|p| p.parse().ok()).expect("laddr port");
                            seen.insert((*port, local));
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            seen
        });
        ConnectionWatch { stop, sampler }
    }

    /// Stops sampling; returns (node's plain port, port connected to).
    fn stop(self) -> BTreeSet<(u16, u16)> {
        self.stop.store(true, Ordering::SeqCst);
        self.sampler.join().expect("the CLIENT LIST sampler")
    }
}

/// The value of `name=` in one `CLIENT LIST` line.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// Every master of `cluster` had a connection from rump (`seen` by a
/// [`ConnectionWatch`]), and each came in on the node's TLS port.
fn assert_tls_ports_used(cluster: &Cluster, seen: &BTreeSet<(u16, u16)>) {
    for node in &cluster.masters {
        let used: Vec<u16> = seen
            .iter()
            .filter(|(n, _)| *n == node.port)
            .map(|(_, local)| *local)
            .collect();
        assert!(
            !used.is_empty(),
            "no rump connection seen on node {} (TLS port {}): {seen:?}",
            node.port,
            node.tls()
        );
        assert!(
            used.iter().all(|p| *p == node.tls()),
            "rump connected to node {} on ports {used:?}, not only its TLS port {}",
            node.port,
            node.tls()
        );
    }
}

/// `n` keys of every core type under `prefix` (some with TTLs, two sharing a
/// hash tag), plus three incompressible 1 MiB strings.
fn cluster_keys(prefix: &str, n: usize) -> Vec<Vec<Vec<u8>>> {
    let mut commands = mixed_keys(prefix, n);
    let random = RandomState::new();
    for i in 0..3u64 {
        let value: Vec<u8> = (0..(1u64 << 20) / 8)
            .flat_map(|j| random.hash_one((i, j)).to_le_bytes())
            .collect();
        commands.push(cmd!("SET", format!("{prefix}big{i}"), value));
    }
    commands
}

/// Keys the cluster tests copy; `--rate` stretches each run over about a
/// second, long enough to see every connection in `CLIENT LIST`.
const CLUSTER_KEYS: usize = 500;
const CLUSTER_RATE: &str = "500";

/// Runs rump with `args`, `--rate` and `--json` while watching the
/// connections named `name` on `cluster`'s masters: it must copy every one
/// of [`cluster_keys`], over the nodes' TLS ports only.
fn copy_over_tls_ports(cluster: &Cluster, name: &'static str, args: &[&str]) {
    let watch = ConnectionWatch::start(&cluster.masters, name);
    let run = run(&[args, &["--rate", CLUSTER_RATE, "--json"]].concat());
    let seen = watch.stop();
    run.success();
    assert_eq!(
        run.json_field("copied") as usize,
        CLUSTER_KEYS + 3,
        "{}",
        run.stdout
    );
    assert_tls_ports_used(cluster, &seen);
}

/// A TLS cluster source, seeded by name (`localhost`, which its certificates
/// hold) while its nodes announce 127.0.0.1 (which they do not): every key
/// arrives exact, and every node was read on its TLS port.
#[test]
fn tls_cluster_source_to_plain_target() {
    let cluster = shared_tls_cluster();
    cluster.pipeline(&cluster_keys("tls-c2s:", CLUSTER_KEYS));
    let ours = cluster.snapshot("tls-c2s:*");
    assert_eq!(ours.len(), CLUSTER_KEYS + 3);
    let target = Server::start();
    let ca = pki().ca();
    copy_over_tls_ports(
        cluster,
        "rump-source",
        &[
            "-from",
            &cluster.masters[0].tls_url_via("localhost"),
            "-to",
            &target.url(),
            "--match",
            "tls-c2s:*",
            "--tls-ca",
            &ca,
        ],
    );
    assert_same_snapshots(&ours, &snapshot_matching(target.port, "*"));
}

/// A plain source into a TLS cluster reached by IP, its certificates'
/// name given with `--tls-server-name`: every key on the master owning its
/// slot, written over the nodes' TLS ports.
#[test]
fn plain_source_to_tls_cluster_target() {
    let cluster = shared_tls_cluster();
    let source = Server::start();
    let mut c = source.client();
    c.pipeline(&cluster_keys("tls-s2c:", CLUSTER_KEYS));
    let ours = snapshot_matching(source.port, "*");
    assert_eq!(ours.len(), CLUSTER_KEYS + 3);
    let ca = pki().ca();
    copy_over_tls_ports(
        cluster,
        "rump-target",
        &[
            "-from",
            &source.url(),
            "-to",
            &cluster.masters[1].tls_url(),
            "--tls-server-name",
            "localhost",
            "--tls-ca",
            &ca,
        ],
    );
    assert_same_snapshots(&ours, &cluster.snapshot("tls-s2c:*"));
}

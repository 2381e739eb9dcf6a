//! The latency proxy itself (`benches/e2e/proxy.rs`), against tiny TCP
//! peers of the tests' own: a byte proxy has nothing Redis-specific to test,
//! and an echo server is what no real server is.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::proxy::{LatencyProxy, Shape};

/// A server on a free port that runs `serve` on its first client, in a thread.
fn one_client_server(
    serve: impl FnOnce(TcpStream) + Send + 'static,
) -> (u16, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        serve(stream);
    });
    (port, handle)
}

/// Echoes every byte back, then half-closes once the client has.
fn echo(mut stream: TcpStream) {
    let mut buf = vec![0; 1 << 16];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
}

fn connect(proxy: &LatencyProxy) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", proxy.port())).expect("connect to the proxy");
    stream.set_nodelay(true).expect("nodelay");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    stream
}

/// Byte `i` of the test stream: not periodic in any buffer size used here.
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

#[test]
fn carries_50_mib_each_way_exactly_at_0_ms_and_passes_eof_back() {
    const LEN: usize = 50 << 20;
    let (port, server) = one_client_server(echo);
    let proxy = LatencyProxy::start(port, Duration::ZERO).expect("proxy");
    let cpu_before = proxy.cpu().expect("the proxy's CPU time");
    let client = connect(&proxy);
    let mut writer = client.try_clone().expect("clone");
    let started = Instant::now();
    let sender = thread::spawn(move || {
        let data: Vec<u8> = (0..LEN).map(pattern).collect();
        for piece in data.chunks(1 << 20) {
            writer.write_all(piece).expect("write through the proxy");
        }
        writer.shutdown(Shutdown::Write).expect("half close");
    });
    let mut back = Vec::with_capacity(LEN);
    (&client)
        .read_to_end(&mut back)
        .expect("read the echo to EOF");
    let secs = started.elapsed().as_secs_f64();
    sender.join().expect("sender");
    server.join().expect("server");
    assert_eq!(back.len(), LEN, "bytes echoed back");
    if let Some(i) = (0..LEN).find(|&i| back[i] != pattern(i)) {
        panic!("byte {i} differs after the round trip");
    }
    assert_eq!(proxy.bytes(), (LEN as u64, LEN as u64));
    let cpu = proxy.cpu().expect("the proxy's CPU time") - cpu_before;
    eprintln!(
        "50 MiB each way through the proxy in {secs:.2} s ({:.0} MiB/s), proxy CPU {:.2} s",
        50.0 / secs,
        cpu.as_secs_f64()
    );
}

#[test]
fn a_round_trip_through_a_20_ms_proxy_takes_at_least_20_ms() {
    let (port, server) = one_client_server(echo);
    let proxy = LatencyProxy::start(port, Duration::from_millis(10)).expect("proxy");
    let mut client = connect(&proxy);
    let mut rtts = Vec::new();
    for i in 0..10u8 {
        let started = Instant::now();
        client.write_all(&[i]).expect("write");
        let mut byte = [0];
        client.read_exact(&mut byte).expect("read the echo");
        rtts.push(started.elapsed());
        assert_eq!(byte[0], i);
    }
    drop(client);
    server.join().expect("server");
    let (min, max) = (rtts.iter().min(), rtts.iter().max());
    let (Some(&min), Some(&max)) = (min, max) else {
        panic!("no round trips");
    };
    assert!(
        min >= Duration::from_millis(20),
        "fastest round trip {min:?}"
    );
    // Loose: a loaded 2-core machine may be late, but not by a round trip.
    assert!(
        max < Duration::from_millis(60),
        "slowest round trip {max:?}"
    );
}

#[test]
fn eof_passes_each_way_after_every_byte_before_it() {
    // The server reads to the client's EOF, answers with the count, and closes.
    let (port, server) = one_client_server(|mut stream| {
        let mut got = Vec::new();
        stream.read_to_end(&mut got).expect("read to EOF");
        let reply = format!("got {} bytes", got.len());
        stream.write_all(reply.as_bytes()).expect("reply");
    });
    let proxy = LatencyProxy::start(port, Duration::from_millis(5)).expect("proxy");
    let mut client = connect(&proxy);
    client.write_all(&[7; 100_000]).expect("write");
    client.shutdown(Shutdown::Write).expect("half close");
    let mut reply = String::new();
    client
        .read_to_string(&mut reply)
        .expect("the reply, then EOF");
    assert_eq!(reply, "got 100000 bytes");
    server.join().expect("server");
}

/// Seconds to push `len` bytes through a proxy shaped `shape` to a server
/// that reads them all, then answers how many it got.
fn timed_upload(shape: Shape, len: usize) -> f64 {
    let (port, server) = one_client_server(|mut stream| {
        let mut got = Vec::new();
        stream.read_to_end(&mut got).expect("read to EOF");
        stream.write_all(&got.len().to_le_bytes()).expect("reply");
    });
    let proxy = LatencyProxy::start_shaped(port, shape).expect("proxy");
    let mut client = connect(&proxy);
    let started = Instant::now();
    client.write_all(&vec![1; len]).expect("write");
    client.shutdown(Shutdown::Write).expect("half close");
    let mut reply = Vec::new();
    client.read_to_end(&mut reply).expect("reply");
    let secs = started.elapsed().as_secs_f64();
    server.join().expect("server");
    assert_eq!(reply, len.to_le_bytes());
    secs
}

#[test]
fn a_bandwidth_cap_paces_the_bytes() {
    const LEN: usize = 2 << 20;
    // 40 Mbit/s = 5 MB/s: 2 MiB take about 0.42 s.
    let shape = Shape {
        one_way: Duration::from_millis(1),
        mbit: Some(40.0),
        window: None,
    };
    let secs = timed_upload(shape, LEN);
    let expected = LEN as f64 / 5e6;
    assert!(
        secs >= expected * 0.95 && secs < expected * 3.0,
        "{LEN} bytes at 40 Mbit/s in {secs:.3} s, expected about {expected:.3} s"
    );
}

#[test]
fn a_window_caps_one_connection_at_a_window_per_delay() {
    const LEN: usize = 8 << 20;
    // 1 MiB in the delay line of 50 ms at a time: 20 MiB/s, so 8 MiB take
    // at least 7 delays (the last MiB still has one to go), 0.35 s; the
    // kernel's own socket buffers on both sides hold a little more.
    let shape = Shape {
        one_way: Duration::from_millis(50),
        mbit: None,
        window: Some(1 << 20),
    };
    let secs = timed_upload(shape, LEN);
    assert!(
        (0.25..3.0).contains(&secs),
        "8 MiB through a 1 MiB window of 50 ms in {secs:.3} s, expected about 0.4 s"
    );
}

#[test]
fn dropping_the_proxy_closes_its_connections_and_its_port() {
    let (port, server) = one_client_server(echo);
    let proxy = LatencyProxy::start(port, Duration::from_millis(1)).expect("proxy");
    let proxy_port = proxy.port();
    let mut client = connect(&proxy);
    client.write_all(b"x").expect("write");
    let mut byte = [0];
    client.read_exact(&mut byte).expect("echo");
    drop(proxy);
    let mut rest = Vec::new();
    let closed = client.read_to_end(&mut rest);
    assert!(
        matches!(closed, Ok(0)) || closed.is_err(),
        "still open: {closed:?}"
    );
    server.join().expect("the server saw its connection close");
    assert!(
        TcpStream::connect(("127.0.0.1", proxy_port)).is_err(),
        "the proxy's port still accepts"
    );
}

//! Bad input over raw TCP: the connection is closed at once (not left open and silent),
//! and the broker goes on serving normal clients.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use kafka_protocol::messages::ApiVersionsRequest;
use sluice_protocol::messages::{Request, Response};
use sluice_tests::{BrokerProcess, RawClient};

/// Sends `bytes` and expects the broker to close the connection within two seconds.
fn assert_closed_after(broker: &BrokerProcess, bytes: &[u8], what: &str) {
    let mut s = TcpStream::connect(broker.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = Instant::now();
    s.write_all(bytes).unwrap();
    let mut buf = [0u8; 64];
    let closed = match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(closed, "{what}: connection not closed");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{what}: closed only after {:?}",
        start.elapsed()
    );
}

fn assert_still_serves(broker: &BrokerProcess) {
    let mut c = RawClient::connect(broker.addr);
    let Response::ApiVersions(r) = c.call(3, Request::ApiVersions(ApiVersionsRequest::default()))
    else {
        panic!("api versions")
    };
    assert_eq!(r.error_code, 0);
}

#[test]
fn hostile_bytes_close_the_connection_and_the_broker_stays_up() {
    let mut broker = BrokerProcess::start(&[]);
    let mut huge = (i32::MAX).to_be_bytes().to_vec();
    huge.extend_from_slice(&[0; 16]);
    assert_closed_after(&broker, &huge, "2 GiB length prefix");
    assert_closed_after(&broker, &(-5i32).to_be_bytes(), "negative length");
    assert_closed_after(&broker, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", "HTTP request");
    // A TLS 1.2 ClientHello record header and the start of its body.
    let tls = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0, 0, 0, 0, 0];
    assert_closed_after(&broker, &tls, "TLS ClientHello");
    // A frame whose header names an API key Kafka does not define.
    let mut unknown = 12i32.to_be_bytes().to_vec();
    unknown.extend_from_slice(&[0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0, 0]);
    assert_closed_after(&broker, &unknown, "unknown API key");
    // A Metadata v12 frame with garbage where the body should be.
    let mut garbage = 20i32.to_be_bytes().to_vec();
    garbage.extend_from_slice(&[
        0, 3, 0, 12, 0, 0, 0, 9, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ]);
    assert_closed_after(&broker, &garbage, "garbage body");
    // A truncated frame: the client then goes away; the broker must not mind.
    {
        let mut s = TcpStream::connect(broker.addr).unwrap();
        s.write_all(&100i32.to_be_bytes()).unwrap();
        s.write_all(&[0, 18, 0, 3]).unwrap();
    }
    assert_still_serves(&broker);
    assert!(broker.is_running());
}

#[test]
fn api_versions_in_an_unknown_version_gets_v0_with_the_full_list() {
    let broker = BrokerProcess::start(&[]);
    let mut c = RawClient::connect(broker.addr);
    // Version 99 of ApiVersions (request header v2, as any ApiVersions from v3 on): the
    // broker answers UNSUPPORTED_VERSION in a v0 body.
    let mut frame = Vec::new();
    let body = [0u8, 18, 0, 99, 0, 0, 0, 7, 0, 0, 0];
    frame.extend_from_slice(&(body.len() as i32).to_be_bytes());
    frame.extend_from_slice(&body);
    c.stream.write_all(&frame).unwrap();
    let resp = c.read_frame().unwrap();
    assert_eq!(&resp[..4], &7i32.to_be_bytes(), "correlation id, response header v0");
    let mut body = resp.slice(4..);
    let r = <kafka_protocol::messages::ApiVersionsResponse as kafka_protocol::protocol::Decodable>::decode(
        &mut body, 0,
    )
    .unwrap();
    assert_eq!(r.error_code, 35);
    assert!(r.api_keys.len() >= 20, "the full list comes back: {}", r.api_keys.len());
    let produce = r.api_keys.iter().find(|k| k.api_key == 0).unwrap();
    assert_eq!(produce.min_version, 0, "Produce advertised from v0 for old librdkafka");
    // The connection stays usable.
    assert_still_serves(&broker);
}

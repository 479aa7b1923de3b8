//! Signed exchanges with the server: UPDATE, queries and AXFR, over UDP or TCP, with
//! retries and exponential backoff for transient failures.
//!
//! Every request is signed with the TSIG key, and every answer that reports success
//! must carry a valid signature chained to the request's: an unsigned "NOERROR"
//! could be forged, so it counts as an authentication failure. Error answers are
//! accepted unsigned (a server cannot sign with a key it does not know), because
//! they only ever make a message fail.
//!
//! A message goes over UDP when it fits in 512 bytes and TCP otherwise; a truncated
//! UDP answer is asked again over TCP. Each attempt gets a new id and signature.
//!
//! Each exchange goes to the servers of the [`Pool`] in turn (see `servers.rs`):
//! the one that answered last first, the next when it cannot be reached. A retry
//! (after a pause) is another such round.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gordon_plugin_api::tokio::io::{AsyncReadExt, AsyncWriteExt};
use gordon_plugin_api::tokio::net::{TcpStream, UdpSocket};
use gordon_plugin_api::tokio::time::{sleep, timeout, timeout_at, Instant};
use gordon_plugin_api::{tracing, Metrics, RecordType};

use crate::error::{rcode, Failure, Scope};
use crate::servers::{Pool, Round, Target};
use crate::tsig::{self, Key};
use crate::wire::{
    self, Message, Name, Section, Writer, CLASS_ANY, CLASS_IN, FLAG_AA, FLAG_QR, FLAG_TC,
    OPCODE_UPDATE, TYPE_ANY, TYPE_AXFR,
};

/// Messages up to this size go over UDP (the classic limit; updates send no EDNS).
const UDP_LIMIT: usize = 512;
/// The most unsigned messages a signed transfer may have in a row (RFC 8945 5.3.1).
const MAX_UNSIGNED_RUN: usize = 99;

/// A record read from the server: owner, type, TTL and canonical record data.
pub(crate) type ServedRecord = (Name, u16, u32, Vec<u8>);

/// How to reach the server, and how hard to try.
#[derive(Debug)]
pub(crate) struct Client {
    /// The servers, in the order of fail-over; shared by the clients of one
    /// configuration (every zone of the reconciler), so that they stick to the same.
    pub(crate) servers: Arc<Pool>,
    pub(crate) zone: Name,
    /// The zone as text, for messages and metric tags.
    pub(crate) zone_text: String,
    pub(crate) key: Key,
    pub(crate) timeout: Duration,
    pub(crate) retries: u32,
    pub(crate) backoff: Duration,
    pub(crate) tcp_only: bool,
    pub(crate) metrics: Meter,
}

/// Where a client's metrics go: the plugin's, or nowhere (a dependency check runs
/// before there is a plugin to count for).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Meter(Option<Metrics>);

impl Meter {
    /// Counts nothing.
    pub(crate) fn off() -> Meter {
        Meter(None)
    }

    /// [`Metrics::incr`].
    pub(crate) fn incr(&self, name: &str, value: f64, tags: &[(&str, &str)]) {
        if let Some(m) = &self.0 {
            m.incr(name, value, tags);
        }
    }

    /// [`Metrics::timer`].
    pub(crate) fn timer(&self, name: &str, seconds: f64, tags: &[(&str, &str)]) {
        if let Some(m) = &self.0 {
            m.timer(name, seconds, tags);
        }
    }
}

impl From<Metrics> for Meter {
    fn from(m: Metrics) -> Meter {
        Meter(Some(m))
    }
}

/// How the server answered a probe UPDATE (see [`Client::probe_prerequisite`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProbeAnswer {
    /// The answer's rcode, or its TSIG error when it has one (BADKEY, BADSIG, ...).
    pub(crate) rcode: u16,
    /// Whether the answer was signed with the key (and the signature verified).
    pub(crate) signed: bool,
}

pub(crate) fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn io_failure(e: std::io::Error) -> Failure {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => Failure::ConnectionRefused,
        _ => Failure::Io(e.to_string()),
    }
}

/// A signed request: the message as sent and its MAC.
struct Signed {
    bytes: Vec<u8>,
    mac: Vec<u8>,
}

impl Client {
    /// The metric tags.
    pub(crate) fn tags(&self) -> [(&'static str, &str); 1] {
        [("zone", self.zone_text.as_str())]
    }

    fn sign(&self, unsigned: &[u8]) -> Signed {
        let mut bytes = unsigned.to_vec();
        bytes[..2].copy_from_slice(&(random_u64() as u16).to_be_bytes());
        let mac = self.key.sign(&mut bytes, now_secs());
        Signed { bytes, mac }
    }

    /// The server in use (the one that answered last), for messages.
    pub(crate) fn server_in_use(&self) -> String {
        self.servers.in_use()
    }

    async fn udp(&self, server: SocketAddr, msg: &[u8]) -> Result<Vec<u8>, Failure> {
        let local: SocketAddr = match server {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let sock = UdpSocket::bind(local).await.map_err(io_failure)?;
        sock.connect(server).await.map_err(io_failure)?;
        sock.send(msg).await.map_err(io_failure)?;
        let deadline = Instant::now() + self.timeout;
        let mut buf = vec![0u8; wire::MAX_MESSAGE];
        loop {
            let read = timeout_at(deadline, sock.recv(&mut buf)).await;
            let n = read
                .map_err(|_| Failure::Timeout(self.timeout))?
                .map_err(io_failure)?;
            // Anything not for our id is a stray or forged datagram: keep waiting.
            if n >= 12 && buf[..2] == msg[..2] {
                buf.truncate(n);
                return Ok(buf);
            }
        }
    }

    async fn connect(&self, server: SocketAddr) -> Result<TcpStream, Failure> {
        let stream = timeout(self.timeout, TcpStream::connect(server))
            .await
            .map_err(|_| Failure::Timeout(self.timeout))?
            .map_err(io_failure)?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    async fn send_tcp(&self, stream: &mut TcpStream, msg: &[u8]) -> Result<(), Failure> {
        let mut framed = Vec::with_capacity(msg.len() + 2);
        framed.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        framed.extend_from_slice(msg);
        let write = timeout(self.timeout, stream.write_all(&framed)).await;
        write
            .map_err(|_| Failure::Timeout(self.timeout))?
            .map_err(io_failure)
    }

    async fn read_tcp(&self, stream: &mut TcpStream) -> Result<Vec<u8>, Failure> {
        let read = async {
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).await?;
            let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut buf).await?;
            Ok::<_, std::io::Error>(buf)
        };
        timeout(self.timeout, read)
            .await
            .map_err(|_| Failure::Timeout(self.timeout))?
            .map_err(io_failure)
    }

    /// Parses an answer to `req` and checks its id and signature. An answer whose
    /// TSIG reports an error becomes that error.
    fn check(
        &self,
        req: &Signed,
        buf: &[u8],
        prior: &[u8],
        unsigned: &[u8],
        first: bool,
    ) -> Result<Message, Failure> {
        let msg = wire::parse(buf).map_err(Failure::Malformed)?;
        if msg.id != u16::from_be_bytes([req.bytes[0], req.bytes[1]]) || msg.flags & FLAG_QR == 0 {
            return Err(Failure::Malformed(
                "the answer does not match the request".to_owned(),
            ));
        }
        match tsig::find(buf, &msg).map_err(Failure::Malformed)? {
            Some(t) if t.error != 0 => Err(Failure::Rcode {
                rcode: msg.rcode(),
                tsig_error: t.error,
            }),
            Some(t) => {
                let timers_only = !first;
                self.key
                    .verify(buf, &t, prior, unsigned, timers_only, now_secs())
                    .map_err(Failure::Unauthenticated)?;
                Ok(msg)
            }
            None if msg.rcode() != rcode::NOERROR && first => Ok(msg),
            None => Err(Failure::Unauthenticated(
                "the answer is not signed".to_owned(),
            )),
        }
    }

    /// One signed request and its answer; SERVFAIL is returned as a failure, and
    /// `None` when a UDP answer is truncated (whether signed or not: it is only a
    /// hint to ask again over TCP).
    async fn attempt(
        &self,
        server: SocketAddr,
        unsigned: &[u8],
        tcp: bool,
    ) -> Result<Option<(Vec<u8>, Message)>, Failure> {
        let req = self.sign(unsigned);
        let buf = if tcp {
            let mut stream = self.connect(server).await?;
            self.send_tcp(&mut stream, &req.bytes).await?;
            self.read_tcp(&mut stream).await?
        } else {
            let buf = self.udp(server, &req.bytes).await?;
            if wire::parse(&buf).is_ok_and(|m| m.flags & FLAG_TC != 0) {
                return Ok(None);
            }
            buf
        };
        let msg = self.check(&req, &buf, &req.mac, &[], true)?;
        if msg.rcode() == rcode::SERVFAIL {
            return Err(Failure::Rcode {
                rcode: rcode::SERVFAIL,
                tsig_error: 0,
            });
        }
        Ok(Some((buf, msg)))
    }

    /// Waits before retry number `n` (from 0): `backoff * 2^n`, ±25 % jitter.
    async fn pause(&self, n: u32) {
        let base = self
            .backoff
            .saturating_mul(1 << n.min(16))
            .min(Duration::from_secs(60));
        let jitter = 0.75 + (random_u64() % 1000) as f64 / 2000.0;
        sleep(base.mul_f64(jitter)).await;
    }

    /// Sends `unsigned` (id and signature are filled in per attempt), retrying
    /// transient failures; a truncated UDP answer is asked again over TCP.
    async fn request(&self, unsigned: &[u8], what: &str) -> Result<(Vec<u8>, Message), Failure> {
        let mut tcp = self.tcp_only || unsigned.len() + 200 > UDP_LIMIT;
        let mut tries = 0;
        loop {
            match self.request_round(unsigned, &mut tcp, what).await {
                Ok(answer) => return Ok(answer),
                Err(f) if f.scope() == Scope::Transient && tries < self.retries => {
                    tracing::debug!(servers = %self.servers, zone = %self.zone, error = %f.label(), "Retrying a {what}.");
                    self.metrics.incr("rfc2136.retries", 1.0, &self.tags());
                    self.pause(tries).await;
                    tries += 1;
                }
                Err(f) => return Err(f),
            }
        }
    }

    /// One round: `unsigned` to each server in turn, from the one in use, until one
    /// answers (SERVFAIL and TSIG errors included: they are answers).
    async fn request_round(
        &self,
        unsigned: &[u8],
        tcp: &mut bool,
        what: &str,
    ) -> Result<(Vec<u8>, Message), Failure> {
        let mut round = self.servers.round(&self.zone_text);
        while let Some(target) = round.next(self.timeout).await {
            let result = loop {
                let started = Instant::now();
                let result = self.attempt(target.addr, unsigned, *tcp).await;
                self.metrics.timer(
                    "rfc2136.request_seconds",
                    started.elapsed().as_secs_f64(),
                    &self.tags(),
                );
                match result {
                    Ok(None) => {
                        tracing::debug!(server = %target.addr, zone = %self.zone, "Truncated answer to a {what}; asking again over TCP.");
                        *tcp = true;
                    }
                    Ok(Some(answer)) => break Ok(answer),
                    Err(f) => break Err(f),
                }
            };
            match result {
                Err(f) if f.unreachable() => round.failed(&target, f),
                answered => {
                    self.answered(&round, &target);
                    return answered;
                }
            }
        }
        Err(round.into_failure())
    }

    /// `target` answered: counts a fail-over when the server in use changed.
    fn answered(&self, round: &Round<'_>, target: &Target) {
        if round.answered(target) {
            self.metrics.incr("rfc2136.failovers", 1.0, &self.tags());
        }
    }

    /// Sends one UPDATE (built with [`Writer`], id 0, zone section first) and
    /// returns when the server has applied it.
    pub(crate) async fn update(&self, unsigned: &[u8]) -> Result<(), Failure> {
        let (_, msg) = self.request(unsigned, "update").await?;
        match msg.rcode() {
            rcode::NOERROR => Ok(()),
            rcode => Err(Failure::Rcode {
                rcode,
                tsig_error: 0,
            }),
        }
    }

    /// An UPDATE with no prerequisites and no changes: answers whether the server
    /// lets this key update the zone at all.
    pub(crate) async fn probe_update(&self) -> Result<(), Failure> {
        let mut w = Writer::new(0, OPCODE_UPDATE);
        w.question(&self.zone, RecordType::SOA.0, CLASS_IN);
        self.update(&w.finish()).await
    }

    /// The same servers, key and settings, for another zone.
    pub(crate) fn for_zone(&self, zone: Name) -> Client {
        Client {
            servers: Arc::clone(&self.servers),
            zone_text: zone.to_string(),
            zone,
            key: self.key.clone(),
            timeout: self.timeout,
            retries: self.retries,
            backoff: self.backoff,
            tcp_only: self.tcp_only,
            metrics: self.metrics,
        }
    }

    /// A signed SOA query for the zone: `Ok` when the server answers it with
    /// authority, with a signed answer holding the zone's SOA. A refused key fails
    /// as its TSIG error (BADKEY, BADSIG, BADTIME); a server that does not serve
    /// the zone as NOTAUTH.
    pub(crate) async fn check_zone(&self) -> Result<(), Failure> {
        let mut w = Writer::new(0, 0);
        w.question(&self.zone, RecordType::SOA.0, CLASS_IN);
        let (_, msg) = self.request(&w.finish(), "query").await?;
        if msg.rcode() != rcode::NOERROR {
            return Err(Failure::Rcode {
                rcode: msg.rcode(),
                tsig_error: 0,
            });
        }
        let soa = msg
            .answers
            .iter()
            .any(|r| r.name == self.zone && r.rtype == RecordType::SOA.0);
        if msg.flags & FLAG_AA == 0 || !soa {
            return Err(Failure::Rcode {
                rcode: rcode::NOTAUTH,
                tsig_error: 0,
            });
        }
        Ok(())
    }

    /// A signed UPDATE that cannot change anything: its one prerequisite, "name
    /// is in use", names `absent` (a fresh name below the zone, which nothing
    /// holds), and it has no update section. A server that authenticates the key
    /// and lets it update the zone checks the prerequisite and answers NXDOMAIN;
    /// one that does not answers REFUSED, NOTAUTH or a TSIG error first. Timeouts,
    /// refused connections and SERVFAIL are retried, then returned as failures.
    pub(crate) async fn probe_prerequisite(&self, absent: &Name) -> Result<ProbeAnswer, Failure> {
        let mut w = Writer::new(0, OPCODE_UPDATE);
        w.question(&self.zone, RecordType::SOA.0, CLASS_IN);
        w.record(Section::Answer, absent, TYPE_ANY, CLASS_ANY, 0, &[]);
        match self.request(&w.finish(), "probe").await {
            Ok((buf, msg)) => Ok(ProbeAnswer {
                rcode: msg.rcode(),
                // `request` verified a signature when there is one.
                signed: tsig::find(&buf, &msg).is_ok_and(|t| t.is_some()),
            }),
            Err(Failure::Rcode { tsig_error, .. }) if tsig_error != 0 => Ok(ProbeAnswer {
                rcode: tsig_error,
                signed: false,
            }),
            Err(f) => Err(f),
        }
    }

    /// The records of `name` and `rtype` the server serves: (TTL, canonical rdata).
    pub(crate) async fn query(
        &self,
        name: &Name,
        rtype: u16,
    ) -> Result<Vec<(u32, Vec<u8>)>, Failure> {
        let mut w = Writer::new(0, 0);
        w.question(name, rtype, CLASS_IN);
        let (buf, msg) = self.request(&w.finish(), "query").await?;
        if !matches!(msg.rcode(), rcode::NOERROR | rcode::NXDOMAIN) {
            return Err(Failure::Rcode {
                rcode: msg.rcode(),
                tsig_error: 0,
            });
        }
        let mine = msg
            .answers
            .iter()
            .filter(|r| r.name == *name && r.rtype == rtype && r.class == CLASS_IN);
        mine.map(|r| {
            Ok((
                r.ttl,
                wire::canonical_rdata(&buf, r).map_err(Failure::Malformed)?,
            ))
        })
        .collect()
    }

    /// The whole zone by AXFR over TCP, every message's signature checked.
    pub(crate) async fn axfr(&self) -> Result<Vec<ServedRecord>, Failure> {
        self.axfr_fold(Vec::new, |records, name, rtype, ttl, rdata| {
            records.push((name.clone(), rtype, ttl, rdata.to_vec()));
        })
        .await
    }

    /// The whole zone by AXFR, each record (owner, type, TTL, canonical rdata)
    /// handed to `each` as its message arrives, into a state that starts as
    /// `init()` (again for a retried transfer). Nothing is kept per record but
    /// what `each` keeps: a zone of millions of records need not be held twice.
    pub(crate) async fn axfr_fold<T>(
        &self,
        init: impl Fn() -> T,
        mut each: impl FnMut(&mut T, &Name, u16, u32, &[u8]),
    ) -> Result<T, Failure> {
        let mut tries = 0;
        loop {
            match self.axfr_round(&init, &mut each).await {
                Err(f) if f.scope() == Scope::Transient && tries < self.retries => {
                    self.pause(tries).await;
                    tries += 1;
                }
                result => return result,
            }
        }
    }

    /// One round of the transfer: from each server in turn, from the one in use,
    /// until one answers; a transfer cut off by a server that stops answering is
    /// started again, from `init()`, at the next.
    async fn axfr_round<T>(
        &self,
        init: &impl Fn() -> T,
        each: &mut impl FnMut(&mut T, &Name, u16, u32, &[u8]),
    ) -> Result<T, Failure> {
        let mut round = self.servers.round(&self.zone_text);
        while let Some(target) = round.next(self.timeout).await {
            let mut state = init();
            match self.axfr_once(target.addr, &mut state, each).await {
                Err(f) if f.unreachable() => round.failed(&target, f),
                result => {
                    self.answered(&round, &target);
                    return result.map(|()| state);
                }
            }
        }
        Err(round.into_failure())
    }

    async fn axfr_once<T>(
        &self,
        server: SocketAddr,
        state: &mut T,
        each: &mut impl FnMut(&mut T, &Name, u16, u32, &[u8]),
    ) -> Result<(), Failure> {
        let mut w = Writer::new(0, 0);
        w.question(&self.zone, TYPE_AXFR, CLASS_IN);
        let req = self.sign(&w.finish());
        let mut stream = self.connect(server).await?;
        self.send_tcp(&mut stream, &req.bytes).await?;
        let (mut prior, mut unsigned, mut run) = (req.mac.clone(), Vec::new(), 0);
        let mut soas = 0;
        let mut first = true;
        while soas < 2 {
            let buf = self.read_tcp(&mut stream).await?;
            let msg = wire::parse(&buf).map_err(Failure::Malformed)?;
            let signed = tsig::find(&buf, &msg).map_err(Failure::Malformed)?;
            let msg = match signed {
                Some(t) if t.error == 0 => {
                    let m = self.check(&req, &buf, &prior, &unsigned, first)?;
                    (prior, run) = (t.mac, 0);
                    unsigned.clear();
                    m
                }
                None if !first && run < MAX_UNSIGNED_RUN => {
                    unsigned.extend_from_slice(&buf);
                    run += 1;
                    msg
                }
                _ => self.check(&req, &buf, &prior, &unsigned, first)?,
            };
            first = false;
            if msg.rcode() != rcode::NOERROR {
                return Err(Failure::Rcode {
                    rcode: msg.rcode(),
                    tsig_error: 0,
                });
            }
            for r in msg.answers.iter().filter(|r| r.rtype != wire::TYPE_TSIG) {
                if r.rtype == RecordType::SOA.0 {
                    soas += 1;
                    if soas == 2 {
                        break;
                    }
                } else if soas == 0 {
                    return Err(Failure::Malformed(
                        "the transfer does not start with the SOA".to_owned(),
                    ));
                }
                let rdata = wire::canonical_rdata(&buf, r).map_err(Failure::Malformed)?;
                each(state, &r.name, r.rtype, r.ttl, &rdata);
            }
        }
        if !unsigned.is_empty() {
            return Err(Failure::Unauthenticated(
                "the last message of the transfer is not signed".to_owned(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Fail-over between real UDP sockets on 127.0.0.1: fake servers that answer
    //! every request with a bare header (an unsigned error answer, which the client
    //! accepts as the server's answer) or stay silent, counting what they receive.

    use std::future::Future;
    use std::net::UdpSocket;
    use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize};

    use super::*;
    use crate::config::{parse_server, Host, ServerSpec};
    use crate::servers::test_table::Table;
    use crate::tsig::Algorithm;

    const ZONE: &str = "example.test.";

    /// A fake server: answers with `rcode` while `answering`, counts every request.
    struct Fake {
        addr: SocketAddr,
        count: Arc<AtomicUsize>,
        answering: Arc<AtomicBool>,
        rcode: Arc<AtomicU8>,
        stop: Arc<AtomicBool>,
    }

    impl Fake {
        fn start(rcode: u8) -> Fake {
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            sock.set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            let fake = Fake {
                addr: sock.local_addr().unwrap(),
                count: Arc::default(),
                answering: Arc::new(AtomicBool::new(true)),
                rcode: Arc::new(AtomicU8::new(rcode)),
                stop: Arc::default(),
            };
            let (count, answering, code, stop) = (
                fake.count.clone(),
                fake.answering.clone(),
                fake.rcode.clone(),
                fake.stop.clone(),
            );
            std::thread::spawn(move || {
                let mut buf = [0u8; 1500];
                while !stop.load(Ordering::SeqCst) {
                    let Ok((n, peer)) = sock.recv_from(&mut buf) else {
                        continue;
                    };
                    if n < 12 {
                        continue;
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    if !answering.load(Ordering::SeqCst) {
                        continue;
                    }
                    let mut answer = buf[..12].to_vec();
                    answer[2] |= 0x80;
                    answer[3] = (answer[3] & 0xf0) | code.load(Ordering::SeqCst);
                    answer[4..12].fill(0);
                    let _ = sock.send_to(&answer, peer);
                }
            });
            fake
        }

        /// A server that receives but never answers.
        fn silent() -> Fake {
            let fake = Fake::start(0);
            fake.answering.store(false, Ordering::SeqCst);
            fake
        }

        fn count(&self) -> usize {
            self.count.load(Ordering::SeqCst)
        }

        fn spec(&self) -> ServerSpec {
            parse_server("servers", &self.addr.to_string()).unwrap()
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
        }
    }

    fn client(pool: Pool, retries: u32) -> Client {
        let zone = Name::parse(ZONE).unwrap();
        Client {
            servers: Arc::new(pool),
            zone_text: zone.to_string(),
            zone,
            key: Key::new(
                "k",
                Algorithm::parse("hmac-sha256").unwrap(),
                "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=",
            )
            .unwrap(),
            timeout: Duration::from_millis(150),
            retries,
            backoff: Duration::from_millis(5),
            tcp_only: false,
            metrics: Meter::off(),
        }
    }

    fn run<T>(fut: impl Future<Output = T>) -> T {
        gordon_plugin_api::tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(fut)
    }

    const REFUSED: Failure = Failure::Rcode {
        rcode: rcode::REFUSED,
        tsig_error: 0,
    };

    fn counts(fakes: &[&Fake]) -> Vec<usize> {
        fakes.iter().map(|f| f.count()).collect()
    }

    #[test]
    fn an_unreachable_server_fails_over_to_the_next_which_is_kept() {
        let (a, b, c) = (Fake::silent(), Fake::start(5), Fake::start(5));
        let dns = client(Pool::new(&[a.spec(), b.spec(), c.spec()]), 0);
        let all = [&a, &b, &c];
        assert_eq!(
            dns.server_in_use(),
            a.addr.to_string(),
            "the first at start"
        );
        // The same exchange goes on to b, which answers (REFUSED is an answer).
        assert_eq!(run(dns.probe_update()), Err(REFUSED));
        assert_eq!(counts(&all), [1, 1, 0]);
        assert_eq!(dns.server_in_use(), b.addr.to_string());
        // Sticky: the next exchanges start at b; a is not asked again.
        assert_eq!(run(dns.probe_update()), Err(REFUSED));
        assert_eq!(run(dns.probe_update()), Err(REFUSED));
        assert_eq!(counts(&all), [1, 3, 0]);
        // b stops answering: on to c, which is kept.
        b.answering.store(false, Ordering::SeqCst);
        assert_eq!(run(dns.probe_update()), Err(REFUSED));
        assert_eq!(counts(&all), [1, 4, 1]);
        assert_eq!(run(dns.probe_update()), Err(REFUSED));
        assert_eq!(counts(&all), [1, 4, 2]);
        assert_eq!(dns.server_in_use(), c.addr.to_string());
        // c stops, a is back: the round wraps around to a.
        c.answering.store(false, Ordering::SeqCst);
        a.answering.store(true, Ordering::SeqCst);
        a.rcode.store(5, Ordering::SeqCst);
        assert_eq!(run(dns.probe_update()), Err(REFUSED));
        assert_eq!(counts(&all), [2, 4, 3]);
        assert_eq!(dns.server_in_use(), a.addr.to_string());
    }

    #[test]
    fn an_answer_is_never_a_reason_to_fail_over() {
        // Error answers are the server's word: returned as they are, the next
        // server is not asked; SERVFAIL is retried at the same server.
        for code in [rcode::REFUSED, rcode::NOTAUTH, rcode::FORMERR] {
            let (a, b) = (Fake::start(code as u8), Fake::start(5));
            let c = client(Pool::new(&[a.spec(), b.spec()]), 2);
            let got = run(c.probe_update());
            assert_eq!(
                got,
                Err(Failure::Rcode {
                    rcode: code,
                    tsig_error: 0
                })
            );
            assert_eq!(counts(&[&a, &b]), [1, 0], "rcode {code}");
        }
        let (a, b) = (Fake::start(2), Fake::start(5));
        let c = client(Pool::new(&[a.spec(), b.spec()]), 2);
        let got = run(c.probe_update()).unwrap_err();
        assert_eq!(got.label(), "SERVFAIL");
        assert_eq!(counts(&[&a, &b]), [3, 0], "one try and two retries, at a");
    }

    #[test]
    fn when_no_server_answers_each_is_named_and_the_round_is_retried() {
        let dead = gordon_test_servers::free_port();
        let dead: SocketAddr = ([127, 0, 0, 1], dead).into();
        let silent = Fake::silent();
        let specs = [
            parse_server("servers", &dead.to_string()).unwrap(),
            silent.spec(),
        ];
        let c = client(Pool::new(&specs), 1);
        let err = run(c.probe_update()).unwrap_err();
        assert_eq!(err.label(), "unreachable");
        assert_eq!(
            err.describe(&c.server_in_use(), ZONE),
            format!(
                "no server could be reached for zone {ZONE}: {dead}: connection refused; {}: no answer within 150 ms",
                silent.addr
            )
        );
        assert_eq!(silent.count(), 2, "two rounds: one try and one retry");
        assert_eq!(c.server_in_use(), dead.to_string(), "nothing answered");
        // One server: its own failure, as before fail-over existed.
        let c = client(Pool::new(&specs[..1]), 0);
        assert_eq!(run(c.probe_update()), Err(Failure::ConnectionRefused));
    }

    fn named(name: &str) -> ServerSpec {
        ServerSpec {
            host: Host::Name(name.to_owned()),
            port: 53,
        }
    }

    #[test]
    fn a_host_name_is_resolved_again_once_it_cannot_be_reached() {
        let (a, b) = (Fake::start(5), Fake::start(5));
        let table = Table::default();
        table.set("ns.test", &[a.addr]);
        let c = client(Pool::with_table(&[named("ns.test")], &table), 1);
        assert_eq!(run(c.probe_update()), Err(REFUSED));
        assert_eq!(run(c.probe_update()), Err(REFUSED));
        assert_eq!((counts(&[&a, &b]), table.lookups()), (vec![2, 0], 1));
        // The name moves to b: a still answers, and is still used.
        table.set("ns.test", &[b.addr]);
        assert_eq!(run(c.probe_update()), Err(REFUSED));
        assert_eq!((counts(&[&a, &b]), table.lookups()), (vec![3, 0], 1));
        // a goes quiet: the retry resolves the name again and reaches b, in the
        // same exchange.
        a.answering.store(false, Ordering::SeqCst);
        assert_eq!(run(c.probe_update()), Err(REFUSED));
        assert_eq!((counts(&[&a, &b]), table.lookups()), (vec![4, 1], 2));
        assert_eq!(run(c.probe_update()), Err(REFUSED));
        assert_eq!((counts(&[&a, &b]), table.lookups()), (vec![4, 2], 2));
        assert_eq!(c.server_in_use(), "ns.test:53");
    }

    #[test]
    fn the_addresses_of_a_name_are_tried_in_turn_the_last_good_first() {
        let (quiet, good) = (Fake::silent(), Fake::start(5));
        let table = Table::default();
        table.set("ns.test", &[quiet.addr, good.addr]);
        let c = client(Pool::with_table(&[named("ns.test")], &table), 0);
        assert_eq!(run(c.probe_update()), Err(REFUSED));
        assert_eq!(counts(&[&quiet, &good]), [1, 1]);
        assert_eq!(run(c.probe_update()), Err(REFUSED));
        assert_eq!(counts(&[&quiet, &good]), [1, 2], "the good address first");
        assert_eq!(table.lookups(), 1, "it answered: no new lookup");
        // Both quiet: each is named with the server.
        good.answering.store(false, Ordering::SeqCst);
        let err = run(c.probe_update()).unwrap_err();
        assert_eq!(
            err.describe("-", ZONE),
            format!(
                "no server could be reached for zone {ZONE}: ns.test:53 ({}): no answer within 150 ms; ns.test:53 ({}): no answer within 150 ms",
                good.addr, quiet.addr
            )
        );
    }

    #[test]
    fn a_name_that_does_not_resolve_is_skipped_and_named() {
        let good = Fake::start(5);
        let table = Table::default();
        let c = client(
            Pool::with_table(&[named("typo.test"), good.spec()], &table),
            0,
        );
        assert_eq!(run(c.probe_update()), Err(REFUSED));
        assert_eq!(good.count(), 1);
        let c = client(Pool::with_table(&[named("typo.test")], &table), 1);
        let err = run(c.probe_update()).unwrap_err();
        assert_eq!(table.lookups(), 3, "once, then each round again");
        assert_eq!(
            err.describe(&c.server_in_use(), ZONE),
            format!("cannot resolve the host name of server typo.test:53 for zone {ZONE}: typo.test is not in the test table (check `server` / `servers`)")
        );
    }

    #[test]
    fn localhost_is_resolved_by_the_system() {
        let good = Fake::start(5);
        let spec = parse_server("server", &format!("localhost:{}", good.addr.port())).unwrap();
        let c = client(Pool::new(&[spec]), 0);
        assert_eq!(run(c.probe_update()), Err(REFUSED));
        assert_eq!(good.count(), 1);
    }
}

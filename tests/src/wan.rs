//! A wide-area network between browsers on one machine: a UDP relay that delays, drops and
//! paces every packet, and the candidate rewriting that puts it in their path.
//!
//! There is no `netem` here, so the link is a program. The signaling server (or, for the
//! bare-channel benchmark, the harness) rewrites each browser's ICE candidate `127.0.0.1 P` to
//! `127.0.0.1 alias(P)`, where `alias(P)` is a socket of this relay; a packet that arrives on
//! `alias(X)` from `Y` leaves, after the link's delay, for `X` from `alias(Y)`. Both browsers
//! then only ever see each other's aliases, and every packet between them crosses the link
//! twice per round trip, once each way. Candidates of other kinds (TCP, other addresses) are
//! dropped, so no path goes around the link.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use socket2::{Domain, Protocol, Socket, Type};

/// What the link does to packets.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Link {
    /// The round trip it adds: half of it each way.
    pub rtt: Duration,
    /// Each packet's delay varies by up to this much either way.
    pub jitter: Duration,
    /// The share of packets lost, from 0 to 1.
    pub loss: f64,
    /// The most bytes per second each way, when limited.
    pub rate: Option<u64>,
}

/// Each alias socket's receive buffer. The kernel's default (208 KiB of packet memory, some
/// 90 full-size datagrams) overflowed while the two browsers held both cores, and every
/// overflow is a loss the link was not asked for; a router's queue is deeper than that.
const ALIAS_BUFFER: usize = 4 << 20;

/// How often an idle alias thread looks whether the link is gone.
const POLL: Duration = Duration::from_millis(100);

/// The relay: one alias socket per browser socket it has seen.
///
/// Each alias has two threads of its own: one that receives and stamps each packet with its
/// departure, and one that sends packets at their departure, in order. Threads rather than
/// async tasks: the relay must keep up with two browsers on a two-core machine, and a thread
/// blocked in `recv` wakes as soon as a packet lands while `std::thread::sleep` keeps
/// departures to within a fraction of a millisecond.
#[derive(Clone, Debug)]
pub struct Wan {
    shared: Arc<Shared>,
    /// Stops the alias threads once the last handle to the link is dropped.
    _stop: Arc<Stop>,
}

#[derive(Debug)]
struct Shared {
    link: Link,
    aliases: Mutex<HashMap<u16, Arc<UdpSocket>>>,
    /// When the last packet each way leaves, for the rate limit: (to a port, departure).
    paced: Mutex<HashMap<u16, Instant>>,
    stopped: AtomicBool,
}

#[derive(Debug)]
struct Stop(Arc<Shared>);

impl Drop for Stop {
    fn drop(&mut self) {
        self.0.stopped.store(true, Ordering::Relaxed);
    }
}

impl Wan {
    /// A relay that applies `link`.
    pub fn new(link: Link) -> Self {
        let shared = Arc::new(Shared {
            link,
            aliases: Mutex::new(HashMap::new()),
            paced: Mutex::new(HashMap::new()),
            stopped: AtomicBool::new(false),
        });
        Self {
            _stop: Arc::new(Stop(Arc::clone(&shared))),
            shared,
        }
    }

    /// The candidate line as the other browser must see it: its port replaced by the alias's,
    /// or `None` for a candidate that would go around the link.
    pub fn rewrite(&self, candidate: &str) -> Option<String> {
        // candidate:FOUNDATION COMPONENT PROTOCOL PRIORITY ADDRESS PORT typ TYPE ...
        let mut fields: Vec<String> = candidate.split(' ').map(str::to_owned).collect();
        if fields.len() < 8 || !fields[2].eq_ignore_ascii_case("udp") || fields[4] != "127.0.0.1" {
            return None;
        }
        let port: u16 = fields[5].parse().ok()?;
        let alias = self.alias(port).ok()?;
        fields[5] = alias.to_string();
        Some(fields.join(" "))
    }

    /// A session description with every candidate rewritten, or dropped, as [`Wan::rewrite`]
    /// does it: for descriptions traded outside the signaling server.
    pub fn rewrite_sdp(&self, sdp: &str) -> String {
        sdp.split("\r\n")
            .filter_map(|line| match line.strip_prefix("a=") {
                Some(candidate) if candidate.starts_with("candidate:") => self
                    .rewrite(candidate)
                    .map(|rewritten| format!("a={rewritten}")),
                _ => Some(line.to_owned()),
            })
            .collect::<Vec<_>>()
            .join("\r\n")
    }

    /// The alias port of browser port `real`, made on first use.
    fn alias(&self, real: u16) -> Result<u16> {
        Ok(self.shared.alias_socket(real)?.local_addr()?.port())
    }
}

impl Shared {
    fn alias_socket(self: &Arc<Self>, real: u16) -> Result<Arc<UdpSocket>> {
        let mut aliases = self.aliases.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(socket) = aliases.get(&real) {
            return Ok(Arc::clone(socket));
        }
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
            .context("opening an alias socket")?;
        // The kernel caps the size at its maximum; a smaller buffer still works.
        let _ = socket.set_recv_buffer_size(ALIAS_BUFFER);
        socket
            .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
            .context("binding an alias socket")?;
        socket.set_read_timeout(Some(POLL))?;
        let socket = Arc::new(UdpSocket::from(socket));
        aliases.insert(real, Arc::clone(&socket));
        drop(aliases);
        let (departures, departing) = mpsc::channel();
        let (shared, receiving) = (Arc::clone(self), Arc::clone(&socket));
        std::thread::Builder::new()
            .name(format!("wan-in-{real}"))
            .spawn(move || shared.receive(real, &receiving, &departures))
            .context("starting an alias thread")?;
        std::thread::Builder::new()
            .name(format!("wan-out-{real}"))
            .spawn(move || deliver(real, &departing))
            .context("starting an alias thread")?;
        Ok(socket)
    }

    /// Receives what arrives on `real`'s alias, from browser port `from`, and queues it for
    /// `real`, to be sent from `from`'s alias after the link's delay.
    ///
    /// Packets towards one port leave in the order they came, through one queue: were each
    /// packet timed on its own, packets due at the same moment could overtake each other, and
    /// SCTP takes reordering for loss. With jitter, a late packet holds back those behind it,
    /// as on a link whose delay varies but which does not reorder.
    fn receive(self: &Arc<Self>, real: u16, socket: &UdpSocket, queue: &mpsc::Sender<Departing>) {
        let mut buffer = vec![0u8; 65_536];
        while !self.stopped.load(Ordering::Relaxed) {
            let Ok((len, source)) = socket.recv_from(&mut buffer) else {
                continue;
            };
            if self.link.loss > 0.0 && fastrand() < self.link.loss {
                continue;
            }
            let Ok(from) = self.alias_socket(source.port()) else {
                continue;
            };
            let departing = Departing {
                at: self.departure(real, len),
                from,
                packet: buffer[..len].to_vec(),
            };
            if queue.send(departing).is_err() {
                return;
            }
        }
    }

    /// When a packet of `len` bytes towards port `to` leaves: after half the round trip (and
    /// jitter), and no sooner than the rate allows after the one before it.
    fn departure(&self, to: u16, len: usize) -> Instant {
        let link = self.link;
        let now = Instant::now();
        let jitter = link.jitter.mul_f64(fastrand() * 2.0 - 1.0);
        let mut at = now + link.rtt / 2 + jitter;
        if let Some(rate) = link.rate {
            let mut paced = self.paced.lock().unwrap_or_else(PoisonError::into_inner);
            let last = paced.entry(to).or_insert(now);
            let serialize = Duration::from_secs_f64(len as f64 / rate as f64);
            *last = (*last).max(now) + serialize;
            at = at.max(*last + link.rtt / 2);
        }
        at.max(now)
    }
}

/// Sends each queued packet to browser port `real` at its departure; ends when the receiving
/// thread does.
fn deliver(real: u16, departing: &mpsc::Receiver<Departing>) {
    let target = SocketAddr::from((Ipv4Addr::LOCALHOST, real));
    while let Ok(Departing { at, from, packet }) = departing.recv() {
        let wait = at.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        let _ = from.send_to(&packet, target);
    }
}

/// A packet on its way: when it leaves, and from which alias.
struct Departing {
    at: Instant,
    from: Arc<UdpSocket>,
    packet: Vec<u8>,
}

/// A number in 0..1 from a small generator (xorshift), seeded from the clock: loss and jitter
/// need no cryptographic randomness.
fn fastrand() -> f64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0x9e37_79b9_7f4a_7c15, |since| since.as_nanos() as u64)
                | 1,
        );
    }
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

#[cfg(test)]
mod tests {
    use tokio::net::UdpSocket;

    use super::*;

    #[tokio::test]
    async fn candidates_are_pointed_at_aliases_and_others_dropped() {
        let wan = Wan::new(Link::default());
        let host = "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0";
        let rewritten = wan.rewrite(host).unwrap();
        let alias: u16 = rewritten.split(' ').nth(5).unwrap().parse().unwrap();
        assert_ne!(alias, 50000);
        assert_eq!(wan.rewrite(host).unwrap(), rewritten, "one alias per port");
        for other in [
            "candidate:2 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active",
            "candidate:3 1 udp 2122260223 10.77.0.1 50001 typ host",
            "not a candidate",
        ] {
            assert_eq!(wan.rewrite(other), None, "{other}");
        }
        let sdp = format!("v=0\r\na={host}\r\na=candidate:2 1 tcp 1 127.0.0.1 9 typ host\r\n");
        let rewritten_sdp = wan.rewrite_sdp(&sdp);
        assert!(rewritten_sdp.contains(&format!("a={rewritten}")));
        assert!(!rewritten_sdp.contains(" tcp "));
    }

    #[tokio::test]
    async fn packets_cross_the_link_after_its_delay_from_the_senders_alias() {
        let wan = Wan::new(Link {
            rtt: Duration::from_millis(80),
            ..Link::default()
        });
        let a = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let b = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let (a_port, b_port) = (
            a.local_addr().unwrap().port(),
            b.local_addr().unwrap().port(),
        );
        let (a_alias, b_alias) = (wan.alias(a_port).unwrap(), wan.alias(b_port).unwrap());
        let sent = Instant::now();
        a.send_to(b"ping", (Ipv4Addr::LOCALHOST, b_alias))
            .await
            .unwrap();
        let mut buffer = [0u8; 16];
        let (len, from) = b.recv_from(&mut buffer).await.unwrap();
        assert_eq!(&buffer[..len], b"ping");
        assert_eq!(from.port(), a_alias, "the reply goes back through the link");
        let took = sent.elapsed();
        assert!(took >= Duration::from_millis(40), "one way took {took:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn packets_sent_in_a_burst_arrive_in_order() {
        let wan = Wan::new(Link {
            rtt: Duration::from_millis(10),
            ..Link::default()
        });
        let a = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let b = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        wan.alias(a.local_addr().unwrap().port()).unwrap();
        let b_alias = wan.alias(b.local_addr().unwrap().port()).unwrap();
        // Few enough that no socket buffer overflows on the way: the test is about order.
        const COUNT: u32 = 200;
        for n in 0..COUNT {
            a.send_to(&n.to_le_bytes(), (Ipv4Addr::LOCALHOST, b_alias))
                .await
                .unwrap();
        }
        let mut buffer = [0u8; 4];
        for expected in 0..COUNT {
            b.recv_from(&mut buffer).await.unwrap();
            assert_eq!(u32::from_le_bytes(buffer), expected);
        }
    }
}

//! Room for bursts on the WebRTC stack's UDP sockets, and an SCTP window that fits in it.
//!
//! `webrtc` 0.21 leaves each socket's receive buffer at the kernel's default (208 KiB here),
//! while SCTP's slow start sends up to the peer's whole window at once: datagrams overflow the
//! buffer, and each loss SCTP does not recover quickly costs a retransmission timeout of at
//! least one second. Measured on loopback, one connection carried 42–60 MB/s that way, with
//! its CPU idle most of the time; with the buffer raised and the window kept inside it, it
//! carried 220–275 MB/s.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, SockRef, Socket, Type};
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, Runtime,
    TokioRuntime,
};

/// The buffer asked for each UDP socket, each way; the kernel grants at most
/// `net.core.rmem_max` (`wmem_max`), and doubles what it grants.
const SOCKET_BUFFER: usize = 4 << 20;

/// The smallest window: half again the largest message (256 KiB), or a full message could
/// close it.
const MIN_WINDOW: u32 = 384 << 10;

/// The largest window: enough for 4 MiB in flight per connection (200 MB/s at 20 ms).
const MAX_WINDOW: u32 = 4 << 20;

/// Tokio, with every UDP socket's buffers raised before the stack uses it.
#[derive(Debug)]
pub struct Buffered(TokioRuntime);

impl Default for Buffered {
    fn default() -> Self {
        Self(TokioRuntime)
    }
}

/// The SCTP window to advertise: half of the receive buffer the kernel grants a socket, so a
/// full window's burst fits with room to spare, within [`MIN_WINDOW`]..=[`MAX_WINDOW`].
pub fn receive_window() -> u32 {
    let granted = Socket::new(Domain::IPV4, Type::DGRAM, None)
        .and_then(|socket| {
            socket.set_recv_buffer_size(SOCKET_BUFFER)?;
            socket.recv_buffer_size()
        })
        .unwrap_or(0);
    u32::try_from(granted / 2)
        .unwrap_or(MAX_WINDOW)
        .clamp(MIN_WINDOW, MAX_WINDOW)
}

impl Runtime for Buffered {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        self.0.spawn(future)
    }

    fn spawn_reactor(
        &self,
        pool: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn JoinHandle> {
        self.0.spawn_reactor(pool, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let raw = SockRef::from(&socket);
        // A smaller buffer than asked for only means less room: the window follows it.
        let _ = raw.set_recv_buffer_size(SOCKET_BUFFER);
        let _ = raw.set_send_buffer_size(SOCKET_BUFFER);
        self.0.wrap_udp_socket(socket)
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.0.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        self.0.connect_tcp(remote)
    }

    fn resolve_host<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        self.0.resolve_host(host)
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.0.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        self.0.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.0.block_on(future);
    }

    fn name(&self) -> &'static str {
        "tokio with raised socket buffers"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_stays_between_a_message_and_a_half_and_four_mib() {
        let window = receive_window();
        assert!((MIN_WINDOW..=MAX_WINDOW).contains(&window), "{window}");
    }
}

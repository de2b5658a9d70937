//! A stand-in for a network destination (the AWS endpoint, the instance metadata service) that a
//! function should not contact before its first invocation: it counts every TCP connection and closes
//! it at once, so a call fails fast instead of hanging the start.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub struct ConnectionCounter {
    address: SocketAddr,
    connections: Arc<AtomicUsize>,
    acceptor: JoinHandle<()>,
}

impl ConnectionCounter {
    /// Listens on a free port of 127.0.0.1.
    pub async fn start() -> std::io::Result<ConnectionCounter> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let address = listener.local_addr()?;
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        let acceptor = tokio::spawn(async move {
            loop {
                if let Ok((stream, _)) = listener.accept().await {
                    counted.fetch_add(1, Ordering::SeqCst);
                    drop(stream);
                }
            }
        });
        Ok(ConnectionCounter {
            address,
            connections,
            acceptor,
        })
    }

    /// `http://127.0.0.1:<port>`, for an endpoint variable.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for ConnectionCounter {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpStream;

    async fn settled_count(counter: &ConnectionCounter, expected: usize) -> usize {
        for _ in 0..100 {
            if counter.connections() >= expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        counter.connections()
    }

    #[tokio::test]
    async fn a_fresh_counter_has_seen_no_connection() {
        let counter = ConnectionCounter::start().await.expect("start");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(counter.connections(), 0);
        assert!(counter.url().starts_with("http://127.0.0.1:"));
    }

    #[tokio::test]
    async fn every_connection_is_counted_and_closed_without_an_answer() {
        // Given a counter
        let counter = ConnectionCounter::start().await.expect("start");
        let address = counter.url().trim_start_matches("http://").to_string();
        // When a client connects twice
        let mut first = TcpStream::connect(&address).await.expect("connect");
        let _second = TcpStream::connect(&address).await.expect("connect");
        // Then both are counted and the first reads end-of-stream, no bytes
        assert_eq!(settled_count(&counter, 2).await, 2);
        let mut buffer = Vec::new();
        let read = first.read_to_end(&mut buffer).await;
        assert!(
            read.is_err() || buffer.is_empty(),
            "the counter must not answer"
        );
    }
}

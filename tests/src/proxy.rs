//! A TCP proxy between nexum and a node, to see what crosses the wire and to cut it.

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

#[derive(Default)]
struct State {
    refusing: bool,
    connections: Vec<AbortHandle>,
    /// Everything clients sent, in order.
    sent: Vec<u8>,
    accepted: usize,
    /// Connections turned away while cut.
    refused: usize,
}

/// Forwards `127.0.0.1:<port>` to a target port, recording what clients send.
pub struct Proxy {
    port: u16,
    state: Arc<Mutex<State>>,
    accept: AbortHandle,
}

impl Proxy {
    /// Starts forwarding to `127.0.0.1:<target>`.
    pub async fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    break;
                };
                let mut guard = shared.lock().unwrap();
                if guard.refusing {
                    guard.refused += 1;
                    drop(client);
                    continue;
                }
                guard.accepted += 1;
                let conn = tokio::spawn(forward(client, target, shared.clone()));
                guard.connections.push(conn.abort_handle());
            }
        })
        .abort_handle();
        Self {
            port,
            state,
            accept,
        }
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Closes every connection and refuses new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        let mut state = self.state.lock().unwrap();
        state.refusing = true;
        for conn in state.connections.drain(..) {
            conn.abort();
        }
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.state.lock().unwrap().refusing = false;
    }

    /// Connections accepted so far.
    pub fn connections_accepted(&self) -> usize {
        self.state.lock().unwrap().accepted
    }

    /// Connections turned away while cut (a client trying to reconnect).
    pub fn connections_refused(&self) -> usize {
        self.state.lock().unwrap().refused
    }

    /// Everything clients sent so far, as text.
    pub fn sent(&self) -> String {
        String::from_utf8_lossy(&self.state.lock().unwrap().sent).into_owned()
    }

    /// Forgets what was sent so far.
    pub fn clear_sent(&self) {
        self.state.lock().unwrap().sent.clear();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

async fn forward(mut client: TcpStream, target: u16, state: Arc<Mutex<State>>) {
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", target)).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = server.split();
    let upstream = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            state.lock().unwrap().sent.extend_from_slice(&buf[..n]);
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    let downstream = tokio::io::copy(&mut server_read, &mut client_write);
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}

//! A TCP proxy between nexum and a node or a database, to see what crosses the wire, to
//! cut it, to lose one answer and to hold one request back.

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
    /// The next request holding these bytes reaches the server, but its answer never
    /// reaches the client: the connection closes as the answer comes.
    lose_answer_to: Option<Vec<u8>>,
    /// Answers lost so far.
    answers_lost: usize,
    /// The next request holding these bytes is held back: its client's connection closes
    /// at once, and the request reaches the server only on [`Proxy::release_held`].
    hold_next: Option<Vec<u8>>,
    /// Requests held back so far, and of those released, the ones the server answered.
    held: usize,
    held_answered: usize,
    held_answers: Vec<Vec<u8>>,
    release: Arc<tokio::sync::Notify>,
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

    /// Lets the next request that holds `needle` reach the server and do its work, and
    /// closes its connection when the answer comes, before the client has it: a request
    /// that took effect while its client saw the connection fail.
    pub fn lose_answer_to(&self, needle: &str) {
        self.state.lock().unwrap().lose_answer_to = Some(needle.as_bytes().to_vec());
    }

    /// Holds back the next request that holds `needle`: its client sees the connection
    /// close with no answer, and the server gets the request only when
    /// [`Proxy::release_held`] lets it go: a request that outlived its client's patience.
    pub fn hold_next(&self, needle: &str) {
        self.state.lock().unwrap().hold_next = Some(needle.as_bytes().to_vec());
    }

    /// Requests held back so far (see [`Proxy::hold_next`]).
    pub fn requests_held(&self) -> usize {
        self.state.lock().unwrap().held
    }

    /// Lets the request held back reach the server.
    pub fn release_held(&self) {
        self.state.lock().unwrap().release.notify_one();
    }

    /// Requests released that the server has answered (the answer goes nowhere).
    pub fn held_answered(&self) -> usize {
        self.state.lock().unwrap().held_answered
    }

    /// What the server answered to the requests released, as text (lossy).
    pub fn held_answers(&self) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state
            .held_answers
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    /// Answers lost so far (see [`Proxy::lose_answer_to`]).
    pub fn answers_lost(&self) -> usize {
        self.state.lock().unwrap().answers_lost
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
    let held = {
        let (mut client_read, mut client_write) = client.split();
        let (mut server_read, mut server_write) = server.split();
        // Set once this connection carried the request whose answer is to be lost; the
        // client waits for that answer, so the next bytes from the server are it.
        let losing = std::sync::atomic::AtomicBool::new(false);
        let upstream = async {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match client_read.read(&mut buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => n,
                };
                {
                    let mut state = state.lock().unwrap();
                    state.sent.extend_from_slice(&buf[..n]);
                    if holds(state.hold_next.as_deref(), &buf[..n]) {
                        state.hold_next = None;
                        state.held += 1;
                        return Some(buf[..n].to_vec());
                    }
                    if holds(state.lose_answer_to.as_deref(), &buf[..n]) {
                        state.lose_answer_to = None;
                        losing.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                }
                if server_write.write_all(&buf[..n]).await.is_err() {
                    return None;
                }
            }
        };
        let downstream = async {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match server_read.read(&mut buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => n,
                };
                if losing.load(std::sync::atomic::Ordering::SeqCst) {
                    state.lock().unwrap().answers_lost += 1;
                    return None;
                }
                if client_write.write_all(&buf[..n]).await.is_err() {
                    return None;
                }
            }
        };
        tokio::select! {
            held = upstream => held,
            held = downstream => held,
        }
    };
    let Some(request) = held else {
        return;
    };
    // The client gives up on its request; the request reaches the server later.
    drop(client);
    let release = state.lock().unwrap().release.clone();
    release.notified().await;
    if server.write_all(&request).await.is_err() {
        return;
    }
    // The whole answer: PostgreSQL's ends with ReadyForQuery.
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(5).any(|w| w == b"Z\0\0\0\x05") {
        match server.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let mut state = state.lock().unwrap();
    state.held_answered += 1;
    state.held_answers.push(answer);
}

/// Whether `chunk` holds `needle`, when there is one.
fn holds(needle: Option<&[u8]>, chunk: &[u8]) -> bool {
    needle.is_some_and(|needle| chunk.windows(needle.len()).any(|window| window == needle))
}

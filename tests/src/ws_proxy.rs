//! A websocket proxy in front of a node that can also speak for it: it forwards every
//! message both ways, remembers the logs it passed on through subscriptions, and on request
//! sends the client `removed: true` copies of them — what geth does on a reorg and Anvil
//! does not.

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio_tungstenite::tungstenite::Message;

#[derive(Default)]
struct State {
    /// `(subscription id, log)` of every log notification passed on.
    logs: Vec<(Value, Value)>,
    /// Where to inject messages for each client connection.
    clients: Vec<mpsc::UnboundedSender<Message>>,
}

/// Forwards `ws://127.0.0.1:<port>` to a node's websocket.
pub struct WsProxy {
    port: u16,
    state: Arc<Mutex<State>>,
    accept: AbortHandle,
}

impl WsProxy {
    /// Starts forwarding to `target` (a `ws://` URL).
    pub async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(relay(stream, target.clone(), shared.clone()));
            }
        })
        .abort_handle();
        Self {
            port,
            state,
            accept,
        }
    }

    /// The URL clients connect to.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// Sends every client a `removed: true` copy of each log it was sent from a block in
    /// `block_hashes`, newest first, as a node does on a reorg. Returns how many were sent.
    pub fn retract(&self, block_hashes: &[String]) -> usize {
        let state = self.state.lock().unwrap();
        let mut sent = 0;
        for (subscription, log) in state.logs.iter().rev() {
            let in_block = log["blockHash"]
                .as_str()
                .is_some_and(|hash| block_hashes.iter().any(|h| h.eq_ignore_ascii_case(hash)));
            if !in_block {
                continue;
            }
            let mut removed = log.clone();
            removed["removed"] = Value::Bool(true);
            let message = serde_json::json!({
                "jsonrpc": "2.0",
                "method": "eth_subscription",
                "params": { "subscription": subscription, "result": removed },
            });
            for client in &state.clients {
                let _ = client.send(Message::Text(message.to_string().into()));
            }
            sent += 1;
        }
        sent
    }
}

impl Drop for WsProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn relay(stream: tokio::net::TcpStream, target: String, state: Arc<Mutex<State>>) {
    let Ok(client) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let Ok((server, _)) = tokio_tungstenite::connect_async(target.as_str()).await else {
        return;
    };
    let (mut to_client, mut from_client) = client.split();
    let (mut to_server, mut from_server) = server.split();
    let (inject, mut injected) = mpsc::unbounded_channel();
    state.lock().unwrap().clients.push(inject);

    let upstream = async {
        while let Some(Ok(message)) = from_client.next().await {
            if to_server.send(message).await.is_err() {
                break;
            }
        }
    };
    let downstream = async {
        loop {
            let message = tokio::select! {
                message = from_server.next() => match message {
                    Some(Ok(message)) => {
                        remember(&state, &message);
                        message
                    }
                    _ => break,
                },
                message = injected.recv() => match message {
                    Some(message) => message,
                    None => break,
                },
            };
            if to_client.send(message).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}

/// Keeps the logs of subscription notifications.
fn remember(state: &Mutex<State>, message: &Message) {
    let Message::Text(text) = message else {
        return;
    };
    let Ok(json) = serde_json::from_str::<Value>(text) else {
        return;
    };
    if json["method"] == "eth_subscription" && json["params"]["result"]["logIndex"].is_string() {
        state.lock().unwrap().logs.push((
            json["params"]["subscription"].clone(),
            json["params"]["result"].clone(),
        ));
    }
}

//! A mock CoW orderbook (wiremock) that speaks the real API's shapes: it checks each posted
//! `OrderCreation`, answers with the order UID (`201`), the real error envelope
//! (`{errorType, description}`) — `DuplicatedOrder` for an order it already has — and
//! serves app-data documents.

use alloy_primitives::{Address, B256, keccak256};
use cowprotocol::domain::settlement_domain;
use cowprotocol::order_book::OrderCreation;
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// One `POST /api/v1/orders` the mock received.
#[derive(Debug, Clone)]
pub struct Post {
    /// The body as sent.
    pub body: Value,
    /// The UID the mock computed for it (when the body was a valid `OrderCreation`).
    pub uid: Option<String>,
    /// The status the mock answered.
    pub status: u16,
}

/// An answer a test scripts for the next order post.
#[derive(Debug, Clone)]
pub enum Reply {
    /// The orderbook's error envelope.
    Error {
        /// HTTP status.
        status: u16,
        /// `errorType`.
        error_type: String,
    },
    /// `429 Too Many Requests`, with a `Retry-After` in seconds.
    RateLimited(u64),
    /// Any status with a plain-text body (not an error envelope).
    Plain(u16, String),
}

impl Reply {
    /// The orderbook's error envelope with `status` and `error_type`.
    pub fn error(status: u16, error_type: &str) -> Self {
        Reply::Error {
            status,
            error_type: error_type.to_string(),
        }
    }

    fn render(&self) -> (u16, ResponseTemplate) {
        match self {
            Reply::Error { status, error_type } => (
                *status,
                envelope(*status, error_type, "scripted by the test"),
            ),
            Reply::RateLimited(seconds) => (
                429,
                ResponseTemplate::new(429)
                    .insert_header("retry-after", seconds.to_string().as_str())
                    .set_body_string("slow down"),
            ),
            Reply::Plain(status, body) => (
                *status,
                ResponseTemplate::new(*status).set_body_string(body.as_str()),
            ),
        }
    }
}

fn envelope(status: u16, error_type: &str, description: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({ "errorType": error_type, "description": description }))
}

#[derive(Default)]
struct State {
    posts: Vec<Post>,
    accepted: BTreeMap<String, Value>,
    /// Answers to give instead of the normal one, in order.
    scripted: VecDeque<Reply>,
    /// How long to hold the next answer back (the post itself counts at once).
    hold_next: Option<std::time::Duration>,
    app_data: BTreeMap<B256, String>,
}

/// The mock and what it saw.
pub struct MockOrderbook {
    server: MockServer,
    state: Arc<Mutex<State>>,
    chain_id: u64,
}

impl MockOrderbook {
    /// Starts the mock for orders signed on `chain_id`.
    pub async fn start(chain_id: u64) -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State::default()));
        Mock::given(method("POST"))
            .and(path("/api/v1/orders"))
            .respond_with(Orders {
                state: state.clone(),
                chain_id,
            })
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/api/v1/app_data/0x[0-9a-fA-F]{64}$"))
            .respond_with(AppData {
                state: state.clone(),
            })
            .mount(&server)
            .await;
        Self {
            server,
            state,
            chain_id,
        }
    }

    /// Its base URL, for `orderbook_url`.
    pub fn url(&self) -> String {
        self.server.uri()
    }

    /// Serves `document` at `GET /api/v1/app_data/<keccak(document)>`; returns the hash.
    pub fn add_app_data(&self, document: &str) -> B256 {
        let hash = keccak256(document);
        self.state
            .lock()
            .unwrap()
            .app_data
            .insert(hash, document.to_string());
        hash
    }

    /// Answers the next order post with `reply` instead of the normal answer.
    pub fn script_next(&self, reply: Reply) {
        self.state.lock().unwrap().scripted.push_back(reply);
    }

    /// Takes the next order post as usual (accepted, counted) but holds its answer back
    /// for `hold`: the poster sees nothing, as when a connection drops after the orderbook
    /// took the order.
    pub fn hold_next_answer(&self, hold: std::time::Duration) {
        self.state.lock().unwrap().hold_next = Some(hold);
    }

    /// Every order post so far.
    pub fn posts(&self) -> Vec<Post> {
        self.state.lock().unwrap().posts.clone()
    }

    /// UIDs accepted (answered `201`), each once.
    pub fn accepted(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .accepted
            .keys()
            .cloned()
            .collect()
    }

    /// How many posts of `uid` were answered `201`.
    pub fn accepted_count(&self, uid: &str) -> usize {
        self.posts()
            .iter()
            .filter(|p| p.status == 201 && p.uid.as_deref() == Some(uid))
            .count()
    }

    /// The chain its UIDs are computed for.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }
}

/// The UID of `order` on `chain_id`, as the orderbook would compute it.
pub fn uid_of(order: &OrderCreation, chain_id: u64) -> String {
    let domain = settlement_domain(chain_id, cowprotocol::contracts::GPV2_SETTLEMENT);
    order.order_data().uid(&domain, order.from).to_string()
}

struct Orders {
    state: Arc<Mutex<State>>,
    chain_id: u64,
}

impl Respond for Orders {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let mut state = self.state.lock().unwrap();
        let parsed = serde_json::from_value::<OrderCreation>(body.clone());
        let uid = parsed.as_ref().ok().map(|o| uid_of(o, self.chain_id));
        let (status, response) = if let Some(scripted) = state.scripted.pop_front() {
            scripted.render()
        } else {
            match (&parsed, &uid) {
                (Err(e), _) => (400, envelope(400, "InvalidOrder", &e.to_string())),
                (Ok(order), _) if order.from == Address::ZERO => {
                    (400, envelope(400, "MissingFrom", "from is required"))
                }
                (Ok(_), Some(uid)) if state.accepted.contains_key(uid) => (
                    400,
                    envelope(400, "DuplicatedOrder", "order already exists"),
                ),
                (Ok(_), Some(uid)) => {
                    state.accepted.insert(uid.clone(), body.clone());
                    (201, ResponseTemplate::new(201).set_body_json(json!(uid)))
                }
                (Ok(_), None) => unreachable!("a parsed order has a UID"),
            }
        };
        state.posts.push(Post { body, uid, status });
        match state.hold_next.take() {
            Some(hold) => response.set_delay(hold),
            None => response,
        }
    }
}

struct AppData {
    state: Arc<Mutex<State>>,
}

impl Respond for AppData {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let hash: Option<B256> = request
            .url
            .path()
            .rsplit('/')
            .next()
            .and_then(|h| h.parse().ok());
        match hash.and_then(|h| self.state.lock().unwrap().app_data.get(&h).cloned()) {
            Some(document) => {
                ResponseTemplate::new(200).set_body_json(json!({ "fullAppData": document }))
            }
            None => envelope(404, "NotFound", "unknown app data"),
        }
    }
}

use super::*;
use crate::contract::{ConditionalOrderParams, getTradeableOrderWithSignatureReturn};
use crate::state::Watch;
use nexum_guest::bindings::nexum::cow::cow_api::{CowApiError, OrderRejection};
use nexum_guest::bindings::nexum::host::chain::{ChainError, RpcError};
use nexum_guest::primitives::{U256, address};
use nexum_guest::sol_types::{SolCall, SolEvent};
use nexum_guest::testing::{Orderbook, TestHost};
use nexum_guest::{ChainLog, Event, Module};
use std::cell::RefCell;
use std::rc::Rc;

const COMPOSABLE_COW: Address = address!("0x00000000000000000000000000000000000c0c0c");
const OWNER: Address = address!("0x0000000000000000000000000000000000000a11");

fn params() -> ConditionalOrderParams {
    ConditionalOrderParams {
        handler: Address::repeat_byte(0x77),
        salt: B256::repeat_byte(1),
        staticInput: Bytes::from(vec![1, 2, 3]),
    }
}

fn created_log(removed: bool) -> Event {
    let event = ConditionalOrderCreated {
        owner: OWNER,
        params: params(),
    };
    let data = event.encode_log_data();
    Event::ChainLogs(ChainLogs {
        chain_id: 1,
        logs: vec![ChainLog {
            address: COMPOSABLE_COW.to_vec(),
            topics: data.topics().iter().map(|t| t.to_vec()).collect(),
            data: data.data.to_vec(),
            block_number: Some(10),
            block_hash: Some(vec![10; 32]),
            transaction_hash: None,
            transaction_index: Some(0),
            log_index: Some(0),
            removed,
        }],
    })
}

fn block(number: u64) -> Event {
    Event::Block(Block {
        chain_id: 1,
        number,
        hash: vec![number as u8; 32],
        parent_hash: vec![number as u8 - 1; 32],
        timestamp: 1_700_000_000_000 + number * 12_000,
    })
}

fn ready_order(valid_to: u32) -> GPv2OrderData {
    GPv2OrderData {
        sellToken: Address::repeat_byte(1),
        buyToken: Address::repeat_byte(2),
        receiver: Address::ZERO,
        sellAmount: U256::from(1000),
        buyAmount: U256::from(900),
        validTo: valid_to,
        appData: keccak256("{}"),
        feeAmount: U256::ZERO,
        kind: OrderKind::SELL,
        partiallyFillable: false,
        sellTokenBalance: SellTokenSource::ERC20,
        buyTokenBalance: BuyTokenDestination::ERC20,
    }
}

/// What the mock contract answers `getTradeableOrderWithSignature` with.
#[derive(Clone)]
enum Answer {
    Ready(u32),
    Revert(Vec<u8>),
}

struct Setup {
    host: TestHost,
    keeper: TwapKeeper,
    answer: Rc<RefCell<Answer>>,
    posts: Rc<RefCell<Vec<serde_json::Value>>>,
    reply: Rc<RefCell<Result<String, CowApiError>>>,
}

struct Book {
    posts: Rc<RefCell<Vec<serde_json::Value>>>,
    reply: Rc<RefCell<Result<String, CowApiError>>>,
}

impl Orderbook for Book {
    fn request(
        &mut self,
        _: u64,
        _: &str,
        path: &str,
        _: Option<&str>,
    ) -> Result<String, CowApiError> {
        panic!("unexpected orderbook request {path}")
    }

    fn submit(&mut self, _: u64, order: &serde_json::Value) -> Result<String, CowApiError> {
        self.posts.borrow_mut().push(order.clone());
        self.reply.borrow().clone()
    }
}

fn setup() -> Setup {
    let host = TestHost::new();
    let answer = Rc::new(RefCell::new(Answer::Revert(
        PollTryNextBlock { reason: "x".into() }.abi_encode(),
    )));
    let for_chain = answer.clone();
    host.on_chain(move |_, method, _| {
        assert_eq!(method, "eth_call");
        match for_chain.borrow().clone() {
            Answer::Ready(valid_to) => {
                let returns = getTradeableOrderWithSignatureReturn {
                    order: ready_order(valid_to),
                    signature: Bytes::from(vec![0xee; 4]),
                };
                let encoded = getTradeableOrderWithSignatureCall::abi_encode_returns(&returns);
                Ok(format!("\"0x{}\"", hex(&encoded)))
            }
            Answer::Revert(data) => Err(ChainError::Rpc(RpcError {
                code: 3,
                message: "execution reverted".into(),
                data: Some(data),
            })),
        }
    });
    let posts = Rc::new(RefCell::new(Vec::new()));
    let reply = Rc::new(RefCell::new(Ok("\"0xuid\"".to_string())));
    host.with_orderbook(Book {
        posts: posts.clone(),
        reply: reply.clone(),
    });
    let keeper: TwapKeeper = host
        .init(&[("composable_cow", &COMPOSABLE_COW.to_string())])
        .unwrap();
    Setup {
        host,
        keeper,
        answer,
        posts,
        reply,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn watch(setup: &Setup) -> Option<Watch> {
    let keys = setup.host.store_keys();
    let key = keys.iter().find(|k| k.starts_with("watch/"))?;
    setup.host.store_json(key)
}

#[test]
fn a_created_order_is_watched_once_and_forgotten_when_retracted() {
    let mut s = setup();
    s.host.deliver(&mut s.keeper, created_log(false)).unwrap();
    s.host.deliver(&mut s.keeper, created_log(false)).unwrap();
    let keys: Vec<String> = s
        .host
        .store_keys()
        .into_iter()
        .filter(|k| k.starts_with("watch/"))
        .collect();
    assert_eq!(keys.len(), 1);
    assert_eq!(watch(&s).unwrap().owner, OWNER);
    s.host.deliver(&mut s.keeper, created_log(true)).unwrap();
    assert!(watch(&s).is_none());
}

#[test]
fn a_ready_order_is_posted_once_with_the_owner_and_an_eip1271_signature() {
    let mut s = setup();
    s.host.deliver(&mut s.keeper, created_log(false)).unwrap();
    *s.answer.borrow_mut() = Answer::Ready(1_800_000_000);
    s.host.deliver(&mut s.keeper, block(11)).unwrap();
    s.host.deliver(&mut s.keeper, block(12)).unwrap();
    let posts = s.posts.borrow();
    assert_eq!(posts.len(), 1, "posted twice: {posts:?}");
    assert_eq!(posts[0]["from"], OWNER.to_string().to_lowercase());
    assert_eq!(posts[0]["signingScheme"], "eip1271");
    assert_eq!(posts[0]["appData"], "{}");
    assert_eq!(posts[0]["signature"], "0xeeeeeeee");
    // A new part (another validTo) is another order.
    drop(posts);
    *s.answer.borrow_mut() = Answer::Ready(1_800_000_600);
    s.host.deliver(&mut s.keeper, block(13)).unwrap();
    assert_eq!(s.posts.borrow().len(), 2);
}

#[test]
fn revert_hints_schedule_the_next_poll_or_end_the_watch() {
    let mut s = setup();
    s.host.deliver(&mut s.keeper, created_log(false)).unwrap();

    *s.answer.borrow_mut() = Answer::Revert(
        PollTryAtBlock {
            blockNumber: U256::from(20),
            reason: "wait".into(),
        }
        .abi_encode(),
    );
    s.host.deliver(&mut s.keeper, block(11)).unwrap();
    assert_eq!(watch(&s).unwrap().next_block, Some(20));
    let calls = s.host.chain_calls().len();
    s.host.deliver(&mut s.keeper, block(12)).unwrap();
    assert_eq!(s.host.chain_calls().len(), calls, "polled before block 20");

    let later = 1_700_000_000 + 20 * 12 + 3600;
    *s.answer.borrow_mut() = Answer::Revert(
        PollTryAtEpoch {
            timestamp: U256::from(later),
            reason: "later".into(),
        }
        .abi_encode(),
    );
    s.host.deliver(&mut s.keeper, block(20)).unwrap();
    assert_eq!(watch(&s).unwrap().next_epoch, Some(later));

    *s.answer.borrow_mut() = Answer::Revert(
        PollNever {
            reason: "done".into(),
        }
        .abi_encode(),
    );
    s.host.deliver(&mut s.keeper, block(21)).unwrap();
    assert!(watch(&s).is_some(), "not due yet");
    let due = (later - 1_700_000_000) / 12 + 1;
    s.host.deliver(&mut s.keeper, block(due)).unwrap();
    assert!(watch(&s).is_none(), "PollNever ends the watch");
}

#[test]
fn order_not_valid_ends_the_watch_and_try_next_block_keeps_it() {
    let mut s = setup();
    s.host.deliver(&mut s.keeper, created_log(false)).unwrap();
    s.host.deliver(&mut s.keeper, block(11)).unwrap();
    assert!(watch(&s).is_some());
    *s.answer.borrow_mut() = Answer::Revert(
        OrderNotValid {
            reason: "expired".into(),
        }
        .abi_encode(),
    );
    s.host.deliver(&mut s.keeper, block(12)).unwrap();
    assert!(watch(&s).is_none());
}

#[test]
fn rejections_back_off_record_or_drop() {
    let reject = |error_type: &str| {
        Err(CowApiError::Rejected(OrderRejection {
            status: 400,
            error_type: error_type.into(),
            description: "scripted".into(),
            data: None,
        }))
    };
    let mut s = setup();
    s.host.deliver(&mut s.keeper, created_log(false)).unwrap();
    *s.answer.borrow_mut() = Answer::Ready(1_800_000_000);

    *s.reply.borrow_mut() = reject("InsufficientAllowance");
    s.host.deliver(&mut s.keeper, block(11)).unwrap();
    let now = 1_700_000_000 + 11 * 12;
    assert_eq!(watch(&s).unwrap().next_epoch, Some(now + 600));

    *s.reply.borrow_mut() = reject("DuplicatedOrder");
    s.host
        .deliver(&mut s.keeper, block(11 + 600 / 12 + 1))
        .unwrap();
    assert!(
        s.host
            .store_keys()
            .iter()
            .any(|k| k.starts_with("submitted/"))
    );

    *s.answer.borrow_mut() = Answer::Ready(1_800_000_600);
    *s.reply.borrow_mut() = reject("InvalidSignature");
    s.host.deliver(&mut s.keeper, block(70)).unwrap();
    s.host.deliver(&mut s.keeper, block(71)).unwrap();
    assert!(
        s.host
            .store_keys()
            .iter()
            .any(|k| k.starts_with("dropped/"))
    );
    assert_eq!(
        s.posts.borrow().len(),
        3,
        "a dropped order is not sent again"
    );
}

#[test]
fn module_trait_routes_events() {
    let mut s = setup();
    Module::on_event(&mut s.keeper, created_log(false)).unwrap();
}

//! The TWAP keeper end to end: a real Anvil with the ComposableCoW test double, the compiled
//! keeper, and a mock orderbook that checks every posted order.

use alloy_primitives::{Address, keccak256};
use nexum_core::ChainConfig;
use nexum_tests::anvil::{
    Anvil, CHAIN_ID,
    MockComposableCoW::{ConditionalOrderParams, OrderData},
    PollAnswer,
};
use nexum_tests::engine::{TestModule, TestRuntime, run, test_config, wait_until};
use nexum_tests::orderbook::{MockOrderbook, Reply};
use nexum_tests::twap::{APP_DATA, keeper_manifest, params, part};
use serde_json::Value;
use std::time::Duration;

struct Twap {
    anvil: Anvil,
    composable_cow: Address,
    book: MockOrderbook,
    runtime: TestRuntime,
    owner: Address,
}

async fn setup(dry_run: bool) -> Twap {
    let anvil = Anvil::spawn().await;
    let composable_cow = anvil.deploy_composable_cow().await;
    let book = MockOrderbook::start(CHAIN_ID).await;
    book.add_app_data(APP_DATA);
    let mut config = test_config();
    let mut chain = ChainConfig::new(&anvil.ws_url()).unwrap();
    chain.orderbook_url = Some(book.url());
    chain.dry_run = Some(dry_run);
    config.chains.insert(CHAIN_ID, chain);
    let module = TestModule::new(
        "twap-keeper",
        "twap",
        &["chain", "cow-api", "local-store", "logging"],
        &keeper_manifest(composable_cow),
    );
    let runtime = run(vec![module], config).await;
    let owner = anvil.dev_account().await;
    Twap {
        anvil,
        composable_cow,
        book,
        runtime,
        owner,
    }
}

impl Twap {
    fn watch_key(&self, params: &ConditionalOrderParams) -> String {
        let hash = keccak256(alloy_sol_types::SolValue::abi_encode(params));
        format!("watch/{}/{hash}", self.owner)
    }

    fn watch(&self, params: &ConditionalOrderParams) -> Option<Value> {
        self.runtime
            .read("twap", &self.watch_key(params))
            .map(|w| serde_json::from_str(&w).unwrap())
    }

    fn keys(&self, prefix: &str) -> Vec<String> {
        self.runtime
            .runtime
            .list("twap", prefix)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    async fn create(&self, params: &ConditionalOrderParams) {
        self.anvil
            .create_conditional_order(self.composable_cow, params)
            .await;
        let watched = wait_until(Duration::from_secs(20), || self.watch(params).is_some()).await;
        assert!(watched, "the keeper never started watching {params:?}");
    }

    async fn script(
        &self,
        params: &ConditionalOrderParams,
        answer: PollAnswer,
        arg: u64,
        order: OrderData,
    ) {
        self.anvil
            .script_poll(self.composable_cow, params, answer, arg, order)
            .await;
    }

    /// Mines one block and waits until the keeper handled it.
    async fn mine(&self) {
        self.anvil.mine(1).await;
        self.settle().await;
    }

    /// Waits until the keeper handled (and committed) the chain's newest block.
    async fn settle(&self) {
        let head = self.anvil.block_number().await;
        self.runtime.wait_handled("twap", CHAIN_ID, head).await;
    }

    async fn wait_for_posts(&self, n: usize) {
        let arrived = wait_until(Duration::from_secs(20), || self.book.posts().len() >= n).await;
        let seen: Vec<u16> = self.book.posts().iter().map(|p| p.status).collect();
        assert!(
            arrived,
            "expected {n} posts, the orderbook answered {seen:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_part_is_posted_once_with_owner_eip1271_signature_and_app_data() {
    let t = setup(false).await;
    let p = params(1);
    t.create(&p).await;
    let valid_to = t.anvil.latest_timestamp().await + 3_600;
    t.script(&p, PollAnswer::Ready, 0, part(valid_to)).await;
    t.wait_for_posts(1).await;
    for _ in 0..3 {
        t.mine().await;
    }
    let posts = t.book.posts();
    assert_eq!(posts.len(), 1, "posted more than once: {posts:?}");
    let post = &posts[0];
    assert_eq!(post.status, 201);
    assert_eq!(
        post.body["from"]
            .as_str()
            .unwrap()
            .parse::<Address>()
            .unwrap(),
        t.owner
    );
    assert_eq!(post.body["signingScheme"], "eip1271");
    assert_eq!(post.body["appData"], APP_DATA);
    assert_eq!(post.body["appDataHash"], keccak256(APP_DATA).to_string());
    assert_eq!(post.body["kind"], "sell");
    assert!(
        post.body["signature"].as_str().unwrap().len() > 100,
        "the EIP-1271 signature is the encoded order and params"
    );
    let uid = post.uid.clone().unwrap();
    assert!(
        t.runtime
            .read("twap", &format!("submitted/{uid}"))
            .is_some()
    );

    // The next part is a new order, posted once too.
    t.script(&p, PollAnswer::Ready, 0, part(valid_to + 600))
        .await;
    t.wait_for_posts(2).await;
    t.mine().await;
    assert_eq!(t.book.posts().len(), 2);
    assert_eq!(t.book.accepted().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revert_hints_decide_when_to_poll_and_when_to_stop() {
    let t = setup(false).await;
    let valid_to = t.anvil.latest_timestamp().await + 3_600;

    // PollTryAtBlock: nothing before that block, then the part.
    let at_block = params(2);
    t.create(&at_block).await;
    let target = t.anvil.block_number().await + 6;
    t.script(
        &at_block,
        PollAnswer::TryAtBlock,
        target,
        OrderData::default(),
    )
    .await;
    t.mine().await;
    assert_eq!(t.watch(&at_block).unwrap()["next_block"], target);
    t.script(&at_block, PollAnswer::Ready, 0, part(valid_to))
        .await;
    while t.anvil.block_number().await + 1 < target {
        t.mine().await;
    }
    assert!(t.book.posts().is_empty(), "polled before block {target}");
    t.mine().await;
    t.wait_for_posts(1).await;

    // PollTryAtEpoch: nothing before that time, then the part.
    let at_epoch = params(3);
    t.create(&at_epoch).await;
    let when = t.anvil.latest_timestamp().await + 1_000;
    t.script(
        &at_epoch,
        PollAnswer::TryAtEpoch,
        when,
        OrderData::default(),
    )
    .await;
    t.mine().await;
    assert_eq!(t.watch(&at_epoch).unwrap()["next_epoch"], when);
    t.script(&at_epoch, PollAnswer::Ready, 0, part(valid_to + 1))
        .await;
    t.mine().await;
    assert_eq!(t.book.posts().len(), 1, "polled before its time");
    t.anvil.mine_at(when).await;
    t.wait_for_posts(2).await;

    // PollNever and OrderNotValid end the watch; PollTryNextBlock keeps it.
    let (never, not_valid, next) = (params(4), params(5), params(6));
    for p in [&never, &not_valid, &next] {
        t.create(p).await;
    }
    t.script(&never, PollAnswer::Never, 0, OrderData::default())
        .await;
    t.script(&not_valid, PollAnswer::NotValid, 0, OrderData::default())
        .await;
    t.script(&next, PollAnswer::TryNextBlock, 0, OrderData::default())
        .await;
    t.mine().await;
    let gone = wait_until(Duration::from_secs(10), || {
        t.watch(&never).is_none() && t.watch(&not_valid).is_none()
    })
    .await;
    assert!(
        gone,
        "PollNever / OrderNotValid watches remain: {:?}",
        t.keys("watch/")
    );
    let kept = t.watch(&next).expect("PollTryNextBlock keeps the watch");
    assert_eq!(
        (kept["next_block"].clone(), kept["next_epoch"].clone()),
        (Value::Null, Value::Null)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orderbook_rejections_back_off_retry_or_drop() {
    let t = setup(false).await;
    let p = params(7);
    t.create(&p).await;
    let valid_to = t.anvil.latest_timestamp().await + 3_600;

    // InsufficientAllowance: back off ten minutes, then post again.
    t.book
        .script_next(Reply::error(400, "InsufficientAllowance"));
    t.script(&p, PollAnswer::Ready, 0, part(valid_to)).await;
    t.wait_for_posts(1).await;
    t.settle().await;
    let backoff = t.watch(&p).unwrap()["next_epoch"]
        .as_u64()
        .expect("a backoff");
    t.mine().await;
    assert_eq!(t.book.posts().len(), 1, "retried during the backoff");
    t.anvil.mine_at(backoff).await;
    t.wait_for_posts(2).await;
    assert_eq!(t.book.posts()[1].status, 201);

    // 429 with Retry-After: back off that long.
    let p2 = params(8);
    t.create(&p2).await;
    t.book.script_next(Reply::RateLimited(42));
    let before = t.anvil.latest_timestamp().await;
    t.script(&p2, PollAnswer::Ready, 0, part(valid_to + 1))
        .await;
    t.wait_for_posts(3).await;
    t.settle().await;
    let next_epoch = t.watch(&p2).unwrap()["next_epoch"].as_u64().unwrap();
    assert!(
        (before + 42..=before + 60).contains(&next_epoch),
        "{next_epoch} vs {before}"
    );

    // A 5xx without an error document: try again next block.
    let p3 = params(9);
    t.create(&p3).await;
    t.book
        .script_next(Reply::Plain(503, "upstream down".into()));
    t.script(&p3, PollAnswer::Ready, 0, part(valid_to + 2))
        .await;
    t.wait_for_posts(4).await;
    t.mine().await;
    t.wait_for_posts(5).await;
    let posts = t.book.posts();
    assert_eq!((posts[3].status, posts[4].status), (503, 201));

    // An error type the keeper must not retry: the order is dropped for good.
    let p4 = params(10);
    t.create(&p4).await;
    t.book.script_next(Reply::error(400, "InvalidSignature"));
    t.script(&p4, PollAnswer::Ready, 0, part(valid_to + 3))
        .await;
    t.wait_for_posts(6).await;
    for _ in 0..3 {
        t.mine().await;
    }
    assert_eq!(t.book.posts().len(), 6, "a dropped order was sent again");
    assert_eq!(t.keys("dropped/").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_posts_nothing_and_records_the_local_uid() {
    let t = setup(true).await;
    let p = params(11);
    t.create(&p).await;
    let valid_to = t.anvil.latest_timestamp().await + 3_600;
    t.script(&p, PollAnswer::Ready, 0, part(valid_to)).await;
    let recorded = wait_until(Duration::from_secs(20), || !t.keys("submitted/").is_empty()).await;
    assert!(recorded, "the keeper never recorded the dry-run order");
    assert!(
        t.book.posts().is_empty(),
        "a dry run sent {:?}",
        t.book.posts()
    );
    let uid = t.keys("submitted/")[0]
        .trim_start_matches("submitted/")
        .to_string();
    assert_eq!(uid.len(), 2 + 112);
}

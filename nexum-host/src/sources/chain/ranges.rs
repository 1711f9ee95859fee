//! Reading logs over block ranges, shrinking the range when the node refuses one as too
//! large (providers cap `eth_getLogs` by span or by result count), when an answer is too
//! big to arrive at all, and when a read brings back so many logs that holding them would
//! make memory grow with the backlog.

use crate::chain::NodeError;
use nexum_core::ChainLog;
use std::future::Future;

/// Logs one read should bring back at most, roughly: busier ranges are read in smaller spans.
pub(crate) const LOGS_PER_READ: usize = 2_000;

/// The span of a module's first read of a backlog, before nexum knows how busy the range
/// is: a small first answer, since a websocket answer over the cap takes the connection
/// down (and the client sends the request again on the new one). Light reads double the
/// span up to `delivery.get_logs_max_blocks`.
pub(crate) const FIRST_SPAN: u64 = 64;

/// The span of the next read after one of `span` blocks returned `found` logs: halved when
/// the read was too heavy, doubled (up to `max`) when it was light.
pub(crate) fn next_span(span: u64, found: usize, max: u64) -> u64 {
    if found > LOGS_PER_READ {
        (span / 2).max(1)
    } else if found < LOGS_PER_READ / 4 {
        span.saturating_mul(2).min(max)
    } else {
        span
    }
}

/// Fetches the logs of `from..=to` with `fetch(from, to)`, in chunks of at most `*span`
/// blocks. A refusal for size halves `*span` (it stays halved for later calls) and
/// retries; any other error is returned.
pub(crate) async fn logs_in_range<F, Fut>(
    mut fetch: F,
    from: u64,
    to: u64,
    span: &mut u64,
) -> Result<Vec<ChainLog>, NodeError>
where
    F: FnMut(u64, u64) -> Fut,
    Fut: Future<Output = Result<Vec<ChainLog>, NodeError>>,
{
    let mut logs = Vec::new();
    let mut start = from;
    while start <= to {
        let end = to.min(start.saturating_add(*span - 1));
        match fetch(start, end).await {
            Ok(mut chunk) => {
                logs.append(&mut chunk);
                start = end + 1;
            }
            Err(e) if e.is_range_too_large() && *span > 1 => {
                *span = (*span / 2).max(1);
                tracing::info!(error = %e, span = *span, "the node refused a log range as too large; shrinking it");
            }
            Err(e) => {
                // An answer too big to carry (over the websocket frame cap, or so slow to
                // build that the request times out) fails like the transport does: the
                // caller retries, and asks for half the span, so a heavy backlog cannot
                // stall delivery on one range forever.
                if *span > 1
                    && matches!(
                        e,
                        NodeError::Timeout(_) | NodeError::Unavailable(_) | NodeError::Malformed(_)
                    )
                {
                    *span = (*span / 2).max(1);
                }
                return Err(e);
            }
        }
    }
    Ok(logs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn log_at(block: u64) -> ChainLog {
        ChainLog {
            block_number: Some(block),
            ..ChainLog::default()
        }
    }

    #[tokio::test]
    async fn an_answer_that_never_arrives_halves_the_span_for_the_retry() {
        // Ranges over 100 blocks answer with more than the transport carries: the
        // connection drops and the request times out.
        let fetch = |from: u64, to: u64| async move {
            if to - from + 1 > 100 {
                Err(NodeError::Timeout(std::time::Duration::from_secs(10)))
            } else {
                Ok((from..=to).map(log_at).collect::<Vec<_>>())
            }
        };
        let mut span = 2000;
        let mut tries = 0;
        let logs = loop {
            tries += 1;
            assert!(tries < 20, "the range never shrank enough");
            if let Ok(logs) = logs_in_range(fetch, 1, 500, &mut span).await {
                break logs;
            }
        };
        assert_eq!(logs.len(), 500);
        assert!(span <= 100, "{span}");
    }

    #[tokio::test]
    async fn shrinks_until_the_node_accepts_and_reads_everything() {
        let calls = RefCell::new(Vec::new());
        let fetch = |from: u64, to: u64| {
            calls.borrow_mut().push((from, to));
            async move {
                if to - from + 1 > 100 {
                    Err(NodeError::Rpc {
                        code: -32602,
                        message: "query exceeds max block range 100".into(),
                        data: None,
                    })
                } else {
                    Ok((from..=to).filter(|b| b % 50 == 0).map(log_at).collect())
                }
            }
        };
        let mut span = 1000;
        let logs = logs_in_range(fetch, 1, 400, &mut span).await.unwrap();
        assert_eq!(span, 62);
        let blocks: Vec<u64> = logs.iter().map(|l| l.block_number.unwrap()).collect();
        assert_eq!(blocks, vec![50, 100, 150, 200, 250, 300, 350, 400]);
        // Every accepted chunk was within the limit, and they tile the range.
        let accepted: Vec<(u64, u64)> = calls
            .borrow()
            .iter()
            .copied()
            .filter(|(f, t)| t - f < 100)
            .collect();
        assert_eq!(accepted.first().unwrap().0, 1);
        assert_eq!(accepted.last().unwrap().1, 400);
        assert!(accepted.windows(2).all(|w| w[1].0 == w[0].1 + 1));
    }

    #[test]
    fn spans_follow_how_busy_the_chain_is() {
        assert_eq!(next_span(1000, LOGS_PER_READ * 2, 2000), 500);
        assert_eq!(next_span(1000, 10, 2000), 2000);
        assert_eq!(next_span(1500, 10, 2000), 2000);
        assert_eq!(next_span(1000, LOGS_PER_READ / 2, 2000), 1000);
        assert_eq!(next_span(1, LOGS_PER_READ * 2, 2000), 1);
    }

    #[tokio::test]
    async fn other_errors_are_returned_and_only_transport_failures_shrink_the_span() {
        let fetch = |_: u64, _: u64| async {
            Err::<Vec<ChainLog>, _>(NodeError::Timeout(std::time::Duration::from_secs(1)))
        };
        let mut span = 10;
        assert!(matches!(
            logs_in_range(fetch, 1, 5, &mut span).await,
            Err(NodeError::Timeout(_))
        ));
        assert_eq!(span, 5);
        let refused = |_: u64, _: u64| async {
            Err::<Vec<ChainLog>, _>(NodeError::Rpc {
                code: -32000,
                message: "header not found".into(),
                data: None,
            })
        };
        assert!(matches!(
            logs_in_range(refused, 1, 5, &mut span).await,
            Err(NodeError::Rpc { .. })
        ));
        assert_eq!(span, 5);
    }
}

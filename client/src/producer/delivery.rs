//! How a record learns its fate: every record of a batch shares one
//! [`BatchCompletion`], and its [`DeliveryFuture`] turns the batch's answer into the
//! record's own offset (base offset plus its index) and timestamp.
//!
//! One small allocation per batch instead of a channel per record: at millions of
//! records per second a oneshot per record would cost more than the records. For the
//! same reason the batch's partition lives in the completion, not in each future: a
//! future costs one reference count, not two.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;

/// What the broker said about a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchAck {
    /// Offset of the first record; -1 when unknown (acks=0, or a duplicate too old for
    /// the broker to remember its offset).
    pub base_offset: i64,
    /// The broker's append time when the topic uses LogAppendTime, else -1.
    pub log_append_time: i64,
}

/// Where and when a record was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset; -1 when unknown (acks=0).
    pub offset: i64,
    /// The record's timestamp: its create time, or the broker's LogAppendTime.
    pub timestamp: i64,
}

#[derive(Debug, Default)]
struct State {
    result: Option<Result<BatchAck>>,
    wakers: Vec<Waker>,
}

/// The shared outcome of one batch.
#[derive(Debug)]
pub struct BatchCompletion {
    tp: TopicPartition,
    state: Mutex<State>,
}

impl BatchCompletion {
    /// An unsettled batch of `tp`.
    pub fn new(tp: TopicPartition) -> Self {
        BatchCompletion { tp, state: Mutex::default() }
    }

    /// Settles the batch and wakes every record waiting on it; a second call is ignored.
    pub fn complete(&self, result: Result<BatchAck>) {
        let wakers = {
            let mut state = self.state.lock().expect("lock");
            if state.result.is_some() {
                return;
            }
            state.result = Some(result);
            std::mem::take(&mut state.wakers)
        };
        for w in wakers {
            w.wake();
        }
    }

    /// Whether the batch is settled.
    pub fn is_complete(&self) -> bool {
        self.state.lock().expect("lock").result.is_some()
    }

    fn poll(&self, cx: &mut Context<'_>) -> Poll<Result<BatchAck>> {
        let mut state = self.state.lock().expect("lock");
        match &state.result {
            Some(result) => Poll::Ready(result.clone()),
            None => {
                if !state.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    state.wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }

    /// Waits until the batch is settled.
    pub async fn wait(self: &Arc<Self>) {
        std::future::poll_fn(|cx| self.poll(cx).map(drop)).await
    }
}

/// Owns a batch's completion: dropped before the batch is settled (the producer was
/// aborted, a request task was cancelled), it fails the batch's records with
/// [`ClientError::Closed`], so no `send` is ever left waiting in silence.
#[derive(Debug)]
pub struct CompletionGuard(Arc<BatchCompletion>);

impl CompletionGuard {
    /// The guard of a new batch of `tp`.
    pub fn new(tp: TopicPartition) -> Self {
        CompletionGuard(Arc::new(BatchCompletion::new(tp)))
    }

    /// The shared completion.
    pub fn completion(&self) -> &Arc<BatchCompletion> {
        &self.0
    }
}

impl Drop for CompletionGuard {
    fn drop(&mut self) {
        self.0.complete(Err(ClientError::Closed));
    }
}

/// Resolves to a record's [`RecordMetadata`] once its batch is acknowledged, or to the
/// error that failed it.
#[derive(Debug)]
#[must_use = "a delivery reports whether the record was written"]
pub struct DeliveryFuture {
    completion: Arc<BatchCompletion>,
    index: u32,
    timestamp: i64,
}

impl DeliveryFuture {
    pub(crate) fn new(completion: Arc<BatchCompletion>, index: u32, timestamp: i64) -> Self {
        DeliveryFuture { completion, index, timestamp }
    }

    /// The partition the record was placed in.
    pub fn partition(&self) -> i32 {
        self.completion.tp.partition
    }

    /// Whether `other` is a record of the same batch, and so settles at the same moment
    /// with the same outcome (a caller tracking many records polls one per batch).
    pub fn same_batch(&self, other: &DeliveryFuture) -> bool {
        Arc::ptr_eq(&self.completion, &other.completion)
    }

    /// A future already failed with `error` (for callers that want one type).
    pub fn failed(tp: TopicPartition, error: ClientError) -> Self {
        let completion = Arc::new(BatchCompletion::new(tp));
        completion.complete(Err(error));
        DeliveryFuture { completion, index: 0, timestamp: -1 }
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.completion.poll(cx).map(|result| {
            result.map(|ack| RecordMetadata {
                topic: this.completion.tp.topic.clone(),
                partition: this.completion.tp.partition,
                offset: if ack.base_offset < 0 {
                    -1
                } else {
                    ack.base_offset + i64::from(this.index)
                },
                timestamp: if ack.log_append_time >= 0 {
                    ack.log_append_time
                } else {
                    this.timestamp
                },
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_of_one_batch_share_its_outcome_and_know_it() {
        let tp = TopicPartition { topic: "t".into(), partition: 3 };
        let batch = Arc::new(BatchCompletion::new(tp.clone()));
        let first = DeliveryFuture::new(batch.clone(), 0, 10);
        let second = DeliveryFuture::new(batch.clone(), 1, 11);
        let other = DeliveryFuture::new(Arc::new(BatchCompletion::new(tp)), 0, 12);
        assert!(first.same_batch(&second) && !first.same_batch(&other));
        batch.complete(Ok(BatchAck { base_offset: 40, log_append_time: -1 }));
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let Poll::Ready(Ok(meta)) = Pin::new(&mut { second }).poll(&mut cx) else {
            panic!("settled")
        };
        assert_eq!((meta.partition, meta.offset, meta.timestamp), (3, 41, 11));
    }
}

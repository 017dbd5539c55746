//! The consumer as a [`Stream`] of records, for `while let Some(r) = stream.next().await`
//! and stream combinators.
//!
//! The stream owns the consumer while it runs (a poll in progress borrows it) and hands
//! it back with [`RecordStream::into_inner`], for commits, seeks and `close`.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;

use super::{Consumer, ConsumerRecord};
use crate::error::{ClientError, Result};

/// How long one poll of the stream waits before it polls again (records arrive as soon
/// as they are fetched either way; this only bounds one call).
const POLL_TIMEOUT: Duration = Duration::from_secs(1);

type Polling = Pin<Box<dyn Future<Output = (Consumer, Result<Vec<ConsumerRecord>>)> + Send>>;

enum State {
    Idle(Box<Consumer>),
    Polling(Polling),
    Taken,
}

/// Records as a stream; an error is yielded once and the stream goes on after it; the
/// stream ends when the consumer is closed.
pub struct RecordStream {
    state: State,
    buffered: VecDeque<ConsumerRecord>,
}

impl std::fmt::Debug for RecordStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordStream")
            .field("buffered", &self.buffered.len())
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// Turns the consumer into a stream of its records.
    pub fn into_stream(self) -> RecordStream {
        RecordStream { state: State::Idle(Box::new(self)), buffered: VecDeque::new() }
    }
}

impl RecordStream {
    /// The consumer back, with the records the stream fetched but did not yield yet
    /// (its position already counts them as returned; seek to the first to reread them).
    ///
    /// Waits for a poll in progress to finish.
    pub async fn into_inner(mut self) -> (Consumer, Vec<ConsumerRecord>) {
        let consumer = match std::mem::replace(&mut self.state, State::Taken) {
            State::Idle(c) => *c,
            State::Polling(f) => {
                let (c, result) = f.await;
                if let Ok(records) = result {
                    self.buffered.extend(records);
                }
                c
            }
            State::Taken => unreachable!("invariant: a stream holds its consumer until into_inner"),
        };
        (consumer, self.buffered.into_iter().collect())
    }
}

impl Stream for RecordStream {
    type Item = Result<ConsumerRecord>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(record) = this.buffered.pop_front() {
                return Poll::Ready(Some(Ok(record)));
            }
            match std::mem::replace(&mut this.state, State::Taken) {
                State::Idle(mut consumer) => {
                    this.state = State::Polling(Box::pin(async move {
                        let result = consumer.poll(POLL_TIMEOUT).await;
                        (*consumer, result)
                    }));
                }
                State::Polling(mut future) => match future.as_mut().poll(cx) {
                    Poll::Pending => {
                        this.state = State::Polling(future);
                        return Poll::Pending;
                    }
                    Poll::Ready((consumer, result)) => {
                        this.state = State::Idle(Box::new(consumer));
                        match result {
                            Ok(records) => this.buffered.extend(records),
                            Err(ClientError::Closed) => return Poll::Ready(None),
                            Err(e) => return Poll::Ready(Some(Err(e))),
                        }
                    }
                },
                State::Taken => return Poll::Ready(None),
            }
        }
    }
}

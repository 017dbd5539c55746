//! Routes a request frame to its handler: the one `match` on the API.
//!
//! A request is handled in two parts. [`start`] runs in request order: the connection
//! awaits it before it reads the next frame, so whatever changes state (an append, an
//! offset commit, a topic creation) happens in the order the client sent it. What is left
//! is a wait that may overlap with the next requests: a fetch's long poll, a produce
//! request's wait for its sync. That part comes back as [`Pending::Later`], which the
//! connection runs as its own task and answers in order.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use sluice_protocol::api_key::ApiKey;
use sluice_protocol::header::RequestHeader;
use sluice_protocol::messages::{DecodeError, Request, Response};
use tokio_util::sync::CancellationToken;

use crate::api::produce::Produced;
use crate::api::{self, Reply};
use crate::broker::Broker;
use crate::metrics::Metrics;
use crate::topics::Topics;

/// What the connection does after a request.
#[derive(Debug)]
pub enum Outcome {
    /// Write this reply.
    Reply(Reply),
    /// Write nothing (Produce with acks=0).
    NoReply,
    /// Close the connection, logging why: the frame could not be understood.
    Close(String),
}

/// A request after its in-order part.
pub enum Pending {
    /// The outcome is known.
    Ready(Outcome),
    /// The outcome waits for something that may take a while; run it concurrently with
    /// the next requests.
    Later(Pin<Box<dyn Future<Output = Outcome> + Send>>),
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pending::Ready(o) => f.debug_tuple("Ready").field(o).finish(),
            Pending::Later(_) => f.write_str("Later(..)"),
        }
    }
}

/// Runs the in-order part of one request frame.
pub async fn start(
    broker: &Arc<Broker>,
    peer: SocketAddr,
    frame: Bytes,
    shutdown: &CancellationToken,
) -> Pending {
    let (header, body) = match RequestHeader::decode(frame) {
        Ok(h) => h,
        Err(e) => return close(format!("unreadable request header: {e}")),
    };
    broker.metrics.request(header.api_key as i16, header.api_version);
    if header.api_key == ApiKey::ApiVersions {
        // Any version, even one this broker does not know: KIP-511's v0 fallback.
        return Pending::Ready(encoded(api::api_versions::handle(&header)));
    }
    let mut heavy = is_heavy(&header, &body);
    let decoded = if heavy {
        let header = header.clone();
        broker.heavy.run(move || Request::decode(&header, body)).await
    } else {
        Request::decode(&header, body)
    };
    let request = match decoded {
        Ok(r) => r,
        Err(e @ (DecodeError::UnsupportedVersion { .. } | DecodeError::UnsupportedApi { .. })) => {
            // No response layout exists for a version the broker does not know, so it
            // cannot answer in the request's version: Kafka closes the connection too.
            return close(format!("{e} (correlation id {})", header.correlation_id));
        }
        Err(e) => return close(format!("malformed request: {e}")),
    };
    let version = header.api_version;
    let response = match request {
        Request::Produce(r) => {
            // acks=0 gets no response to count from, so its partitions are counted here.
            let unanswered = (r.acks == 0).then(|| produce_partitions(&r));
            let started = api::produce::start(broker, r, version).await;
            let b = Arc::clone(broker);
            let answer = move |produced| match produced {
                Produced::Response(r) => {
                    count_produce_response(&b.topics, &b.metrics, &r);
                    encoded(Reply::message(&header, version, &Response::Produce(r)))
                }
                Produced::NoResponse => {
                    count_unanswered_produce(&b.topics, &b.metrics, unanswered, false);
                    Outcome::NoReply
                }
                Produced::Failed(reason) => {
                    count_unanswered_produce(&b.topics, &b.metrics, unanswered, true);
                    Outcome::Close(reason)
                }
            };
            if started.is_done() {
                return Pending::Ready(answer(started.finish().await));
            }
            return Pending::Later(Box::pin(async move { answer(started.finish().await) }));
        }
        Request::Fetch(r) => {
            let (broker, shutdown) = (Arc::clone(broker), shutdown.clone());
            // The response needs no client id, and the long poll must not keep this view
            // of the frame (see `api::fetch::handle`).
            let mut header = header;
            header.client_id = None;
            return Pending::Later(Box::pin(async move {
                Outcome::Reply(api::fetch::handle(&broker, &header, r, &shutdown).await)
            }));
        }
        Request::Metadata(r) => {
            blocking(broker, heavy, move |b| {
                Response::Metadata(api::metadata::handle(b, r, version))
            })
            .await
        }
        Request::SaslHandshake(r) => Response::SaslHandshake(api::sasl::handshake(r)),
        Request::SaslAuthenticate(r) => Response::SaslAuthenticate(api::sasl::authenticate(r)),
        Request::InitProducerId(r) if r.transactional_id.is_some() => Response::InitProducerId(
            api::init_producer_id::handle_transactional(broker, r, version).await,
        ),
        Request::InitProducerId(r) => {
            blocking(broker, heavy, move |b| {
                Response::InitProducerId(api::init_producer_id::handle(b, r))
            })
            .await
        }
        Request::ListOffsets(r) => {
            blocking(broker, heavy, move |b| {
                Response::ListOffsets(api::list_offsets::handle(b, r, version))
            })
            .await
        }
        Request::CreateTopics(r) => {
            blocking(broker, heavy, move |b| {
                Response::CreateTopics(api::create_topics::handle(b, r, version))
            })
            .await
        }
        Request::DeleteTopics(r) => {
            blocking(broker, heavy, move |b| {
                Response::DeleteTopics(api::delete_topics::handle(b, r, version))
            })
            .await
        }
        Request::CreatePartitions(r) => {
            blocking(broker, heavy, move |b| {
                Response::CreatePartitions(api::create_partitions::handle(b, r, version))
            })
            .await
        }
        Request::DeleteRecords(r) => {
            blocking(broker, heavy, move |b| {
                Response::DeleteRecords(api::delete_records::handle(b, r, version))
            })
            .await
        }
        Request::DescribeConfigs(r) => {
            blocking(broker, heavy, move |b| {
                Response::DescribeConfigs(api::describe_configs::handle(b, r, version))
            })
            .await
        }
        Request::AlterConfigs(r) => {
            blocking(broker, heavy, move |b| {
                Response::AlterConfigs(api::alter_configs::handle(b, r, version))
            })
            .await
        }
        Request::IncrementalAlterConfigs(r) => {
            blocking(broker, heavy, move |b| {
                let response = api::incremental_alter_configs::handle(b, r, version);
                Response::IncrementalAlterConfigs(response)
            })
            .await
        }
        Request::DescribeLogDirs(r) => {
            // Null topics: every partition of the broker, an answer as large as the broker.
            heavy |= r.topics.is_none();
            blocking(broker, heavy, move |b| {
                Response::DescribeLogDirs(api::describe_log_dirs::handle(b, r, version))
            })
            .await
        }
        Request::DescribeCluster(r) => {
            blocking(broker, heavy, move |b| {
                Response::DescribeCluster(api::describe_cluster::handle(b, r, version))
            })
            .await
        }
        Request::DescribeProducers(r) => {
            blocking(broker, heavy, move |b| {
                Response::DescribeProducers(api::describe_producers::handle(b, r))
            })
            .await
        }
        // Group requests that do not wait for a rebalance may hold 2^18 elements:
        // heavy ones are read, answered and encoded off the async workers.
        Request::FindCoordinator(r) => {
            return offloaded(broker, header, heavy, move |b| async move {
                Response::FindCoordinator(api::find_coordinator::handle(&b, r, version))
            })
            .await
        }
        Request::JoinGroup(r) => {
            Response::JoinGroup(api::join_group::handle(broker, &header, peer, r, version).await)
        }
        Request::SyncGroup(r) => {
            Response::SyncGroup(api::sync_group::handle(broker, r, version).await)
        }
        Request::Heartbeat(r) => Response::Heartbeat(api::heartbeat::handle(broker, r).await),
        Request::LeaveGroup(r) => {
            return offloaded(broker, header, heavy, move |b| async move {
                Response::LeaveGroup(api::leave_group::handle(&b, r, version).await)
            })
            .await
        }
        Request::OffsetCommit(r) => {
            return offloaded(broker, header, heavy, move |b| async move {
                Response::OffsetCommit(api::offset_commit::handle(&b, r, version).await)
            })
            .await
        }
        Request::OffsetFetch(r) => {
            return offloaded(broker, header, heavy, move |b| async move {
                Response::OffsetFetch(api::offset_fetch::handle(&b, r, version).await)
            })
            .await
        }
        Request::OffsetDelete(r) => {
            return offloaded(broker, header, heavy, move |b| async move {
                Response::OffsetDelete(api::offset_delete::handle(&b, r).await)
            })
            .await
        }
        Request::ListGroups(r) => {
            return offloaded(broker, header, heavy, move |b| async move {
                Response::ListGroups(api::list_groups::handle(&b, r, version).await)
            })
            .await
        }
        Request::DescribeGroups(r) => {
            return offloaded(broker, header, heavy, move |b| async move {
                Response::DescribeGroups(api::describe_groups::handle(&b, r, version).await)
            })
            .await
        }
        Request::DeleteGroups(r) => {
            return offloaded(broker, header, heavy, move |b| async move {
                Response::DeleteGroups(api::delete_groups::handle(&b, r).await)
            })
            .await
        }
        // Transaction requests wait for the coordinator's write (a sync in durable mode);
        // heavy ones (2^18 partitions) run off the async workers, as group requests do.
        Request::AddPartitionsToTxn(r) => {
            return offloaded(broker, header, heavy, move |b| async move {
                Response::AddPartitionsToTxn(
                    api::add_partitions_to_txn::handle(&b, r, version).await,
                )
            })
            .await
        }
        Request::AddOffsetsToTxn(r) => {
            Response::AddOffsetsToTxn(api::add_offsets_to_txn::handle(broker, r, version).await)
        }
        Request::EndTxn(r) => Response::EndTxn(api::end_txn::handle(broker, r, version).await),
        Request::TxnOffsetCommit(r) => {
            return offloaded(broker, header, heavy, move |b| async move {
                Response::TxnOffsetCommit(api::txn_offset_commit::handle(&b, r, version).await)
            })
            .await
        }
        Request::DescribeTransactions(r) => {
            return offloaded(broker, header, heavy, move |b| async move {
                Response::DescribeTransactions(api::describe_transactions::handle(&b, r).await)
            })
            .await
        }
        Request::ListTransactions(r) => {
            return offloaded(broker, header, heavy, move |b| async move {
                Response::ListTransactions(api::list_transactions::handle(&b, r, version).await)
            })
            .await
        }
        other => {
            return close(format!(
                "{:?} is not served yet (correlation id {})",
                other.api_key(),
                header.correlation_id
            ))
        }
    };
    if heavy {
        // A response to a request of many elements is large too, and so is freeing it.
        return Pending::Ready(
            broker.heavy.run(move || encoded(Reply::message(&header, version, &response))).await,
        );
    }
    Pending::Ready(encoded(Reply::message(&header, version, &response)))
}

/// Requests of at least this many array elements are decoded and their responses encoded
/// on the broker's low-priority threads ([`crate::heavy`]): a request near the decoder's
/// cap of 2^18 elements takes tens of milliseconds to decode, far past what an async
/// worker may block for, and the other connections on that worker would wait.
const HEAVY_ELEMENTS: u64 = 10_000;

/// Bodies of at least this many bytes are heavy too, whatever their elements (an 8 MB
/// config value is UTF-8 checked as it is decoded), except a produce request's: its
/// record sets are views, not decoded, and handing a 1 MiB produce to another thread cost
/// a quarter of the broker's CPU per request (see `api::produce`).
const HEAVY_BYTES: usize = 1 << 20;

/// Whether a request is heavy: [`HEAVY_ELEMENTS`] or more, or (produce aside)
/// [`HEAVY_BYTES`] or more. Smaller bodies cannot hold that many elements (each takes at
/// least a byte) and are not walked. Counting walks the body's shape a second time; for a
/// produce request that is a few fields, its record sets are skipped unread.
fn is_heavy(header: &RequestHeader, body: &Bytes) -> bool {
    if body.len() >= HEAVY_BYTES && header.api_key != ApiKey::Produce {
        return true;
    }
    body.len() as u64 >= HEAVY_ELEMENTS
        && sluice_protocol::messages::shape::request_elements(
            header.api_key,
            header.api_version,
            body,
        )
        .is_ok_and(|n| n >= HEAVY_ELEMENTS)
}

fn close(reason: String) -> Pending {
    Pending::Ready(Outcome::Close(reason))
}

fn encoded(r: Result<Reply, sluice_protocol::messages::EncodeError>) -> Outcome {
    match r {
        Ok(reply) => Outcome::Reply(reply),
        Err(e) => {
            tracing::error!(error = %e, "response did not encode: this is a broker bug");
            Outcome::Close(format!("response did not encode: {e}"))
        }
    }
}

/// Runs a group handler and encodes its response: inline for a small request; for a
/// `heavy` one (see [`is_heavy`]; its work is linear in its elements), on the broker's
/// pool of low-priority threads ([`crate::heavy`]). Only heavy requests go there because
/// the thread is held while the handler waits for the coordinator (a write, a sync in
/// durable mode). JoinGroup and SyncGroup, which wait for a rebalance, do not come here.
async fn offloaded<F, Fut>(
    broker: &Arc<Broker>,
    header: RequestHeader,
    heavy: bool,
    f: F,
) -> Pending
where
    F: FnOnce(Arc<Broker>) -> Fut + Send + 'static,
    Fut: Future<Output = Response> + Send,
{
    let b = Arc::clone(broker);
    let version = header.api_version;
    if !heavy {
        let response = f(b).await;
        return Pending::Ready(encoded(Reply::message(&header, version, &response)));
    }
    let runtime = tokio::runtime::Handle::current();
    let encode = move || {
        let response = runtime.block_on(f(b));
        encoded(Reply::message(&header, version, &response))
    };
    Pending::Ready(broker.heavy.run(encode).await)
}

/// Runs a handler that may touch the disk (topic creation, deletion) on a blocking thread,
/// or, for a `heavy` request, on the broker's low-priority threads.
async fn blocking<F>(broker: &Arc<Broker>, heavy: bool, f: F) -> Response
where
    F: FnOnce(&Broker) -> Response + Send + 'static,
{
    let b = Arc::clone(broker);
    if heavy {
        return broker.heavy.run(move || f(&b)).await;
    }
    crate::blocking::run("request handler", move || f(&b)).await
}

/// The partitions a produce request names, by topic: counted for acks=0 requests, which
/// get no response to count from.
fn produce_partitions(request: &ProduceRequest) -> Vec<(String, Vec<i32>)> {
    request
        .topic_data
        .iter()
        .map(|t| (t.name.0.to_string(), t.partition_data.iter().map(|p| p.index).collect()))
        .collect()
}

/// Counts a produce response's partitions on their topics' counters: one topic lookup
/// per topic of the request, none per record.
fn count_produce_response(topics: &Topics, metrics: &Metrics, response: &ProduceResponse) {
    for t in &response.responses {
        let topic = topics.get(t.name.0.as_str());
        for p in &t.partition_responses {
            let failed = p.error_code != 0;
            match topic.as_ref().and_then(|topic| topic.partition(p.index)) {
                Some(partition) => partition.counters().requests.produced(failed),
                None => metrics.unattributed.produced(failed),
            }
        }
    }
}

/// Counts an acks=0 request's partitions. Which partition failed is not known when one
/// did (the connection is closed instead), so the failure counts on all topics only.
fn count_unanswered_produce(
    topics: &Topics,
    metrics: &Metrics,
    partitions: Option<Vec<(String, Vec<i32>)>>,
    failed: bool,
) {
    for (name, indexes) in partitions.unwrap_or_default() {
        let topic = topics.get(&name);
        for index in indexes {
            match topic.as_ref().and_then(|topic| topic.partition(index)) {
                Some(partition) => partition.counters().requests.produced(false),
                None => metrics.unattributed.produced(false),
            }
        }
    }
    if failed {
        metrics.unattributed.failed_produce_requests.fetch_add(1, Ordering::Relaxed);
    }
}

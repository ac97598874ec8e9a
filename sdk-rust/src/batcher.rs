//! Enqueue coalescing: concurrent enqueues share `EnqueueBatch` calls.
//!
//! Invariant: every enqueue gets exactly the answer a single `Trigger` enqueue would have
//! given (its receipt, or its own typed error); batching changes the cost, not the result.
//!
//! A call leaves at once when fewer than [`MAX_IN_FLIGHT`] batches are on the wire; calls
//! that arrive meanwhile ride in the next batch (up to [`MAX_ITEMS`] items or about
//! [`MAX_BYTES`]). A lone producer therefore sees no added latency, and many concurrent
//! producers pay one round trip per batch instead of one per job.
//!
//! Payloads are encoded to `google.protobuf.Value` wire bytes once, when the call is made
//! ([`Item`]), and sent as is: the request is the contract's `EnqueueBatchRequest` on the
//! wire, declared here with the payload as opaque bytes (a message field and a bytes
//! field are encoded alike), so no prost `Value` tree is built, measured or dropped.

use crate::caller::EnqueueReceipt;
use crate::{Error, Reason};
use prost::Message;
use std::sync::Arc;
use switchyard_proto::v1::{EnqueueBatchResponse, enqueue_result};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tonic::transport::Channel;

/// `switchyard.v1.EnqueueItem` with its payload pre-encoded.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Item {
    #[prost(string, tag = "1")]
    pub function_id: String,
    /// A `google.protobuf.Value`'s wire bytes ([`crate::json::encode_value`]).
    #[prost(bytes = "vec", optional, tag = "2")]
    pub payload: Option<Vec<u8>>,
    #[prost(string, tag = "3")]
    pub queue: String,
}

impl Item {
    pub fn new(queue: String, function_id: String, payload: &serde_json::Value) -> Self {
        let mut bytes = Vec::with_capacity(crate::json::value_len(payload));
        crate::json::encode_value(payload, &mut bytes);
        Self { function_id, payload: Some(bytes), queue }
    }
}

/// `switchyard.v1.EnqueueBatchRequest` of pre-encoded items.
#[derive(Clone, PartialEq, prost::Message)]
struct Request {
    #[prost(message, repeated, tag = "1")]
    items: Vec<Item>,
}

/// Two, not more: on a busy machine fewer, larger batches cost the client and the engine
/// less per job (each call has a fixed HTTP/2 and task cost), while a second batch still
/// overlaps the first's round trip.
const MAX_IN_FLIGHT: usize = 2;
const MAX_ITEMS: usize = 1024;
const MAX_BYTES: usize = 1024 * 1024;

struct Pending {
    item: Item,
    reply: oneshot::Sender<Result<EnqueueReceipt, Error>>,
}

#[derive(Clone)]
pub(crate) struct Batcher {
    tx: mpsc::UnboundedSender<Pending>,
}

impl Batcher {
    pub fn new(channel: Channel) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(channel, rx));
        Self { tx }
    }

    pub async fn enqueue(&self, item: Item) -> Result<EnqueueReceipt, Error> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Pending { item, reply }).map_err(|_| Error::local(Reason::Unavailable, "client is shut down"))?;
        answer.await.unwrap_or_else(|_| Err(Error::local(Reason::Unavailable, "client is shut down")))
    }
}

async fn run(channel: Channel, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut carry: Option<Pending> = None;
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else { return };
        let first = match carry.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let mut bytes = first.item.encoded_len();
        let mut batch = vec![first];
        while batch.len() < MAX_ITEMS {
            let Ok(next) = rx.try_recv() else { break };
            bytes += next.item.encoded_len();
            if bytes > MAX_BYTES {
                carry = Some(next);
                break;
            }
            batch.push(next);
        }
        let client = tonic::client::Grpc::new(channel.clone());
        tokio::spawn(async move {
            send(client, batch).await;
            drop(permit);
        });
    }
}

/// `Engine.EnqueueBatch`, as the generated client calls it.
async fn enqueue_batch(
    client: &mut tonic::client::Grpc<Channel>,
    items: Vec<Item>,
) -> Result<tonic::Response<EnqueueBatchResponse>, tonic::Status> {
    client.ready().await.map_err(|e| tonic::Status::unknown(format!("Service was not ready: {e}")))?;
    let codec = tonic_prost::ProstCodec::<Request, EnqueueBatchResponse>::default();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/switchyard.v1.Engine/EnqueueBatch");
    let mut request = tonic::Request::new(Request { items });
    request.extensions_mut().insert(tonic::GrpcMethod::new("switchyard.v1.Engine", "EnqueueBatch"));
    client.unary(request, path, codec).await
}

async fn send(mut client: tonic::client::Grpc<Channel>, batch: Vec<Pending>) {
    let (items, replies): (Vec<_>, Vec<_>) = batch.into_iter().map(|p| (p.item, p.reply)).unzip();
    match enqueue_batch(&mut client, items).await {
        Ok(response) => {
            let mut results = response.into_inner().results.into_iter();
            for reply in replies {
                let answer = match results.next().and_then(|r| r.outcome) {
                    Some(enqueue_result::Outcome::Receipt(r)) => {
                        Ok(EnqueueReceipt { message_receipt_id: r.message_receipt_id })
                    }
                    Some(enqueue_result::Outcome::Error(status)) => Err(Error::from_rpc_status(status)),
                    None => Err(Error::local(Reason::Unavailable, "the engine answered fewer results than items")),
                };
                let _ = reply.send(answer);
            }
        }
        Err(status) => {
            let error = Error::from(status);
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

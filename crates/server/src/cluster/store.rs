//! What the cluster needs from a shared store, as two small traits: a [`Directory`] (which nodes
//! are alive, which node owns which room) and a [`Broker`] (one channel per node). Redis
//! implements both (`cluster::redis_store`); another engine would implement these two.

use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;

use super::envelope::NodeId;

/// Why the store did not answer.
#[derive(Debug, thiserror::Error)]
#[error("cluster store: {0}")]
pub struct StoreError(pub String);

/// A room as its owner writes it down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The room's name.
    pub room: String,
    /// Its snapshot (`None`: the room is gone).
    pub snapshot: Option<Vec<u8>>,
    /// Its entry in the public listing, JSON (`None`: not listed).
    pub listing: Option<String>,
    /// When the first change in this write happened (Unix milliseconds): a newly listed room's
    /// place in the listing.
    pub changed_ms: u64,
}

/// Now, in Unix milliseconds: the time base of what the store keeps.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A public room as the listing holds it: its name, its cursor, its entry (JSON).
pub type Listed = (String, u64, String);

/// Which nodes are alive (in the order asked), and the store's epoch.
pub type Liveness = (Vec<bool>, Option<u64>);

/// Node liveness and room ownership.
pub trait Directory: Send + Sync {
    /// Says `node` is alive for `ttl` more. Returns the store's epoch: a number drawn when the
    /// store is first used, drawn again when it has lost its memory (a restart), so a node can
    /// tell "that node's heartbeat is gone" from "the store forgot everything".
    fn heartbeat(&self, node: NodeId, ttl: Duration) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// The owner of `key` (a room or a match key): its owner if that node is alive, else `node`,
    /// which owns it from now on. Atomic: of two nodes claiming a free key, one wins.
    fn claim<'a>(&'a self, key: &'a str, node: NodeId)
        -> BoxFuture<'a, Result<NodeId, StoreError>>;

    /// Gives up the keys `node` owns among `keys` (a key another node took is left alone).
    fn release(&self, keys: Vec<String>, node: NodeId) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Remembers which room a resume token's peer is in, for `ttl`.
    fn remember_token(
        &self,
        token: u128,
        room: String,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// The room of a resume token's peer, if remembered.
    fn token_room(&self, token: u128) -> BoxFuture<'_, Result<Option<String>, StoreError>>;

    /// Forgets a resume token (used up by a resume).
    fn forget_token(&self, token: u128) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Gives each key (a room's, as `Key::store_key` writes it) to its new owner, where `from`
    /// still owns it (a hand-over).
    fn hand_over(
        &self,
        rooms: Vec<(String, NodeId)>,
        from: NodeId,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Says `node` is gone (its heartbeat deleted): its rooms may be taken at once.
    fn leave(&self, node: NodeId) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Which of `nodes` are alive, in the same order, and the store's epoch (see `heartbeat`).
    fn alive(&self, nodes: Vec<NodeId>) -> BoxFuture<'_, Result<Liveness, StoreError>>;

    /// Writes rooms down, or forgets them (kept for `ttl` at most), and lists or unlists them.
    fn save_rooms(
        &self,
        rooms: Vec<Written>,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Public rooms, newest first, listed before the cursor `before` if given: at most `count`
    /// of (room, cursor, listing as written).
    fn public_rooms(
        &self,
        before: Option<u64>,
        count: usize,
    ) -> BoxFuture<'_, Result<Vec<Listed>, StoreError>>;

    /// Takes rooms out of the listing (their owner is gone).
    fn unlist(&self, rooms: Vec<String>) -> BoxFuture<'_, Result<(), StoreError>>;

    /// A room as it was last written down.
    fn load_room(&self, room: String) -> BoxFuture<'_, Result<Option<Vec<u8>>, StoreError>>;

    /// The nodes alive now.
    fn nodes(&self) -> BoxFuture<'_, Result<Vec<NodeId>, StoreError>>;
}

/// One channel per node; what is published on a node's channel reaches that node, in order.
pub trait Broker: Send + Sync {
    /// Publishes each message on its node's channel, in the order given.
    fn publish(&self, messages: Vec<(NodeId, Vec<u8>)>) -> BoxFuture<'_, Result<(), StoreError>>;

    /// The messages of `node`'s channel, until the store's connection is lost (then the stream
    /// ends and the caller subscribes again).
    fn subscribe(
        &self,
        node: NodeId,
    ) -> BoxFuture<'_, Result<BoxStream<'static, Vec<u8>>, StoreError>>;
}

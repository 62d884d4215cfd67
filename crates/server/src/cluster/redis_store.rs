//! The cluster store on Redis (the `redis` crate, tokio, a `ConnectionManager` that reconnects
//! by itself). Keys, under the configured prefix `P`:
//!
//! * `P:epoch`: drawn when the store is first used (again after it lost its memory);
//! * `P:node:{id}`: a live node, with a TTL its heartbeat renews; `P:nodes`: the nodes by the
//!   time their heartbeat runs out (for counting them);
//! * `P:room:{name}`, `P:match:{players}:{key}`: the node owning a room or a match key, valid
//!   while that node is alive;
//! * `P:token:{token}`: the room of a resumable peer (for a resume on another node), with a TTL;
//! * `P:snap:{room}`: the room as its owner last wrote it down (for a takeover), with a TTL;
//! * `P:public` (sorted set, by when listed) and `P:public:rooms` (hash): the public listing;
//! * channel `P:to:{id}`: batches of records for node `id`.

use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Client, Script};

use super::envelope::NodeId;
use super::store::{unix_ms, Broker, Directory, Listed, Liveness, StoreError, Written};

/// Takes a key that is free or whose owner's heartbeat has expired; answers the owner.
const CLAIM: &str = r"
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] and redis.call('EXISTS', ARGV[2] .. owner) == 1 then
  return owner
end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
";

/// Deletes the keys still owned by ARGV[1].
const RELEASE: &str = r"
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 0
";

/// A heartbeat: the node's key with its TTL, its place in the set of nodes, and the store's
/// epoch (drawn from ARGV[4] when the store has none).
const HEARTBEAT: &str = r"
redis.call('SET', KEYS[1], 1, 'PX', ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[4]
  redis.call('SET', KEYS[3], epoch)
end
return tonumber(epoch)
";

/// Sets each KEYS[i] to ARGV[i + 1] where it is still ARGV[1].
const HAND_OVER: &str = r"
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('SET', key, ARGV[i + 1]) end
end
return 0
";

/// Redis as the cluster's directory and broker.
pub struct RedisStore {
    client: Client,
    commands: ConnectionManager,
    timeout: Duration,
    prefix: String,
    claim: Script,
    release: Script,
    hand_over: Script,
    heartbeat: Script,
}

/// `work`, failed when it takes longer than `timeout` (a command waiting for a reconnect).
async fn within<T>(
    timeout: Duration,
    work: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| Err(StoreError("timed out".into())))
}

fn store_error(error: redis::RedisError) -> StoreError {
    StoreError(error.to_string())
}

/// A node id as it appears in keys and channels.
fn hex(node: NodeId) -> String {
    format!("{node:016x}")
}

fn parse_node(text: &str) -> Result<NodeId, StoreError> {
    u64::from_str_radix(text, 16).map_err(|_| StoreError(format!("not a node id: {text:?}")))
}

impl RedisStore {
    /// Connects to `url` (`redis://host:port/db`); keys and channels start with `prefix`;
    /// every command and connection attempt fails after `timeout`.
    pub async fn connect(url: &str, prefix: &str, timeout: Duration) -> Result<Self, StoreError> {
        let client = Client::open(url).map_err(store_error)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(timeout))
            .set_connection_timeout(Some(timeout))
            .set_max_delay(timeout);
        let commands = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(store_error)?;
        Ok(Self {
            client,
            commands,
            timeout,
            prefix: prefix.to_owned(),
            claim: Script::new(CLAIM),
            release: Script::new(RELEASE),
            hand_over: Script::new(HAND_OVER),
            heartbeat: Script::new(HEARTBEAT),
        })
    }

    fn node_key(&self, node: NodeId) -> String {
        format!("{}:node:{}", self.prefix, hex(node))
    }

    fn room_key(&self, key: &str) -> String {
        format!("{}:{key}", self.prefix)
    }

    fn token_key(&self, token: u128) -> String {
        format!("{}:token:{token:032x}", self.prefix)
    }

    /// Runs `pipeline` on `commands` (its replies ignored) within the deadline.
    fn run(
        &self,
        mut commands: ConnectionManager,
        pipeline: redis::Pipeline,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        within(self.timeout, async move {
            pipeline
                .query_async::<()>(&mut commands)
                .await
                .map_err(store_error)
        })
        .boxed()
    }

    /// The listing's order (a sorted set) and entries (a hash).
    fn listing_keys(&self) -> (String, String) {
        (
            format!("{}:public", self.prefix),
            format!("{}:public:rooms", self.prefix),
        )
    }

    fn channel(&self, node: NodeId) -> String {
        format!("{}:to:{}", self.prefix, hex(node))
    }
}

impl Directory for RedisStore {
    fn heartbeat(&self, node: NodeId, ttl: Duration) -> BoxFuture<'_, Result<u64, StoreError>> {
        let mut commands = self.commands.clone();
        let (key, set) = (self.node_key(node), format!("{}:nodes", self.prefix));
        let epoch_key = format!("{}:epoch", self.prefix);
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let fresh_epoch = rand::random::<u32>();
        let timeout = self.timeout;
        within(timeout, async move {
            self.heartbeat
                .key(key)
                .key(set)
                .key(epoch_key)
                .arg(ttl_ms)
                .arg(hex(node))
                .arg(unix_ms().saturating_add(ttl_ms))
                .arg(fresh_epoch)
                .invoke_async::<u64>(&mut commands)
                .await
                .map_err(store_error)
        })
        .boxed()
    }

    fn claim<'a>(
        &'a self,
        key: &'a str,
        node: NodeId,
    ) -> BoxFuture<'a, Result<NodeId, StoreError>> {
        let mut commands = self.commands.clone();
        let room_key = self.room_key(key);
        let node_prefix = format!("{}:node:", self.prefix);
        let timeout = self.timeout;
        within(timeout, async move {
            let owner: String = self
                .claim
                .key(room_key)
                .arg(hex(node))
                .arg(node_prefix)
                .invoke_async(&mut commands)
                .await
                .map_err(store_error)?;
            parse_node(&owner)
        })
        .boxed()
    }

    fn release(&self, keys: Vec<String>, node: NodeId) -> BoxFuture<'_, Result<(), StoreError>> {
        let mut commands = self.commands.clone();
        let timeout = self.timeout;
        within(timeout, async move {
            if keys.is_empty() {
                return Ok(());
            }
            let mut invocation = self.release.prepare_invoke();
            for key in &keys {
                invocation.key(self.room_key(key));
            }
            invocation
                .arg(hex(node))
                .invoke_async::<()>(&mut commands)
                .await
                .map_err(store_error)
        })
        .boxed()
    }

    fn remember_token(
        &self,
        token: u128,
        room: String,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        let mut commands = self.commands.clone();
        let key = self.token_key(token);
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let timeout = self.timeout;
        within(timeout, async move {
            commands
                .pset_ex::<_, _, ()>(key, room, ttl_ms)
                .await
                .map_err(store_error)
        })
        .boxed()
    }

    fn token_room(&self, token: u128) -> BoxFuture<'_, Result<Option<String>, StoreError>> {
        let mut commands = self.commands.clone();
        let key = self.token_key(token);
        let timeout = self.timeout;
        within(timeout, async move {
            commands.get(key).await.map_err(store_error)
        })
        .boxed()
    }

    fn forget_token(&self, token: u128) -> BoxFuture<'_, Result<(), StoreError>> {
        let mut commands = self.commands.clone();
        let key = self.token_key(token);
        let timeout = self.timeout;
        within(timeout, async move {
            commands.del::<_, ()>(key).await.map_err(store_error)
        })
        .boxed()
    }

    fn hand_over(
        &self,
        rooms: Vec<(String, NodeId)>,
        from: NodeId,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        let mut commands = self.commands.clone();
        let timeout = self.timeout;
        within(timeout, async move {
            if rooms.is_empty() {
                return Ok(());
            }
            let mut invocation = self.hand_over.prepare_invoke();
            invocation.arg(hex(from));
            for (room, to) in &rooms {
                invocation.key(self.room_key(room)).arg(hex(*to));
            }
            invocation
                .invoke_async::<()>(&mut commands)
                .await
                .map_err(store_error)
        })
        .boxed()
    }

    fn leave(&self, node: NodeId) -> BoxFuture<'_, Result<(), StoreError>> {
        let mut commands = self.commands.clone();
        let (key, set) = (self.node_key(node), format!("{}:nodes", self.prefix));
        let timeout = self.timeout;
        within(timeout, async move {
            redis::pipe()
                .del(key)
                .ignore()
                .zrem(set, hex(node))
                .ignore()
                .query_async::<()>(&mut commands)
                .await
                .map_err(store_error)
        })
        .boxed()
    }

    fn alive(&self, nodes: Vec<NodeId>) -> BoxFuture<'_, Result<Liveness, StoreError>> {
        let mut commands = self.commands.clone();
        let mut pipeline = redis::pipe();
        pipeline.get(format!("{}:epoch", self.prefix));
        for node in &nodes {
            pipeline.exists(self.node_key(*node));
        }
        let timeout = self.timeout;
        within(timeout, async move {
            let (epoch, alive): (Option<u64>, Vec<bool>) = pipeline
                .query_async::<Vec<redis::Value>>(&mut commands)
                .await
                .map_err(store_error)
                .and_then(|values| {
                    let mut values = values.into_iter();
                    let epoch = values
                        .next()
                        .map(redis::from_redis_value::<Option<u64>>)
                        .transpose()
                        .map_err(|e| StoreError(e.to_string()))?
                        .flatten();
                    let alive = values
                        .map(redis::from_redis_value::<bool>)
                        .collect::<Result<_, _>>()
                        .map_err(|e| StoreError(e.to_string()))?;
                    Ok((epoch, alive))
                })?;
            Ok((alive, epoch))
        })
        .boxed()
    }

    fn save_rooms(
        &self,
        rooms: Vec<Written>,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        let commands = self.commands.clone();
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let (order, listings) = self.listing_keys();
        let mut pipeline = redis::pipe();
        for written in rooms {
            let key = format!("{}:snap:{}", self.prefix, written.room);
            match written.snapshot {
                Some(bytes) => pipeline.pset_ex(key, bytes, ttl_ms).ignore(),
                None => pipeline.del(key).ignore(),
            };
            match written.listing {
                Some(json) => {
                    // The first listing sets the room's place: newest first, by when the change
                    // that listed it happened (milliseconds, with random low digits so two
                    // rooms rarely tie), not by when its batch was written.
                    let place = written.changed_ms.saturating_mul(1000)
                        + u64::from(rand::random::<u16>() % 1000);
                    pipeline
                        .zadd_options(
                            &order,
                            &written.room,
                            place,
                            &redis::SortedSetAddOptions::add_only(),
                        )
                        .ignore()
                        .hset(&listings, &written.room, json)
                        .ignore()
                }
                None => pipeline
                    .zrem(&order, &written.room)
                    .ignore()
                    .hdel(&listings, &written.room)
                    .ignore(),
            };
        }
        self.run(commands, pipeline)
    }

    fn public_rooms(
        &self,
        before: Option<u64>,
        count: usize,
    ) -> BoxFuture<'_, Result<Vec<Listed>, StoreError>> {
        let mut commands = self.commands.clone();
        let (order, listings) = self.listing_keys();
        let max = before.map_or("+inf".to_owned(), |b| format!("({b}"));
        let timeout = self.timeout;
        within(timeout, async move {
            let placed: Vec<(String, u64)> = redis::cmd("ZREVRANGEBYSCORE")
                .arg(&order)
                .arg(max)
                .arg("-inf")
                .arg("WITHSCORES")
                .arg("LIMIT")
                .arg(0)
                .arg(count)
                .query_async(&mut commands)
                .await
                .map_err(store_error)?;
            if placed.is_empty() {
                return Ok(Vec::new());
            }
            let names: Vec<&String> = placed.iter().map(|(room, _)| room).collect();
            let found: Vec<Option<String>> = redis::cmd("HMGET")
                .arg(&listings)
                .arg(names)
                .query_async(&mut commands)
                .await
                .map_err(store_error)?;
            Ok(placed
                .into_iter()
                .zip(found)
                .filter_map(|((room, place), json)| json.map(|json| (room, place, json)))
                .collect())
        })
        .boxed()
    }

    fn unlist(&self, rooms: Vec<String>) -> BoxFuture<'_, Result<(), StoreError>> {
        let mut commands = self.commands.clone();
        let (order, listings) = self.listing_keys();
        let timeout = self.timeout;
        within(timeout, async move {
            if rooms.is_empty() {
                return Ok(());
            }
            redis::pipe()
                .zrem(&order, &rooms)
                .ignore()
                .hdel(&listings, &rooms)
                .ignore()
                .query_async::<()>(&mut commands)
                .await
                .map_err(store_error)
        })
        .boxed()
    }

    fn load_room(&self, room: String) -> BoxFuture<'_, Result<Option<Vec<u8>>, StoreError>> {
        let mut commands = self.commands.clone();
        let key = format!("{}:snap:{room}", self.prefix);
        let timeout = self.timeout;
        within(timeout, async move {
            commands.get(key).await.map_err(store_error)
        })
        .boxed()
    }

    fn nodes(&self) -> BoxFuture<'_, Result<Vec<NodeId>, StoreError>> {
        let mut commands = self.commands.clone();
        let set = format!("{}:nodes", self.prefix);
        let now = unix_ms();
        let timeout = self.timeout;
        within(timeout, async move {
            let (_, ids): ((), Vec<String>) = redis::pipe()
                .zrembyscore(&set, "-inf", now)
                .zrangebyscore(&set, now, "+inf")
                .query_async(&mut commands)
                .await
                .map_err(store_error)?;
            ids.iter().map(|id| parse_node(id)).collect()
        })
        .boxed()
    }
}

/// Milliseconds since the Unix epoch by this node's clock (the nodes' clocks are assumed to
/// agree within a heartbeat; only the count of nodes seen depends on it).
impl Broker for RedisStore {
    fn publish(&self, messages: Vec<(NodeId, Vec<u8>)>) -> BoxFuture<'_, Result<(), StoreError>> {
        let commands = self.commands.clone();
        let mut pipeline = redis::pipe();
        for (node, bytes) in messages {
            pipeline.publish(self.channel(node), bytes).ignore();
        }
        self.run(commands, pipeline)
    }

    fn subscribe(
        &self,
        node: NodeId,
    ) -> BoxFuture<'_, Result<BoxStream<'static, Vec<u8>>, StoreError>> {
        let channel = self.channel(node);
        let timeout = self.timeout;
        within(timeout, async move {
            let connect = async {
                let mut pubsub = self.client.get_async_pubsub().await?;
                pubsub.subscribe(channel).await?;
                Ok::<_, redis::RedisError>(pubsub)
            };
            let pubsub = tokio::time::timeout(self.timeout, connect)
                .await
                .map_err(|_| StoreError("timed out subscribing".into()))?
                .map_err(store_error)?;
            let messages = pubsub
                .into_on_message()
                .map(|message| message.get_payload_bytes().to_vec());
            Ok(messages.boxed())
        })
        .boxed()
    }
}

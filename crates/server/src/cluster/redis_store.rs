//! The cluster store on Redis (the `redis` crate, tokio, a `ConnectionManager` that reconnects
//! by itself). Keys, under the configured prefix `P`:
//!
//! * `P:node:{id}`: a live node, with a TTL its heartbeat renews;
//! * `P:room:{name}`, `P:match:{players}:{key}`: the node owning a room or a match key, valid
//!   while that node is alive;
//! * `P:token:{token}`: the room of a resumable peer (for a resume on another node), with a TTL;
//! * channel `P:to:{id}`: batches of records for node `id`.

use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Client, Script};

use super::envelope::NodeId;
use super::store::{Broker, Directory, StoreError};

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

/// Redis as the cluster's directory and broker.
pub struct RedisStore {
    client: Client,
    commands: ConnectionManager,
    prefix: String,
    claim: Script,
    release: Script,
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
    /// Connects to `url` (`redis://host:port/db`); keys and channels start with `prefix`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let client = Client::open(url).map_err(store_error)?;
        let commands = ConnectionManager::new(client.clone())
            .await
            .map_err(store_error)?;
        Ok(Self {
            client,
            commands,
            prefix: prefix.to_owned(),
            claim: Script::new(CLAIM),
            release: Script::new(RELEASE),
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

    fn channel(&self, node: NodeId) -> String {
        format!("{}:to:{}", self.prefix, hex(node))
    }
}

impl Directory for RedisStore {
    fn heartbeat(&self, node: NodeId, ttl: Duration) -> BoxFuture<'_, Result<(), StoreError>> {
        let mut commands = self.commands.clone();
        let key = self.node_key(node);
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        async move {
            commands
                .pset_ex::<_, _, ()>(key, 1, ttl_ms)
                .await
                .map_err(store_error)
        }
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
        async move {
            let owner: String = self
                .claim
                .key(room_key)
                .arg(hex(node))
                .arg(node_prefix)
                .invoke_async(&mut commands)
                .await
                .map_err(store_error)?;
            parse_node(&owner)
        }
        .boxed()
    }

    fn release(&self, keys: Vec<String>, node: NodeId) -> BoxFuture<'_, Result<(), StoreError>> {
        let mut commands = self.commands.clone();
        async move {
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
        }
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
        async move {
            commands
                .pset_ex::<_, _, ()>(key, room, ttl_ms)
                .await
                .map_err(store_error)
        }
        .boxed()
    }

    fn token_room(&self, token: u128) -> BoxFuture<'_, Result<Option<String>, StoreError>> {
        let mut commands = self.commands.clone();
        let key = self.token_key(token);
        async move { commands.get(key).await.map_err(store_error) }.boxed()
    }

    fn forget_token(&self, token: u128) -> BoxFuture<'_, Result<(), StoreError>> {
        let mut commands = self.commands.clone();
        let key = self.token_key(token);
        async move { commands.del::<_, ()>(key).await.map_err(store_error) }.boxed()
    }

    fn nodes(&self) -> BoxFuture<'_, Result<Vec<NodeId>, StoreError>> {
        let mut commands = self.commands.clone();
        let pattern = format!("{}:node:*", self.prefix);
        let skip = pattern.len() - 1;
        async move {
            let mut keys: redis::AsyncIter<String> =
                commands.scan_match(&pattern).await.map_err(store_error)?;
            let mut nodes = Vec::new();
            while let Some(key) = keys.next_item().await {
                let key = key.map_err(store_error)?;
                nodes.extend(key.get(skip..).and_then(|id| parse_node(id).ok()));
            }
            Ok(nodes)
        }
        .boxed()
    }
}

impl Broker for RedisStore {
    fn publish(&self, messages: Vec<(NodeId, Vec<u8>)>) -> BoxFuture<'_, Result<(), StoreError>> {
        let mut commands = self.commands.clone();
        let mut pipeline = redis::pipe();
        for (node, bytes) in messages {
            pipeline.publish(self.channel(node), bytes).ignore();
        }
        async move {
            pipeline
                .query_async::<()>(&mut commands)
                .await
                .map_err(store_error)
        }
        .boxed()
    }

    fn subscribe(
        &self,
        node: NodeId,
    ) -> BoxFuture<'_, Result<BoxStream<'static, Vec<u8>>, StoreError>> {
        let channel = self.channel(node);
        async move {
            let mut pubsub = self.client.get_async_pubsub().await.map_err(store_error)?;
            pubsub.subscribe(channel).await.map_err(store_error)?;
            let messages = pubsub
                .into_on_message()
                .map(|message| message.get_payload_bytes().to_vec());
            Ok(messages.boxed())
        }
        .boxed()
    }
}

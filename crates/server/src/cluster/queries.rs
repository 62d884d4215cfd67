//! What a node answers about the whole cluster: the public listing, a PeerJS key's ids, and the
//! admin API's calls carried to the other nodes.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use super::envelope::{self, AdminAction, AdminAnswer, NodeId, Record};
use super::store::StoreError;
use super::Cluster;

impl Cluster {
    /// The cluster's public rooms, newest first (`open_only`: not full, not started), at most
    /// `limit`, listed before the cursor `before`; and the cursor of the next page. Entries of
    /// rooms whose owner is gone are dropped from the listing as they are met.
    pub(crate) async fn public_rooms(
        &self,
        open_only: bool,
        limit: usize,
        before: Option<u64>,
    ) -> Result<(Vec<serde_json::Value>, Option<u64>), StoreError> {
        const MOST_PAGES: usize = 8;
        let mut rooms = Vec::new();
        let mut cursor = before;
        let mut last = None;
        for _ in 0..MOST_PAGES {
            let page = self.directory.public_rooms(cursor, limit + 1).await?;
            let exhausted = page.len() <= limit;
            let entries: Vec<(String, u64, serde_json::Value)> = page
                .into_iter()
                .filter_map(|(room, place, json)| {
                    serde_json::from_str(&json).ok().map(|v| (room, place, v))
                })
                .collect();
            let nodes: Vec<NodeId> = entries
                .iter()
                .filter_map(|(_, _, v)| v["node"].as_str())
                .filter_map(|hex| u64::from_str_radix(hex, 16).ok())
                .collect::<std::collections::HashSet<_>>()
                .into_iter()
                .collect();
            let (alive, _) = self.directory.alive(nodes.clone()).await?;
            let dead: std::collections::HashSet<String> = nodes
                .iter()
                .zip(alive)
                .filter(|(_, alive)| !alive)
                .map(|(node, _)| format!("{node:016x}"))
                .collect();
            let mut gone = Vec::new();
            for (room, place, entry) in entries {
                cursor = Some(place);
                if entry["node"].as_str().is_some_and(|n| dead.contains(n)) {
                    gone.push(room);
                    continue;
                }
                let info = &entry["info"];
                let players = entry["players"].as_u64().unwrap_or(0);
                let full = info["capacity"].as_u64().is_some_and(|c| players >= c);
                let started = info["started"].as_bool().unwrap_or(false);
                if open_only && (full || started) {
                    continue;
                }
                if rooms.len() == limit {
                    break;
                }
                rooms.push(serde_json::json!({ "room": room, "players": players, "info": info }));
                last = Some(place);
            }
            if !gone.is_empty() && self.directory.unlist(gone).await.is_err() {
                self.metrics.redis_error("unlist");
            }
            if rooms.len() == limit || exhausted {
                break;
            }
        }
        let next = if rooms.len() == limit { last } else { None };
        Ok((rooms, next))
    }

    /// The user names in `room` as its owner last wrote it down (a PeerJS key's ids).
    pub(crate) async fn names_in(&self, room: &str) -> Vec<String> {
        let stored = match self.directory.load_room(room.to_owned()).await {
            Ok(Some(bytes)) => rmp_serde::from_slice::<envelope::StoredRoom>(&bytes).ok(),
            Ok(None) => None,
            Err(_) => {
                self.metrics.redis_error("load");
                None
            }
        };
        stored
            .map(|stored| {
                stored
                    .room
                    .members
                    .into_iter()
                    .filter_map(|m| m.name)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Carries an admin call to every other node; their answers (those that came within
    /// `forward_timeout_ms`).
    pub(crate) async fn admin(&self, action: AdminAction) -> Vec<AdminAnswer> {
        let others: Vec<NodeId> = match self.directory.nodes().await {
            Ok(nodes) => nodes.into_iter().filter(|n| *n != self.node).collect(),
            Err(_) => return Vec::new(),
        };
        if others.is_empty() {
            return Vec::new();
        }
        let ask = self.next_ask.fetch_add(1, Ordering::Relaxed);
        let (tell, mut told) = tokio::sync::mpsc::unbounded_channel();
        self.admin_asks_lock().insert(ask, tell);
        for node in &others {
            let action = action.clone();
            self.out.push(*node, Record::Admin { ask, action });
        }
        let mut answers = Vec::new();
        let deadline = tokio::time::Instant::now() + self.config.forward_timeout();
        while answers.len() < others.len() {
            match tokio::time::timeout_at(deadline, told.recv()).await {
                Ok(Some(answer)) => {
                    // A peer or room is on one node: the first that has it is the answer.
                    let done = answer == AdminAnswer::Done(true);
                    answers.push(answer);
                    if done {
                        break;
                    }
                }
                _ => break,
            }
        }
        self.admin_asks_lock().remove(&ask);
        answers
    }

    /// Another node answered an admin call.
    pub(crate) fn admin_answered(&self, ask: u64, answer: AdminAnswer) {
        if let Some(tell) = self.admin_asks_lock().get(&ask) {
            let _ = tell.send(answer);
        }
    }

    fn admin_asks_lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u64, tokio::sync::mpsc::UnboundedSender<AdminAnswer>>>
    {
        self.admin_asks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

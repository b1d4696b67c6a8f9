//! Redis Streams through the `redis` crate: one stream per group and one
//! consumer group per mailbox. A send is one XADD; a recipient reads with
//! XREADGROUP and acknowledges with XACK, then XDEL for a 1:1 stream. A
//! circle message is one XADD to the circle's stream, which its members'
//! 30 consumer groups each read; its entries are only XACKed (Redis 7.0
//! cannot delete an entry once every group acknowledged it; a real
//! deployment would trim the stream separately, which is not measured).
//!
//! The append-only file is switched on for the run (`CONFIG SET`), with
//! `appendfsync always` or `everysec`, and the previous settings are put
//! back afterwards, also after an error. The server is the shared local
//! one ([`local`]) or a private TLS instance ([`tls`]).

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::streams::StreamReadReply;
use redis::{AsyncCommands as _, Value};

use super::peer::{Durability, Peer, PeerReceiver, PeerSender, Topology};

/// Where the local server listens.
const URL: &str = "redis://127.0.0.1:6379/";
/// Most entries one XREADGROUP returns.
const BATCH: usize = 64;
/// How long one XREADGROUP blocks, in milliseconds.
const BLOCK_MS: usize = 1000;

/// The AOF fsync policy a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fsync {
    /// `appendfsync always`: fsync before replying.
    Always,
    /// `appendfsync everysec`: Redis's default policy once the AOF is on.
    EverySec,
}

impl Fsync {
    fn setting(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::EverySec => "everysec",
        }
    }

    /// What an acknowledged XADD means under this policy.
    pub(crate) fn durability(self) -> Durability {
        match self {
            Self::Always => Durability {
                fsynced_before_ack: true,
                note: "AOF with appendfsync always: fsync before replying \
                       (one fsync per event-loop pass, shared by the clients in it)"
                    .into(),
            },
            Self::EverySec => Durability {
                fsynced_before_ack: false,
                note: "AOF with appendfsync everysec (Redis's default policy): \
                       up to about 1 s of acknowledged writes lost on a crash"
                    .into(),
            },
        }
    }
}

/// The shared local server (plaintext TCP).
pub(crate) fn local() -> anyhow::Result<redis::Client> {
    redis::Client::open(URL).context("the Redis URL")
}

/// A private server's `tls-port` on 127.0.0.1, trusting only `root_pem`.
pub(crate) fn tls(port: u16, root_pem: &str) -> anyhow::Result<redis::Client> {
    super::tls::install_provider();
    redis::Client::build_with_tls(
        format!("rediss://{}:{port}/", super::tls::HOST),
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(root_pem.as_bytes().to_vec()),
        },
    )
    .context("configuring the Redis TLS client")
}

/// A Redis server, with the AOF on for the run.
#[derive(Debug)]
pub(crate) struct RedisPeer {
    fsync: Fsync,
    client: redis::Client,
    prefix: String,
    state: Mutex<Option<Prepared>>,
}

/// What `prepare` changed and made.
#[derive(Clone, Debug)]
struct Prepared {
    topology: Topology,
    client: redis::Client,
    /// `appendonly` and `appendfsync` before the run.
    previous: (String, String),
}

impl RedisPeer {
    /// A peer on `client`'s server whose keys are unique to this run.
    pub(crate) fn new(fsync: Fsync, client: redis::Client) -> Self {
        Self {
            fsync,
            client,
            prefix: format!("hearth_bench:{}", rand::random::<u32>()),
            state: Mutex::new(None),
        }
    }

    /// Whether the server answers and lets us change its AOF settings.
    pub(crate) async fn reachable(client: &redis::Client) -> anyhow::Result<()> {
        let mut connection = connect(client).await?;
        config_get(&mut connection, "appendfsync")
            .await
            .context("CONFIG GET is refused")?;
        Ok(())
    }

    fn key(&self, group: usize) -> String {
        format!("{}:{group}", self.prefix)
    }

    fn prepared(&self) -> anyhow::Result<Prepared> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .context("prepare was not called")
    }
}

/// A new connection of its own.
async fn connect(client: &redis::Client) -> anyhow::Result<MultiplexedConnection> {
    tokio::time::timeout(
        Duration::from_secs(10),
        client.get_multiplexed_async_connection(),
    )
    .await
    .context("the Redis server did not answer")?
    .context("connecting to Redis")
}

/// The value of one setting.
async fn config_get(connection: &mut MultiplexedConnection, name: &str) -> anyhow::Result<String> {
    let pair: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query_async(connection)
        .await?;
    pair.into_iter().nth(1).context("no such setting")
}

/// Sets `appendonly` and `appendfsync`, then waits for the AOF rewrite
/// that switching it on starts.
async fn set_aof(
    connection: &mut MultiplexedConnection,
    appendonly: &str,
    appendfsync: &str,
) -> anyhow::Result<()> {
    for (name, value) in [("appendfsync", appendfsync), ("appendonly", appendonly)] {
        let () = redis::cmd("CONFIG")
            .arg("SET")
            .arg(name)
            .arg(value)
            .query_async(connection)
            .await
            .with_context(|| format!("CONFIG SET {name} {value} was refused"))?;
    }
    for _ in 0..600 {
        let info: String = redis::cmd("INFO")
            .arg("persistence")
            .query_async(connection)
            .await?;
        if !info.contains("aof_rewrite_in_progress:1") && !info.contains("aof_rewrite_scheduled:1")
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the AOF rewrite did not finish within 60 s")
}

impl Peer for RedisPeer {
    type Sender = RedisSender;
    type Receiver = RedisReceiver;

    async fn prepare(&self, topology: Topology) -> anyhow::Result<()> {
        let client = self.client.clone();
        let mut connection = connect(&client).await?;
        let previous = (
            config_get(&mut connection, "appendonly").await?,
            config_get(&mut connection, "appendfsync").await?,
        );
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = Some(Prepared {
            topology,
            client,
            previous,
        });
        // From here on, cleanup restores the settings.
        set_aof(&mut connection, "yes", self.fsync.setting()).await?;
        for mailbox in 0..topology.mailboxes() {
            let () = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(self.key(topology.group_of(mailbox)))
                .arg(format!("m{mailbox}"))
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut connection)
                .await
                .context("creating a consumer group")?;
        }
        Ok(())
    }

    async fn connect_receiver(&self, mailbox: usize) -> anyhow::Result<RedisReceiver> {
        let prepared = self.prepared()?;
        Ok(RedisReceiver {
            connection: connect(&prepared.client).await?,
            key: self.key(prepared.topology.group_of(mailbox)),
            group: format!("m{mailbox}"),
            delete: prepared.topology.fanout == 1,
            unacked: Vec::new(),
        })
    }

    async fn connect_sender(&self, group: usize) -> anyhow::Result<RedisSender> {
        let prepared = self.prepared()?;
        Ok(RedisSender {
            connection: connect(&prepared.client).await?,
            key: self.key(group),
        })
    }

    async fn cleanup(&self) -> anyhow::Result<()> {
        let Some(prepared) = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return Ok(());
        };
        let mut connection = connect(&prepared.client).await?;
        let (appendonly, appendfsync) = &prepared.previous;
        let restored = set_aof(&mut connection, appendonly, appendfsync).await;
        for group in 0..prepared.topology.groups {
            let _: i64 = connection.del(self.key(group)).await?;
        }
        restored.context("restoring the AOF settings")
    }
}

/// A connection that XADDs to its group's stream.
pub(crate) struct RedisSender {
    connection: MultiplexedConnection,
    key: String,
}

impl std::fmt::Debug for RedisSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSender").finish_non_exhaustive()
    }
}

impl PeerSender for RedisSender {
    async fn send(&self, _id: u64, body: Bytes) -> anyhow::Result<()> {
        let _id: String = redis::cmd("XADD")
            .arg(&self.key)
            .arg("*")
            .arg("b")
            .arg(body.as_ref())
            .query_async(&mut self.connection.clone())
            .await?;
        Ok(())
    }
}

/// A mailbox's consumer group on its own connection.
pub(crate) struct RedisReceiver {
    connection: MultiplexedConnection,
    key: String,
    group: String,
    delete: bool,
    unacked: Vec<String>,
}

impl std::fmt::Debug for RedisReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisReceiver").finish_non_exhaustive()
    }
}

impl PeerReceiver for RedisReceiver {
    async fn receive(&mut self) -> anyhow::Result<Option<Vec<Bytes>>> {
        loop {
            let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(&self.group)
                .arg("c")
                .arg("COUNT")
                .arg(BATCH)
                .arg("BLOCK")
                .arg(BLOCK_MS)
                .arg("STREAMS")
                .arg(&self.key)
                .arg(">")
                .query_async(&mut self.connection)
                .await?;
            let entries: Vec<_> = reply
                .into_iter()
                .flat_map(|r| r.keys)
                .flat_map(|k| k.ids)
                .collect();
            if entries.is_empty() {
                continue;
            }
            let mut bodies = Vec::with_capacity(entries.len());
            for mut entry in entries {
                match entry.map.remove("b") {
                    Some(Value::BulkString(body)) => bodies.push(Bytes::from(body)),
                    _ => bail!("a stream entry without a body"),
                }
                self.unacked.push(entry.id);
            }
            return Ok(Some(bodies));
        }
    }

    async fn ack(&mut self) -> anyhow::Result<()> {
        let ids = std::mem::take(&mut self.unacked);
        let mut pipe = redis::pipe();
        pipe.cmd("XACK").arg(&self.key).arg(&self.group).arg(&ids);
        if self.delete {
            pipe.cmd("XDEL").arg(&self.key).arg(&ids);
        }
        let _: Vec<i64> = pipe.query_async(&mut self.connection).await?;
        Ok(())
    }
}

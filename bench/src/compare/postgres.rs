//! PostgreSQL through tokio-postgres: a queue table. A send is one
//! autocommitted INSERT (one row per recipient, so a circle message is
//! one INSERT of 30 rows), with `synchronous_commit = on`, so the commit
//! is flushed to the WAL (fdatasync) before it answers; concurrent
//! senders share flushes (group commit). Recipients learn of new rows by
//! LISTEN/NOTIFY (the sender notifies right after its commit, in its own
//! statement: a NOTIFY inside the insert's transaction would serialise
//! all committing transactions on PostgreSQL's notify lock), read them
//! with SELECT and acknowledge by DELETE, also a synchronous commit.
//!
//! The server allows 100 connections here, so senders and recipients
//! share at most [`SENDER_CONNECTIONS`] and [`RECEIVER_CONNECTIONS`]
//! connections (one LISTEN connection delivers every notification).
//!
//! The server is the shared local one ([`Database::local`]) or a private
//! cluster reached with `sslmode=require` ([`Database::tls`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use futures_util::StreamExt as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, Connection, NoTls, Statement};

use super::peer::{Durability, Peer, PeerReceiver, PeerSender, Topology};
use super::tls::PostgresTls;

/// How to reach the local server.
const CONNECTION: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=10";
/// Most connections the senders get.
pub(crate) const SENDER_CONNECTIONS: usize = 50;
/// Most connections the recipients share for SELECT and DELETE.
pub(crate) const RECEIVER_CONNECTIONS: usize = 25;
/// Most rows one `receive` returns.
const BATCH: i64 = 64;
/// How long a recipient waits for a notification before looking anyway.
const POLL_FALLBACK: Duration = Duration::from_millis(250);

/// What an acknowledged INSERT means.
pub(crate) fn durability() -> Durability {
    Durability {
        fsynced_before_ack: true,
        note: "synchronous_commit = on: the commit's WAL is fdatasynced before it answers \
               (group commit of concurrent connections)"
            .into(),
    }
}

/// Which database to use and how to reach it.
#[derive(Clone, Debug)]
pub(crate) struct Database {
    /// tokio-postgres's connection string.
    config: String,
    /// TLS with this connector (the string says `sslmode=require`).
    tls: Option<PostgresTls>,
}

impl Database {
    /// The shared local server's `test` database (plaintext TCP).
    pub(crate) fn local() -> Self {
        Self {
            config: CONNECTION.into(),
            tls: None,
        }
    }

    /// A private cluster: `config` (with `sslmode=require`) and a
    /// connector that trusts only its certificate.
    pub(crate) fn tls(config: String, tls: PostgresTls) -> Self {
        Self {
            config,
            tls: Some(tls),
        }
    }
}

/// A PostgreSQL database.
#[derive(Debug)]
pub(crate) struct PostgresPeer {
    database: Database,
    table: String,
    state: Mutex<Option<Arc<Prepared>>>,
}

/// Each mailbox's notification channel, by channel name.
type Listeners = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<()>>>>;

/// What [`PostgresPeer::open`] opens: senders' and recipients'
/// connections, the notification routes and the task that routes them.
type Opened = (
    Vec<Arc<Client>>,
    Vec<Arc<Client>>,
    Listeners,
    tokio::task::JoinHandle<()>,
);

/// What `prepare` made.
#[derive(Debug)]
struct Prepared {
    topology: Topology,
    admin: Client,
    senders: Vec<Arc<Client>>,
    receivers: Vec<Arc<Client>>,
    listeners: Listeners,
    /// Routes notifications to `listeners`; owns the LISTEN connection.
    routing: tokio::task::JoinHandle<()>,
}

impl PostgresPeer {
    /// A peer in `database` whose table is unique to this run.
    pub(crate) fn new(database: Database) -> Self {
        Self {
            database,
            table: format!("hearth_bench_{}", rand::random::<u32>()),
            state: Mutex::new(None),
        }
    }

    /// Whether the server accepts a connection.
    pub(crate) async fn reachable(database: &Database) -> anyhow::Result<()> {
        let client = connect(database, None).await?;
        client.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// Opens the LISTEN connection (and the task routing its
    /// notifications), the senders' and the recipients' connections.
    async fn open(&self, topology: Topology) -> anyhow::Result<Opened> {
        let (notes, mut incoming) = mpsc::unbounded_channel::<String>();
        let listener = connect(&self.database, Some(notes)).await?;
        let listen: String = (0..topology.mailboxes())
            .map(|m| format!("LISTEN {};", self.channel(m)))
            .collect();
        listener.batch_execute(&listen).await?;
        let listeners = Listeners::default();
        let routes = Arc::clone(&listeners);
        let routing = tokio::spawn(async move {
            let _listener = listener;
            while let Some(channel) = incoming.recv().await {
                let routes = routes.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(to) = routes.get(&channel) {
                    let _ = to.send(());
                }
            }
        });
        let clients = async {
            let senders =
                connections(&self.database, topology.groups.min(SENDER_CONNECTIONS)).await?;
            let receivers = connections(
                &self.database,
                topology.mailboxes().min(RECEIVER_CONNECTIONS),
            )
            .await?;
            anyhow::Ok((senders, receivers))
        };
        match clients.await {
            Ok((senders, receivers)) => Ok((senders, receivers, listeners, routing)),
            Err(error) => {
                routing.abort();
                Err(error)
            }
        }
    }

    fn channel(&self, mailbox: usize) -> String {
        format!("{}_{mailbox}", self.table)
    }

    fn prepared(&self) -> anyhow::Result<Arc<Prepared>> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .context("prepare was not called")
    }
}

/// A new connection to `database` with `synchronous_commit = on`; its
/// notifications go to `notifications` (and are dropped without it).
async fn connect(
    database: &Database,
    notifications: Option<mpsc::UnboundedSender<String>>,
) -> anyhow::Result<Client> {
    let client = match &database.tls {
        None => {
            let (client, connection) = tokio_postgres::connect(&database.config, NoTls)
                .await
                .context("connecting to PostgreSQL")?;
            tokio::spawn(drive_connection(connection, notifications));
            client
        }
        Some(tls) => {
            let (client, connection) = tokio_postgres::connect(&database.config, tls.clone())
                .await
                .context("connecting to PostgreSQL over TLS")?;
            tokio::spawn(drive_connection(connection, notifications));
            client
        }
    };
    client
        .batch_execute("SET synchronous_commit = on")
        .await
        .context("setting synchronous_commit")?;
    Ok(client)
}

/// Runs a connection until it closes, passing on its notifications.
async fn drive_connection<S, T>(
    mut connection: Connection<S, T>,
    notifications: Option<mpsc::UnboundedSender<String>>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    while let Some(Ok(message)) = messages.next().await {
        if let (AsyncMessage::Notification(note), Some(to)) = (message, &notifications) {
            let _ = to.send(note.channel().to_owned());
        }
    }
}

/// `count` connections to `database`.
async fn connections(database: &Database, count: usize) -> anyhow::Result<Vec<Arc<Client>>> {
    let mut clients = Vec::with_capacity(count);
    for _ in 0..count {
        clients.push(Arc::new(connect(database, None).await?));
    }
    Ok(clients)
}

impl Peer for PostgresPeer {
    type Sender = PostgresSender;
    type Receiver = PostgresReceiver;

    async fn prepare(&self, topology: Topology) -> anyhow::Result<()> {
        let admin = connect(&self.database, None).await?;
        admin
            .batch_execute(&format!(
                "CREATE TABLE {t} (id bigserial PRIMARY KEY, mailbox int NOT NULL, body bytea NOT NULL);
                 CREATE INDEX {t}_mailbox ON {t} (mailbox, id);",
                t = self.table
            ))
            .await
            .context("creating the queue table")?;
        match self.open(topology).await {
            Ok((senders, receivers, listeners, routing)) => {
                let prepared = Prepared {
                    topology,
                    admin,
                    senders,
                    receivers,
                    listeners,
                    routing,
                };
                *self.state.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(Arc::new(prepared));
                Ok(())
            }
            Err(error) => {
                // Cleanup will not know of the table: drop it here.
                let drop = format!("DROP TABLE IF EXISTS {}", self.table);
                let _ = admin.batch_execute(&drop).await;
                Err(error)
            }
        }
    }

    async fn connect_receiver(&self, mailbox: usize) -> anyhow::Result<PostgresReceiver> {
        let prepared = self.prepared()?;
        let (notify, notified) = mpsc::unbounded_channel();
        prepared
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(self.channel(mailbox), notify);
        let client = Arc::clone(&prepared.receivers[mailbox % prepared.receivers.len()]);
        let select = format!(
            "SELECT id, body FROM {} WHERE mailbox = $1 ORDER BY id LIMIT $2",
            self.table
        );
        let delete = format!("DELETE FROM {} WHERE id = ANY($1)", self.table);
        Ok(PostgresReceiver {
            select: client.prepare(&select).await?,
            delete: client.prepare(&delete).await?,
            client,
            mailbox: i32::try_from(mailbox).context("too many mailboxes")?,
            notified,
            unacked: Vec::new(),
        })
    }

    async fn connect_sender(&self, group: usize) -> anyhow::Result<PostgresSender> {
        let prepared = self.prepared()?;
        let members = prepared
            .topology
            .members(group)
            .map(i32::try_from)
            .collect::<Result<Vec<_>, _>>()
            .context("too many mailboxes")?;
        let notify = members
            .iter()
            .map(|m| format!("NOTIFY {}_{m};", self.table))
            .collect();
        let client = Arc::clone(&prepared.senders[group % prepared.senders.len()]);
        let insert = format!(
            "INSERT INTO {} (mailbox, body) SELECT m, $2 FROM unnest($1::int[]) AS m",
            self.table
        );
        Ok(PostgresSender {
            insert: client.prepare(&insert).await?,
            client,
            notify,
            members,
        })
    }

    async fn cleanup(&self) -> anyhow::Result<()> {
        let prepared = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(prepared) = prepared {
            prepared
                .admin
                .batch_execute(&format!("DROP TABLE IF EXISTS {}", self.table))
                .await
                .context("dropping the queue table")?;
            prepared.routing.abort();
            prepared
                .listeners
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
            // Wait until the server has let the connections go, so the
            // next row finds free connection slots.
            drop(prepared);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Ok(())
    }
}

/// A sender on a (possibly shared) connection.
#[derive(Debug)]
pub(crate) struct PostgresSender {
    client: Arc<Client>,
    insert: Statement,
    notify: String,
    members: Vec<i32>,
}

impl PeerSender for PostgresSender {
    async fn send(&self, _id: u64, body: Bytes) -> anyhow::Result<()> {
        let body: &[u8] = &body;
        // Pipelined on the connection (the prepared INSERT goes out on its
        // first poll): the NOTIFY runs after the commit.
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&self.members, &body];
        let insert = self.client.execute(&self.insert, &params);
        let notify = self.client.batch_execute(&self.notify);
        let (inserted, notified) = tokio::join!(insert, notify);
        inserted.context("INSERT")?;
        notified.context("NOTIFY")?;
        Ok(())
    }
}

/// A recipient on a shared connection.
#[derive(Debug)]
pub(crate) struct PostgresReceiver {
    client: Arc<Client>,
    select: Statement,
    delete: Statement,
    mailbox: i32,
    notified: mpsc::UnboundedReceiver<()>,
    unacked: Vec<i64>,
}

impl PeerReceiver for PostgresReceiver {
    async fn receive(&mut self) -> anyhow::Result<Option<Vec<Bytes>>> {
        loop {
            while self.notified.try_recv().is_ok() {}
            let rows = self
                .client
                .query(&self.select, &[&self.mailbox, &BATCH])
                .await
                .context("SELECT")?;
            if rows.is_empty() {
                // A notification or the fallback, whichever comes first.
                let _ = tokio::time::timeout(POLL_FALLBACK, self.notified.recv()).await;
                continue;
            }
            let mut bodies = Vec::with_capacity(rows.len());
            for row in rows {
                self.unacked.push(row.try_get(0)?);
                let body: Vec<u8> = row.try_get(1)?;
                bodies.push(Bytes::from(body));
            }
            return Ok(Some(bodies));
        }
    }

    async fn ack(&mut self) -> anyhow::Result<()> {
        let ids = std::mem::take(&mut self.unacked);
        self.client
            .execute(&self.delete, &[&ids])
            .await
            .context("DELETE")?;
        Ok(())
    }
}

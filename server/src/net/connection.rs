//! Connections: the accept loop with its connection cap, and one task per
//! connection that registers it with the core and accepts its request
//! streams.

use std::sync::Arc;

use quinn::{Connection, ConnectionError, Endpoint, Incoming};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinError, JoinSet};
use tracing::{debug, error, warn};

use super::{CLOSE_INTERNAL, EXPORTER_LABEL, Shell, delivery, now_ms, request};
use crate::ids::ConnId;

/// Accepts connections until the endpoint closes, then waits for every
/// connection task to finish.
pub(super) async fn accept(endpoint: Endpoint, shell: Arc<Shell>, max_connections: usize) {
    let slots = Arc::new(Semaphore::new(max_connections.min(Semaphore::MAX_PERMITS)));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                admit(incoming, &shell, &slots, &mut connections);
            }
            Some(finished) = connections.join_next() => log_panic(finished),
        }
    }
    while let Some(finished) = connections.join_next().await {
        log_panic(finished);
    }
}

/// Starts serving a connection attempt, or refuses it when the relay is
/// full or stopping.
fn admit(
    incoming: Incoming,
    shell: &Arc<Shell>,
    slots: &Arc<Semaphore>,
    connections: &mut JoinSet<()>,
) {
    if shell.is_stopping() {
        incoming.refuse();
        return;
    }
    let Ok(slot) = Arc::clone(slots).try_acquire_owned() else {
        debug!(remote = %incoming.remote_address(), "connection cap reached; refusing a connection");
        incoming.refuse();
        return;
    };
    connections.spawn(serve(incoming, Arc::clone(shell), slot));
}

/// One connection, from handshake to close. The slot counts it against the
/// connection cap until it ends.
async fn serve(incoming: Incoming, shell: Arc<Shell>, _slot: OwnedSemaphorePermit) {
    let remote = incoming.remote_address();
    let connection = match incoming.await {
        Ok(connection) => connection,
        Err(reason) => {
            debug!(%remote, %reason, "handshake failed");
            return;
        }
    };
    let Some(exporter) = exporter(&connection) else {
        warn!(%remote, "could not export TLS keying material; closing the connection");
        connection.close(CLOSE_INTERNAL, b"internal error");
        return;
    };
    let mut challenge = [0u8; 32];
    rand::fill(&mut challenge[..]);
    let conn = shell.core().handle_connect(challenge, exporter, now_ms());
    debug!(%remote, ?conn, "connection open");

    let wake = shell.wakers.register(conn);
    let deliveries = tokio::spawn(delivery::run(
        Arc::clone(&shell),
        conn,
        connection.clone(),
        Arc::clone(&wake),
    ));
    let reason = accept_requests(&shell, conn, &connection, &wake).await;
    if let Err(failure) = deliveries.await {
        log_panic(Err(failure));
    }
    shell.wakers.remove(conn);
    shell.core().handle_disconnect(conn);
    debug!(%remote, ?conn, %reason, "connection closed");
}

/// The connection's TLS exporter secret, which binds authentication proofs
/// to this connection.
fn exporter(connection: &Connection) -> Option<[u8; 32]> {
    let mut exporter = [0u8; 32];
    connection
        .export_keying_material(&mut exporter, EXPORTER_LABEL, b"")
        .ok()?;
    Some(exporter)
}

/// Serves request streams until the connection closes. Once the relay is
/// stopping, no new stream is accepted, but the connection stays registered
/// until it closes, so that requests in flight can finish. Returns why the
/// connection closed, after every request task of it has finished.
async fn accept_requests(
    shell: &Arc<Shell>,
    conn: ConnId,
    connection: &Connection,
    wake: &Arc<Notify>,
) -> ConnectionError {
    let mut requests = JoinSet::new();
    let reason = loop {
        tokio::select! {
            accepted = connection.accept_bi() => match accepted {
                Ok(streams) => {
                    let serve = request::serve(Arc::clone(shell), conn, connection.clone(), Arc::clone(wake), streams);
                    requests.spawn(serve);
                }
                Err(reason) => break reason,
            },
            Some(finished) = requests.join_next() => log_panic(finished),
            () = shell.stopped() => break connection.closed().await,
        }
    };
    while let Some(finished) = requests.join_next().await {
        log_panic(finished);
    }
    reason
}

/// A task that panicked is a bug: log it.
fn log_panic(finished: Result<(), JoinError>) {
    if let Err(failure) = finished
        && failure.is_panic()
    {
        error!(error = %failure, "a relay task panicked");
    }
}

//! Connections: the accept loop with its connection cap, and one task per
//! connection that applies the per-address cap, registers it with the core,
//! accepts its request streams (`net/request.rs`) and closes it if it does
//! not authenticate in time.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use quinn::{Connection, ConnectionError, Endpoint, Incoming};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinError, JoinSet};
use tokio::time::{Instant, Sleep};
use tracing::{debug, error, warn};

use super::{
    CLOSE_INTERNAL, CLOSE_TOO_MANY, EXPORTER_LABEL, Shell, TOO_MANY_REASON, close_code, delivery,
    now_ms, request,
};
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
    // Counted only now that the handshake proved the address.
    let Some(_address_slot) = shell.address_slots.try_acquire(remote.ip()) else {
        debug!("per-address connection cap reached; closing a connection");
        connection.close(CLOSE_TOO_MANY, TOO_MANY_REASON);
        return;
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
    let context = request::StreamContext {
        shell: Arc::clone(&shell),
        conn,
        connection: connection.clone(),
        wake,
    };
    let reason = accept_requests(&context).await;
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

/// Serves request streams (the long-lived control stream and any stream of
/// its own a large send uses) until the connection closes. Once the relay is
/// stopping, no new stream is accepted, but the connection stays registered
/// until it closes, so that requests in flight can finish. Closes the
/// connection when the core says it did not authenticate in time. Returns
/// why the connection closed, after every stream task of it has finished.
async fn accept_requests(context: &request::StreamContext) -> ConnectionError {
    let (shell, conn, connection) = (&context.shell, context.conn, &context.connection);
    let mut requests = JoinSet::new();
    let mut auth_check = AuthCheck::new(shell, conn);
    let reason = loop {
        tokio::select! {
            () = auth_check.due() => auth_check.run(shell, conn, connection),
            accepted = connection.accept_bi() => match accepted {
                Ok(streams) => {
                    requests.spawn(request::serve(context.clone(), streams));
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

/// The timer of a connection's deadline to authenticate (or make a useful
/// request), as the core sets it.
struct AuthCheck {
    timer: Pin<Box<Sleep>>,
    /// False once the core sets no deadline (the connection authenticated).
    armed: bool,
}

impl AuthCheck {
    fn new(shell: &Shell, conn: ConnId) -> Self {
        let mut check = Self {
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed: true,
        };
        check.arm(shell, conn);
        check
    }

    /// Resolves at the deadline; never while disarmed.
    async fn due(&mut self) {
        if self.armed {
            self.timer.as_mut().await;
        } else {
            std::future::pending::<()>().await;
        }
    }

    /// At the deadline: closes the connection if the core says so, or
    /// follows the deadline where useful requests moved it.
    fn run(&mut self, shell: &Shell, conn: ConnId, connection: &Connection) {
        let close = shell.core().handle_timeout(conn, now_ms());
        if let Some(close) = close {
            debug!(
                ?conn,
                "closing a connection that did not authenticate in time"
            );
            connection.close(close_code(close.code), close.reason.as_bytes());
            self.armed = false;
            return;
        }
        self.arm(shell, conn);
    }

    fn arm(&mut self, shell: &Shell, conn: ConnId) {
        let deadline = shell.core().poll_timeout(conn);
        self.armed = deadline.is_some();
        if let Some(at) = deadline {
            let wait = Duration::from_millis(at.saturating_sub(now_ms()));
            self.timer.as_mut().reset(Instant::now() + wait);
        }
    }
}

/// A task that panicked is a bug: log it.
fn log_panic(finished: Result<(), JoinError>) {
    if let Err(failure) = finished
        && failure.is_panic()
    {
        error!(error = %failure, "a relay task panicked");
    }
}

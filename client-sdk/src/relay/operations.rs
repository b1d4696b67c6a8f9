//! The typed requests of the relay protocol (DESIGN.md section 3).

use bytes::Bytes;
use ed25519_dalek::SigningKey;
use hearth_proto::relay::{self as pb, request::Kind as Req, response::Kind as Resp};

use super::connection::RelayClient;
use super::error::{ClientError, RelayErrorCode};
use super::exchange::{request, unexpected};
use super::messages::{
    FetchedPrekeys, OutgoingRecipient, OutgoingSend, PrekeyCounts, PrekeyUpload, mailbox_bytes,
    send_token_hash,
};

impl RelayClient {
    /// Sends a typed request of this protocol version; returns the answer's
    /// kind (never an error: those become [`ClientError::Relay`]).
    async fn call(&self, kind: Req) -> Result<Option<Resp>, ClientError> {
        Ok(self.exchange.round_trip(request(kind)).await?.kind)
    }

    /// Creates the mailbox `mailbox_id` owned by `key` (which also
    /// authenticates it on this connection). A private relay needs the
    /// `registration_token` its operator issued.
    pub async fn register(
        &self,
        mailbox_id: [u8; 32],
        key: &SigningKey,
        registration_token: Option<&str>,
    ) -> Result<(), ClientError> {
        let register = pb::Register {
            mailbox_id: mailbox_bytes(&mailbox_id),
            mailbox_key: Bytes::copy_from_slice(key.verifying_key().as_bytes()),
            signature: Bytes::copy_from_slice(&self.auth_proof(key)),
            registration_token: registration_token.unwrap_or_default().to_owned(),
        };
        match self.call(Req::Register(register)).await? {
            Some(Resp::Registered(_)) => Ok(()),
            other => Err(unexpected("Registered", other.as_ref())),
        }
    }

    /// Proves ownership of `mailbox_id` on this connection; the relay then
    /// starts delivering its envelopes (see [`RelayClient::next_delivery`]).
    pub async fn authenticate(
        &self,
        mailbox_id: [u8; 32],
        key: &SigningKey,
    ) -> Result<(), ClientError> {
        let authenticate = pb::Authenticate {
            mailbox_id: mailbox_bytes(&mailbox_id),
            signature: Bytes::copy_from_slice(&self.auth_proof(key)),
        };
        match self.call(Req::Authenticate(authenticate)).await? {
            Some(Resp::Authenticated(_)) => Ok(()),
            other => Err(unexpected("Authenticated", other.as_ref())),
        }
    }

    /// Sends one body to its recipients. Returns one result per recipient,
    /// in order: `Ok(())` once the relay stored the envelope durably, or the
    /// reason it refused that recipient (e.g. `MAILBOX_FULL`). Retrying with
    /// the same `client_message_id` does not store anything twice.
    pub async fn send(
        &self,
        send: OutgoingSend,
    ) -> Result<Vec<Result<(), RelayErrorCode>>, ClientError> {
        let expected = send.recipients.len();
        let results = match self.call(Req::Send(send.into())).await? {
            Some(Resp::SendResult(result)) => result.results,
            other => return Err(unexpected("SendResult", other.as_ref())),
        };
        if results.len() != expected {
            return Err(ClientError::BadResponse(format!(
                "{} send results for {expected} recipients",
                results.len()
            )));
        }
        Ok(results
            .iter()
            .map(|r| RelayErrorCode::check_result(r.code))
            .collect())
    }

    /// Sends `body` to a single recipient; a refusal becomes
    /// [`ClientError::Relay`].
    pub async fn send_one(
        &self,
        client_message_id: [u8; 16],
        recipient: OutgoingRecipient,
        body: Bytes,
    ) -> Result<(), ClientError> {
        let send = OutgoingSend {
            client_message_id,
            body,
            recipients: vec![recipient],
            retry: false,
        };
        let results = self.send(send).await?;
        match results.first() {
            Some(Ok(())) => Ok(()),
            Some(Err(code)) => Err(ClientError::Relay {
                code: *code,
                message: "the recipient's relay refused the envelope".into(),
            }),
            None => Err(ClientError::BadResponse("no send result".into())),
        }
    }

    /// Acknowledges (and so deletes) delivered envelopes of an
    /// authenticated mailbox. Call it only after they are processed
    /// durably. The acknowledgement is queued and goes out with the next
    /// write on the control stream, merged with the others of its mailbox;
    /// the relay does not answer it. Acknowledging twice is harmless, and
    /// one that is lost only means a redelivery. Fails only when the
    /// connection is gone.
    pub fn ack(&self, mailbox_id: [u8; 32], seqs: &[u64]) -> Result<(), ClientError> {
        self.exchange.queue_ack(mailbox_id, None, seqs)
    }

    /// Acknowledges every envelope of `mailbox_id` delivered on this
    /// connection with a sequence number up to `through` (deliveries are in
    /// order, so this is what a client that processed everything up to an
    /// envelope says). Queued like [`RelayClient::ack`].
    pub fn ack_through(&self, mailbox_id: [u8; 32], through: u64) -> Result<(), ClientError> {
        self.exchange.queue_ack(mailbox_id, Some(through), &[])
    }

    /// Waits until the relay has handled everything queued on the control
    /// stream before this call, acknowledgements included, and made it
    /// durable: one round trip (a `Sync` request).
    pub async fn flush(&self) -> Result<(), ClientError> {
        self.expect_done(Req::Sync(pb::Sync {})).await
    }

    /// Lets holders of `token` send to an authenticated mailbox. Only
    /// SHA-256(token) leaves this device.
    pub async fn add_send_token(
        &self,
        mailbox_id: [u8; 32],
        token: &[u8],
    ) -> Result<(), ClientError> {
        let add = pb::AddSendToken {
            mailbox_id: mailbox_bytes(&mailbox_id),
            token_hash: Bytes::copy_from_slice(&send_token_hash(token)),
        };
        self.expect_done(Req::AddSendToken(add)).await
    }

    /// Stops accepting `token` for an authenticated mailbox (e.g. after
    /// removing someone from a circle). Only SHA-256(token) is sent.
    pub async fn revoke_send_token(
        &self,
        mailbox_id: [u8; 32],
        token: &[u8],
    ) -> Result<(), ClientError> {
        let revoke = pb::RevokeSendToken {
            mailbox_id: mailbox_bytes(&mailbox_id),
            token_hash: Bytes::copy_from_slice(&send_token_hash(token)),
        };
        self.expect_done(Req::RevokeSendToken(revoke)).await
    }

    /// Publishes (or replenishes) an authenticated mailbox's prekeys.
    pub async fn publish_prekeys(&self, upload: PrekeyUpload) -> Result<(), ClientError> {
        self.expect_done(Req::PublishPrekeys(upload.into())).await
    }

    /// Fetches `mailbox_id`'s prekey bundle with a send token; the relay
    /// hands out (and deletes) one one-time prekey of each kind.
    pub async fn fetch_prekeys(
        &self,
        mailbox_id: [u8; 32],
        send_token: &[u8],
    ) -> Result<FetchedPrekeys, ClientError> {
        let fetch = pb::FetchPrekeys {
            mailbox_id: mailbox_bytes(&mailbox_id),
            send_token: Bytes::copy_from_slice(send_token),
        };
        match self.call(Req::FetchPrekeys(fetch)).await? {
            Some(Resp::PrekeyBundle(bundle)) => Ok(bundle.into()),
            other => Err(unexpected("PrekeyBundle", other.as_ref())),
        }
    }

    /// How many prekeys an authenticated mailbox has left, to replenish.
    pub async fn prekey_counts(&self, mailbox_id: [u8; 32]) -> Result<PrekeyCounts, ClientError> {
        let counts = pb::PrekeyCounts {
            mailbox_id: mailbox_bytes(&mailbox_id),
        };
        match self.call(Req::PrekeyCounts(counts)).await? {
            Some(Resp::PrekeyCounts(counts)) => Ok(counts.into()),
            other => Err(unexpected("PrekeyCounts", other.as_ref())),
        }
    }

    async fn expect_done(&self, kind: Req) -> Result<(), ClientError> {
        match self.call(kind).await? {
            Some(Resp::Done(_)) => Ok(()),
            other => Err(unexpected("Done", other.as_ref())),
        }
    }
}

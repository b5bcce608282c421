//! The intake's rules with its ports mocked.

use fluxolab_kernel::{ManualClock, WorkspaceId};
use time::OffsetDateTime;

use super::*;
use crate::ports::{MockEventStore, MockRegistrationRepository, Recorded};

fn registration(provider: Provider) -> Registration {
    Registration {
        id: WebhookRegistrationId::new(),
        workspace_id: WorkspaceId::new(),
        name: "Meta".into(),
        provider,
        public_id: "pub".into(),
        verify_token_hash: Some(token_hash("let-me-in")),
        signing_credential_id: Some(fluxolab_kernel::CredentialId::new()),
        workflow_id: None,
        environment: fluxolab_kernel::EnvironmentRef {
            id: fluxolab_kernel::EnvironmentId::new(),
            name: "production".into(),
        },
        response_mode: ResponseMode::Immediate,
        enabled: true,
        created_at: OffsetDateTime::UNIX_EPOCH,
        updated_at: OffsetDateTime::UNIX_EPOCH,
    }
}

fn intake(events: MockEventStore, allowance: u32) -> Intake {
    intake_of(Provider::Meta, "app-secret", events, allowance)
}

fn intake_of(
    provider: Provider,
    secret: &'static str,
    events: MockEventStore,
    allowance: u32,
) -> Intake {
    let mut registrations = MockRegistrationRepository::new();
    let found = registration(provider);
    registrations
        .expect_find_public()
        .times(1)
        .returning(move |_| Ok(Some(found.clone())));
    let mut secrets = fluxolab_kernel::owned_secrets::MockOwnedSecrets::new();
    secrets
        .expect_open()
        .times(1)
        .returning(move |_, _| Ok(SecretString::from(secret)));
    let mut gate = fluxolab_kernel::plan_guard::MockUsageGate::new();
    gate.expect_admit_delivery()
        .returning(|_| Ok(fluxolab_kernel::Admission::Admitted));
    Intake::new(
        Arc::new(registrations),
        Arc::new(events),
        Arc::new(secrets),
        Arc::new(crate::test_support::starter(gate)),
        Arc::new(ManualClock::new(OffsetDateTime::UNIX_EPOCH)),
        IntakeSettings {
            rejected_per_minute: allowance,
        },
    )
}

fn signed(body: &[u8]) -> Delivery {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"app-secret");
    Delivery {
        body: body.to_vec(),
        signature: Some(format!(
            "sha256={}",
            hex::encode(ring::hmac::sign(&key, body).as_ref())
        )),
        standard: ReceivedHeaders::default(),
        headers: Value::Null,
    }
}

#[tokio::test]
async fn the_registration_is_read_once_and_keys_cover_body_and_message_ids() {
    let mut events = MockEventStore::new();
    events
        .expect_record()
        .withf(|recording| {
            recording.dedupe_keys.body.starts_with("body:")
                && recording.dedupe_keys.messages == ["message:wamid.X"]
        })
        .times(3)
        .returning(|_| {
            Ok(Recorded {
                verdict: Verdict::Accepted,
                execution_id: None,
            })
        });
    let intake = intake(events, 10);
    let body = br#"{"entry":[{"changes":[{"value":{"messages":[{"from":"1","id":"wamid.X","timestamp":"1","type":"text","text":{"body":"hi"}}]}}]}]}"#;
    for _ in 0..3 {
        let received = intake.receive("pub", signed(body)).await;
        assert!(matches!(
            received,
            Ok(Received {
                verdict: Verdict::Accepted,
                ..
            })
        ));
    }
}

#[tokio::test]
async fn bad_signatures_are_refused_and_stored_only_up_to_the_allowance() {
    let mut events = MockEventStore::new();
    events
        .expect_record_unrun()
        .withf(|_, verdict, reason| {
            *verdict == Verdict::Rejected && *reason == Some("bad_signature")
        })
        .times(2)
        .returning(|_, _, _| Ok(()));
    let intake = intake(events, 2);
    for _ in 0..5 {
        let mut delivery = signed(b"{}");
        delivery.body = b"{\"changed\":true}".to_vec();
        assert!(matches!(
            intake.receive("pub", delivery).await,
            Err(IntakeError::Rejected(RejectReason::BadSignature))
        ));
    }
}

#[tokio::test]
async fn the_handshake_answers_the_challenge_only_for_the_right_token() {
    let intake = intake(MockEventStore::new(), 1);
    let answer = intake
        .handshake(
            "pub",
            Some("subscribe"),
            Some("let-me-in"),
            Some("1158201444"),
        )
        .await;
    assert_eq!(answer.ok().as_deref(), Some("1158201444"));
    assert!(matches!(
        intake
            .handshake("pub", Some("subscribe"), Some("guess"), Some("1"))
            .await,
        Err(IntakeError::HandshakeRefused)
    ));
}

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn standard(id: &str, sent_at: OffsetDateTime, body: &[u8]) -> Delivery {
    let key = SigningKey::parse(&SecretString::from(WHSEC)).expect("a valid secret");
    let signed = standard_webhooks::sign(&[key], id, sent_at, body);
    Delivery {
        body: body.to_vec(),
        signature: None,
        standard: ReceivedHeaders {
            id: Some(signed.id),
            timestamp: Some(signed.timestamp),
            signature: Some(signed.signature),
        },
        headers: Value::Null,
    }
}

#[tokio::test]
async fn a_standard_delivery_is_deduped_on_its_webhook_id_alone() {
    let mut events = MockEventStore::new();
    events
        .expect_record()
        .withf(|recording| {
            recording.dedupe_keys.body == "webhook-id:msg_1"
                && recording.dedupe_keys.messages.is_empty()
        })
        .times(1)
        .returning(|_| {
            Ok(Recorded {
                verdict: Verdict::Accepted,
                execution_id: None,
            })
        });
    let intake = intake_of(Provider::Standard, WHSEC, events, 10);
    let received = intake
        .receive("pub", standard("msg_1", OffsetDateTime::UNIX_EPOCH, b"{}"))
        .await;
    assert!(received.is_ok(), "{received:?}");
}

#[tokio::test]
async fn a_standard_delivery_from_another_time_or_without_headers_is_refused() {
    let mut events = MockEventStore::new();
    events
        .expect_record_unrun()
        .withf(|_, verdict, reason| {
            *verdict == Verdict::Rejected
                && matches!(reason, Some("stale_timestamp" | "missing_signature"))
        })
        .times(2)
        .returning(|_, _, _| Ok(()));
    let intake = intake_of(Provider::Standard, WHSEC, events, 10);
    let late = OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(6);
    assert!(matches!(
        intake.receive("pub", standard("msg_1", late, b"{}")).await,
        Err(IntakeError::Rejected(RejectReason::StaleTimestamp))
    ));
    let mut unsigned = standard("msg_2", OffsetDateTime::UNIX_EPOCH, b"{}");
    unsigned.standard.signature = None;
    assert!(matches!(
        intake.receive("pub", unsigned).await,
        Err(IntakeError::Rejected(RejectReason::MissingSignature))
    ));
}

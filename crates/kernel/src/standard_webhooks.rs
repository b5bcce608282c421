//! Standard Webhooks (standardwebhooks.com): the one signature scheme of every webhook
//! FluxoLab sends (usage alerts, log batches, notifications) and of the intake's
//! `standard` provider.
//!
//! A message carries `webhook-id`, `webhook-timestamp` (unix seconds) and
//! `webhook-signature`: space-separated `v1,<base64 HMAC-SHA256>` of
//! `"{id}.{timestamp}.{body}"`, one per secret in use (two while a rotated secret's
//! grace period runs). Secrets are `whsec_` + base64 of random bytes; as the reference
//! implementations do, a secret without the prefix is read as base64 too.

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use crate::NoRandomness;

/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// How far a message's timestamp may be from now, either way.
pub const TOLERANCE_SECONDS: i64 = 300;
/// What a `whsec_…` secret looks like (the JSON Schema of the API's `signing_secret`):
/// the prefix, then base64 of 24–62 bytes, padded or not (a subset of what
/// [`SigningKey::parse`] reads).
pub const SECRET_PATTERN: &str =
    "^whsec_(?:[A-Za-z0-9+/]{4}){8,20}(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$";
/// Reads secrets as the reference implementations do: padding optional, any trailing bits.
/// The default grace of a rotated-away signing secret: it signs beside the new one for
/// a day.
pub const DEFAULT_ROTATION_GRACE_SECONDS: i64 = 86_400;
/// The longest grace a rotation may ask for (30 days).
pub const MAX_ROTATION_GRACE_SECONDS: i64 = 30 * 86_400;

/// Checks a rotation's `grace_seconds` (default [`DEFAULT_ROTATION_GRACE_SECONDS`]; 0
/// drops the old secret at once).
pub fn rotation_grace(requested: Option<i64>) -> Result<i64, crate::ValidationErrors> {
    let grace = requested.unwrap_or(DEFAULT_ROTATION_GRACE_SECONDS);
    if (0..=MAX_ROTATION_GRACE_SECONDS).contains(&grace) {
        Ok(grace)
    } else {
        Err(crate::ValidationErrors::single(
            "grace_seconds",
            format!("must be between 0 and {MAX_ROTATION_GRACE_SECONDS}"),
        ))
    }
}

/// What a rotation at `now` with `grace_seconds` keeps of the `current` and `previous`
/// secrets: the one that signs beside the new secret until its expiry (the current one,
/// unless the grace is 0), and those to discard (an older rotation's, and the current
/// one without grace).
pub fn rotated(
    current: crate::CredentialId,
    previous: Option<(crate::CredentialId, OffsetDateTime)>,
    grace_seconds: i64,
    now: OffsetDateTime,
) -> (
    Option<(crate::CredentialId, OffsetDateTime)>,
    Vec<crate::CredentialId>,
) {
    let mut discarded: Vec<crate::CredentialId> =
        previous.map(|(old, _)| old).into_iter().collect();
    let kept = if grace_seconds > 0 {
        Some((current, now + time::Duration::seconds(grace_seconds)))
    } else {
        discarded.push(current);
        None
    };
    (kept, discarded)
}

/// The secrets that sign at `now`: the current one, and the one a rotation replaced
/// while its grace lasts.
pub fn signing_secrets(
    current: crate::CredentialId,
    previous: Option<(crate::CredentialId, OffsetDateTime)>,
    now: OffsetDateTime,
) -> Vec<crate::CredentialId> {
    let mut secrets = vec![current];
    secrets.extend(
        previous
            .filter(|(_, until)| *until > now)
            .map(|(secret, _)| secret),
    );
    secrets
}

const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);
/// Random bytes in a generated secret.
const SECRET_BYTES: usize = 32;
/// The fewest key bytes a supplied secret may decode to.
const MIN_KEY_BYTES: usize = 24;
/// The most key bytes a supplied secret may decode to.
const MAX_KEY_BYTES: usize = 64;

/// An HMAC key read from a `whsec_…` secret; its `Debug` shows nothing of it.
pub struct SigningKey(hmac::Key);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey([REDACTED])")
    }
}

impl SigningKey {
    /// The key of `secret` (`whsec_<base64>`, or bare base64), or `None` when it is not
    /// base64 or decodes to fewer than 24 or more than 64 bytes (the specification's bounds).
    pub fn parse(secret: &SecretString) -> Option<Self> {
        let text = secret.expose_secret().trim();
        let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        let bytes = LENIENT.decode(encoded).ok()?;
        (MIN_KEY_BYTES..=MAX_KEY_BYTES)
            .contains(&bytes.len())
            .then(|| Self(hmac::Key::new(hmac::HMAC_SHA256, &bytes)))
    }

    fn tag(&self, id: &str, timestamp: i64, body: &[u8]) -> hmac::Tag {
        let mut context = hmac::Context::with_key(&self.0);
        context.update(id.as_bytes());
        context.update(b".");
        context.update(timestamp.to_string().as_bytes());
        context.update(b".");
        context.update(body);
        context.sign()
    }
}

/// A new random secret, `whsec_` + base64 of 32 bytes.
pub fn generate_secret() -> Result<SecretString, NoRandomness> {
    let mut bytes = [0_u8; SECRET_BYTES];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| NoRandomness)?;
    Ok(SecretString::from(format!(
        "{SECRET_PREFIX}{}",
        STANDARD.encode(bytes)
    )))
}

/// The three headers of a signed message, as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `webhook-id`: the same for every retry of one message, so receivers can dedupe.
    pub id: String,
    /// `webhook-timestamp`: unix seconds of this attempt.
    pub timestamp: String,
    /// `webhook-signature`: one `v1,<base64>` per key, space-separated.
    pub signature: String,
}

impl SignedHeaders {
    /// The headers by name, for an HTTP client.
    pub fn pairs(&self) -> [(&'static str, &str); 3] {
        [
            ("webhook-id", &self.id),
            ("webhook-timestamp", &self.timestamp),
            ("webhook-signature", &self.signature),
        ]
    }
}

/// Signs `body` as message `id` sent at `now` with every key in `keys`.
pub fn sign(keys: &[SigningKey], id: &str, now: OffsetDateTime, body: &[u8]) -> SignedHeaders {
    let timestamp = now.unix_timestamp();
    let signature = keys
        .iter()
        .map(|key| {
            format!(
                "v1,{}",
                STANDARD.encode(key.tag(id, timestamp, body).as_ref())
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    SignedHeaders {
        id: id.to_owned(),
        timestamp: timestamp.to_string(),
        signature,
    }
}

/// The three headers of a received message (any may be missing).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceivedHeaders {
    pub id: Option<String>,
    pub timestamp: Option<String>,
    pub signature: Option<String>,
}

/// The outcome of checking a received message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verification {
    Valid,
    /// One of the three headers is missing or empty.
    Missing,
    /// The timestamp is not an integer, or more than five minutes from now.
    BadTimestamp,
    /// No `v1` signature matches (or none parses).
    Mismatch,
}

/// Checks a received message: the three headers present, the timestamp within
/// [`TOLERANCE_SECONDS`] of `now`, and any of the space-separated `v1` signatures
/// valid for `body` under `key` (compared in constant time). The body must be the
/// bytes as received.
pub fn verify(
    key: &SigningKey,
    headers: &ReceivedHeaders,
    body: &[u8],
    now: OffsetDateTime,
) -> Verification {
    let (Some(id), Some(timestamp), Some(signatures)) = (
        present(headers.id.as_deref()),
        present(headers.timestamp.as_deref()),
        present(headers.signature.as_deref()),
    ) else {
        return Verification::Missing;
    };
    let Ok(seconds) = timestamp.parse::<i64>() else {
        return Verification::BadTimestamp;
    };
    if (now.unix_timestamp() - seconds).abs() > TOLERANCE_SECONDS {
        return Verification::BadTimestamp;
    }
    let mut context = hmac::Context::with_key(&key.0);
    for part in [id.as_bytes(), b".", timestamp.as_bytes(), b".", body] {
        context.update(part);
    }
    let expected = context.sign();
    let matched = signatures
        .split(' ')
        .filter_map(|signature| signature.strip_prefix("v1,"))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        .any(|given| crate::constant_time_eq(&given, expected.as_ref()));
    if matched {
        Verification::Valid
    } else {
        Verification::Mismatch
    }
}

/// A header's value, trimmed, unless it is missing or blank.
fn present(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_keeps_the_current_secret_for_its_grace_and_drops_an_older_one() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let (current, older) = (crate::CredentialId::new(), crate::CredentialId::new());
        let (kept, dropped) = rotated(current, Some((older, now)), 60, now);
        assert_eq!(kept, Some((current, now + time::Duration::seconds(60))));
        assert_eq!(dropped, [older]);
        let (kept, dropped) = rotated(current, None, 0, now);
        assert_eq!((kept, dropped), (None, vec![current]));
        assert_eq!(rotation_grace(None), Ok(DEFAULT_ROTATION_GRACE_SECONDS));
        assert!(rotation_grace(Some(MAX_ROTATION_GRACE_SECONDS + 1)).is_err());
        let signing = signing_secrets(current, Some((older, now)), now);
        assert_eq!(signing, [current], "a grace that ended signs no more");
        let later = now - time::Duration::seconds(1);
        assert_eq!(
            signing_secrets(current, Some((older, now)), later),
            [current, older]
        );
    }

    fn key(secret: &str) -> SigningKey {
        SigningKey::parse(&SecretString::from(secret.to_owned())).expect("a valid secret")
    }

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn the_specifications_example_signs_as_published() {
        // The example of the Standard Webhooks specification.
        let now = OffsetDateTime::from_unix_timestamp(1_614_265_330).expect("a time");
        let signed = sign(
            &[key(SECRET)],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            now,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            signed.signature,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert_eq!(signed.timestamp, "1614265330");
    }

    fn received(signed: &SignedHeaders) -> ReceivedHeaders {
        ReceivedHeaders {
            id: Some(signed.id.clone()),
            timestamp: Some(signed.timestamp.clone()),
            signature: Some(signed.signature.clone()),
        }
    }

    #[test]
    fn any_of_the_signatures_may_match_and_a_changed_body_does_not() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("a time");
        let old = key("whsec_c2VjcmV0LXRoYXQtaXMtbG9uZy1lbm91Z2g=");
        let signed = sign(&[old, key(SECRET)], "msg_1", now, b"{}");
        assert_eq!(signed.signature.split(' ').count(), 2);
        let headers = received(&signed);
        assert_eq!(
            verify(&key(SECRET), &headers, b"{}", now),
            Verification::Valid
        );
        assert_eq!(
            verify(&key(SECRET), &headers, b"{ }", now),
            Verification::Mismatch
        );
    }

    #[test]
    fn the_timestamp_must_be_within_five_minutes_either_way() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("a time");
        let headers = received(&sign(&[key(SECRET)], "msg_1", now, b"{}"));
        for (offset, expected) in [
            (300, Verification::Valid),
            (-300, Verification::Valid),
            (301, Verification::BadTimestamp),
            (-301, Verification::BadTimestamp),
        ] {
            let later = now + time::Duration::seconds(offset);
            assert_eq!(verify(&key(SECRET), &headers, b"{}", later), expected);
        }
        let mut garbled = headers.clone();
        garbled.timestamp = Some("soon".into());
        assert_eq!(
            verify(&key(SECRET), &garbled, b"{}", now),
            Verification::BadTimestamp
        );
        let mut unsigned = headers;
        unsigned.signature = Some(" ".into());
        assert_eq!(
            verify(&key(SECRET), &unsigned, b"{}", now),
            Verification::Missing
        );
    }

    #[test]
    fn secrets_are_whsec_base64_of_twenty_four_to_sixty_four_bytes() {
        let generated = generate_secret().expect("randomness");
        assert!(generated.expose_secret().starts_with(SECRET_PREFIX));
        assert!(SigningKey::parse(&generated).is_some());
        // Unpadded, as some senders write them, and bare base64 (no prefix).
        for fine in [
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYqrTwjUPD8ILPZIo2L",
            "c2VjcmV0LXRoYXQtaXMtbG9uZy1lbm91Z2g=",
        ] {
            assert!(
                SigningKey::parse(&SecretString::from(fine.to_owned())).is_some(),
                "{fine}"
            );
        }
        for bad in ["whsec_not base64!", "whsec_c2hvcnQ=", ""] {
            assert!(
                SigningKey::parse(&SecretString::from(bad.to_owned())).is_none(),
                "{bad}"
            );
        }
        assert_eq!(format!("{:?}", key(SECRET)), "SigningKey([REDACTED])");
    }
}

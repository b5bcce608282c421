//! Envelope encryption.
//!
//! - A key-encryption key (KEK) is derived from the master secret (`APP_SECRET`) with
//!   HKDF-SHA256; its id is a digest of the key, so a wrapped key names the KEK it needs.
//! - Each workspace has random 256-bit data keys (DEKs), stored only wrapped by a KEK
//!   with AES-256-GCM, the workspace id as associated data.
//! - Secrets are sealed with AES-256-GCM under a DEK, a fresh random 96-bit nonce each
//!   time, and the workspace id and credential id as associated data: a ciphertext moved
//!   to another row or workspace does not open.

use fluxolab_kernel::{CredentialId, WorkspaceId};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::digest::{SHA256, digest};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize, Zeroizing};

/// Why a key or secret could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error(
        "the data key was wrapped by key `{0}`, which is neither APP_SECRET nor APP_SECRET_PREVIOUS"
    )]
    UnknownKek(String),
    #[error("the ciphertext does not open: it was altered or belongs to another record")]
    Tampered,
    #[error("no randomness available")]
    Randomness,
    #[error("the key material is unusable")]
    BadKey,
}

const KEY_LEN: usize = 32;

/// A key-encryption key derived from a master secret.
pub struct Kek {
    id: String,
    key: LessSafeKey,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kek")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

struct KeyLength;

impl hkdf::KeyType for KeyLength {
    fn len(&self) -> usize {
        KEY_LEN
    }
}

impl Kek {
    /// Derives the KEK of `master_secret`.
    pub fn derive(master_secret: &[u8]) -> Result<Self, EnvelopeError> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"fluxolab-kek").extract(master_secret);
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        // Both steps only fail for outputs longer than 255 hash lengths.
        if let Ok(okm) = prk.expand(&[b"credentials-kek-v1"], KeyLength) {
            let _ = okm.fill(bytes.as_mut());
        }
        let id = hex_prefix(digest(&SHA256, bytes.as_ref()).as_ref());
        Ok(Self {
            id,
            key: aead_key(bytes.as_ref())?,
        })
    }

    /// The id stored next to every key it wraps.
    pub fn id(&self) -> &str {
        &self.id
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn aead_key(bytes: &[u8]) -> Result<LessSafeKey, EnvelopeError> {
    UnboundKey::new(&AES_256_GCM, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| EnvelopeError::BadKey)
}

/// The current KEK and, during a master-secret rotation, the previous one.
#[derive(Debug)]
pub struct MasterKeys {
    current: Kek,
    previous: Option<Kek>,
}

impl MasterKeys {
    pub fn new(current: &[u8], previous: Option<&[u8]>) -> Result<Self, EnvelopeError> {
        Ok(Self {
            current: Kek::derive(current)?,
            previous: previous.map(Kek::derive).transpose()?,
        })
    }

    pub fn current(&self) -> &Kek {
        &self.current
    }

    fn by_id(&self, id: &str) -> Option<&Kek> {
        std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .find(|kek| kek.id == id)
    }
}

/// A DEK as stored: wrapped, with the id of its KEK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappedKey {
    /// nonce ‖ AES-256-GCM(ciphertext ‖ tag)
    pub bytes: Vec<u8>,
    pub kek_id: String,
}

/// An unwrapped data key; zeroized when dropped, never printed.
pub struct DataKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey([REDACTED])")
    }
}

fn random_nonce() -> Result<[u8; NONCE_LEN], EnvelopeError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| EnvelopeError::Randomness)?;
    Ok(nonce)
}

fn seal_with(
    key: &LessSafeKey,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<([u8; NONCE_LEN], Vec<u8>), EnvelopeError> {
    let nonce = random_nonce()?;
    let mut buffer = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut buffer,
    )
    .map_err(|_| EnvelopeError::Randomness)?;
    Ok((nonce, buffer))
}

fn open_with(
    key: &LessSafeKey,
    aad: &[u8],
    nonce: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| EnvelopeError::Tampered)?;
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    let length = key
        .open_in_place(nonce, Aad::from(aad), buffer.as_mut_slice())
        .map_err(|_| EnvelopeError::Tampered)?
        .len();
    buffer.truncate(length);
    Ok(buffer)
}

fn credential_aad(workspace: WorkspaceId, credential: CredentialId) -> Vec<u8> {
    let mut aad = workspace.as_uuid().as_bytes().to_vec();
    aad.extend_from_slice(credential.as_uuid().as_bytes());
    aad
}

/// A sealed secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl DataKey {
    /// A new random key.
    pub fn generate() -> Result<Self, EnvelopeError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        SystemRandom::new()
            .fill(bytes.as_mut())
            .map_err(|_| EnvelopeError::Randomness)?;
        Ok(Self(bytes))
    }

    /// Wraps this key for `workspace` under the current KEK.
    pub fn wrap(
        &self,
        keys: &MasterKeys,
        workspace: WorkspaceId,
    ) -> Result<WrappedKey, EnvelopeError> {
        let kek = keys.current();
        let (nonce, ciphertext) =
            seal_with(&kek.key, workspace.as_uuid().as_bytes(), self.0.as_ref())?;
        let mut bytes = nonce.to_vec();
        bytes.extend(ciphertext);
        Ok(WrappedKey {
            bytes,
            kek_id: kek.id.clone(),
        })
    }

    /// Unwraps a stored key of `workspace` with whichever known KEK wrapped it.
    pub fn unwrap(
        keys: &MasterKeys,
        workspace: WorkspaceId,
        wrapped: &WrappedKey,
    ) -> Result<Self, EnvelopeError> {
        let kek = keys
            .by_id(&wrapped.kek_id)
            .ok_or_else(|| EnvelopeError::UnknownKek(wrapped.kek_id.clone()))?;
        if wrapped.bytes.len() < NONCE_LEN {
            return Err(EnvelopeError::Tampered);
        }
        let (nonce, ciphertext) = wrapped.bytes.split_at(NONCE_LEN);
        let mut plain = open_with(&kek.key, workspace.as_uuid().as_bytes(), nonce, ciphertext)?;
        let bytes: [u8; KEY_LEN] = plain
            .as_slice()
            .try_into()
            .map_err(|_| EnvelopeError::Tampered)?;
        plain.zeroize();
        Ok(Self(Zeroizing::new(bytes)))
    }

    /// Seals `plaintext` for credential `credential` of `workspace`.
    pub fn seal(
        &self,
        workspace: WorkspaceId,
        credential: CredentialId,
        plaintext: &[u8],
    ) -> Result<Sealed, EnvelopeError> {
        let (nonce, ciphertext) = seal_with(
            &aead_key(self.0.as_ref())?,
            &credential_aad(workspace, credential),
            plaintext,
        )?;
        Ok(Sealed {
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Opens what [`DataKey::seal`] produced for the same workspace and credential.
    pub fn open(
        &self,
        workspace: WorkspaceId,
        credential: CredentialId,
        sealed: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        open_with(
            &aead_key(self.0.as_ref())?,
            &credential_aad(workspace, credential),
            &sealed.nonce,
            &sealed.ciphertext,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &[u8] = b"the-old-master-secret-0123456789abcdef";
    const NEW: &[u8] = b"the-new-master-secret-0123456789abcdef";

    #[test]
    fn a_sealed_secret_opens_only_for_its_own_row() -> Result<(), EnvelopeError> {
        let keys = MasterKeys::new(NEW, None)?;
        let workspace = WorkspaceId::new();
        let dek = DataKey::unwrap(
            &keys,
            workspace,
            &DataKey::generate()?.wrap(&keys, workspace)?,
        )?;
        let credential = CredentialId::new();
        let sealed = dek.seal(workspace, credential, b"hunter2-hunter2")?;
        assert_eq!(
            dek.open(workspace, credential, &sealed)?.as_slice(),
            b"hunter2-hunter2"
        );
        assert_eq!(
            dek.open(workspace, CredentialId::new(), &sealed).err(),
            Some(EnvelopeError::Tampered)
        );
        assert_eq!(
            dek.open(WorkspaceId::new(), credential, &sealed).err(),
            Some(EnvelopeError::Tampered)
        );
        let mut flipped = sealed;
        flipped.ciphertext[0] ^= 1;
        assert_eq!(
            dek.open(workspace, credential, &flipped).err(),
            Some(EnvelopeError::Tampered)
        );
        Ok(())
    }

    #[test]
    fn nonces_are_fresh_for_every_seal() -> Result<(), EnvelopeError> {
        let dek = DataKey::generate()?;
        let (workspace, credential) = (WorkspaceId::new(), CredentialId::new());
        let first = dek.seal(workspace, credential, b"same")?;
        let second = dek.seal(workspace, credential, b"same")?;
        assert_ne!(first.nonce, second.nonce);
        assert_ne!(first.ciphertext, second.ciphertext);
        Ok(())
    }

    #[test]
    fn the_previous_master_secret_still_unwraps_during_rotation() -> Result<(), EnvelopeError> {
        let workspace = WorkspaceId::new();
        let old_keys = MasterKeys::new(OLD, None)?;
        let wrapped = DataKey::generate()?.wrap(&old_keys, workspace)?;

        let rotating = MasterKeys::new(NEW, Some(OLD))?;
        let dek = DataKey::unwrap(&rotating, workspace, &wrapped)?;
        let rewrapped = dek.wrap(&rotating, workspace)?;
        assert_eq!(rewrapped.kek_id, rotating.current().id());

        let new_only = MasterKeys::new(NEW, None)?;
        assert!(DataKey::unwrap(&new_only, workspace, &rewrapped).is_ok());
        assert_eq!(
            DataKey::unwrap(&new_only, workspace, &wrapped).err(),
            Some(EnvelopeError::UnknownKek(
                old_keys.current().id().to_owned()
            ))
        );
        Ok(())
    }

    #[test]
    fn a_wrapped_key_does_not_unwrap_for_another_workspace() -> Result<(), EnvelopeError> {
        let keys = MasterKeys::new(NEW, None)?;
        let wrapped = DataKey::generate()?.wrap(&keys, WorkspaceId::new())?;
        assert_eq!(
            DataKey::unwrap(&keys, WorkspaceId::new(), &wrapped).err(),
            Some(EnvelopeError::Tampered)
        );
        Ok(())
    }

    #[test]
    fn debug_output_never_shows_key_material() -> Result<(), EnvelopeError> {
        assert_eq!(format!("{:?}", DataKey::generate()?), "DataKey([REDACTED])");
        Ok(())
    }
}

//! The content-addressed code store: `<data>/code/<sha256>.wasm`.
//!
//! A blob is written (atomically, synced) before the registry commits the row
//! that references it, so a committed function never lacks its code; a blob
//! left behind by a crash before the commit is unreferenced and removed by
//! [`CodeStore::remove_unreferenced`] at start-up.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::RegistryError;

pub struct CodeStore {
    dir: PathBuf,
}

/// The hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl CodeStore {
    pub fn open(dir: &Path) -> Result<Self, RegistryError> {
        std::fs::create_dir_all(dir).map_err(|e| RegistryError::Io(format!("create {}: {e}", dir.display())))?;
        Ok(CodeStore { dir: dir.to_path_buf() })
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}.wasm"))
    }

    /// Stores `bytes` under their hash (a no-op if present) and returns the hash.
    pub fn put(&self, bytes: &[u8]) -> Result<String, RegistryError> {
        let sha = sha256_hex(bytes);
        let path = self.path(&sha);
        if !path.exists() {
            crate::fsutil::write_atomic(&path, bytes)
                .map_err(|e| RegistryError::Io(format!("store code {sha}: {e}")))?;
        }
        Ok(sha)
    }

    pub fn get(&self, sha256: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(sha256)).ok()
    }

    /// Removes blobs that no row references (and temporary files of
    /// interrupted writes). Returns how many were removed.
    pub fn remove_unreferenced(&self, referenced: &HashSet<String>) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return 0 };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let keep = name.strip_suffix(".wasm").is_some_and(|sha| referenced.contains(sha) && !name.starts_with('.'));
            if !keep && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }
}

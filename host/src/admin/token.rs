//! The admin API's bearer token: generated on first start into
//! `<data>/admin.token` with mode 0600, read by the CLI from the same place.
//! Whoever holds it controls the server, so a token file that its group or
//! others may read or write (unix `mode & 0o077`) is refused, by the server
//! and the CLI alike, with the `chmod` that fixes it.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The token file's name inside the data directory.
pub const TOKEN_FILE: &str = "admin.token";

/// What is wrong with the token file.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("could not read the admin token in {}: {message}", path.display())]
    Read { path: PathBuf, message: String },
    #[error("could not write the admin token to {}: {message}", path.display())]
    Write { path: PathBuf, message: String },
    #[error("the admin token file {} is empty", path.display())]
    Empty { path: PathBuf },
    #[error(
        "the admin token file {p} is readable or writable by group or others (mode {mode:03o}), and whoever \
         reads it controls the server: run `chmod 600 {p}`",
        p = path.display()
    )]
    OpenToOthers { path: PathBuf, mode: u32 },
}

pub fn token_path(data_dir: &Path) -> PathBuf {
    data_dir.join(TOKEN_FILE)
}

/// Reads the token, creating it (random, 0600) if there is none.
pub fn load_or_create(data_dir: &Path) -> Result<String, TokenError> {
    let path = token_path(data_dir);
    match read_private(&path) {
        Ok(token) if !token.is_empty() => return Ok(token),
        // An empty file (a crash between creating and writing it) is written again.
        Ok(_) => {}
        Err(TokenError::Read { .. }) if !path.exists() => {}
        Err(e) => return Err(e),
    }
    let write_error = |e: std::io::Error| TokenError::Write { path: path.clone(), message: e.to_string() };
    crate::fsutil::create_private_dir(data_dir).map_err(write_error)?;
    let token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path).map_err(write_error)?;
    file.write_all(token.as_bytes()).map_err(write_error)?;
    file.sync_all().map_err(write_error)?;
    Ok(token)
}

/// Reads an existing token.
pub fn read(data_dir: &Path) -> Result<String, TokenError> {
    let path = token_path(data_dir);
    let token = read_private(&path)?;
    if token.is_empty() {
        return Err(TokenError::Empty { path });
    }
    Ok(token)
}

/// The file's content, trimmed, once its mode is checked.
fn read_private(path: &Path) -> Result<String, TokenError> {
    let read_error = |e: std::io::Error| TokenError::Read { path: path.to_path_buf(), message: e.to_string() };
    if let Some(mode) = crate::fsutil::open_to_others(path).map_err(read_error)? {
        return Err(TokenError::OpenToOthers { path: path.to_path_buf(), mode });
    }
    Ok(std::fs::read_to_string(path).map_err(read_error)?.trim().to_string())
}

/// Compares in time independent of where the strings differ.
pub fn matches(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_token_open_to_others_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let token = load_or_create(&data).unwrap();
        let path = token_path(&data);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(read(&data).unwrap(), token);
        assert_eq!(load_or_create(&data).unwrap(), token, "an existing token is kept");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        for e in [read(&data).unwrap_err(), load_or_create(&data).unwrap_err()] {
            assert!(matches!(e, TokenError::OpenToOthers { mode: 0o644, .. }), "{e:?}");
            let message = e.to_string();
            assert!(message.contains(&format!("run `chmod 600 {}`", path.display())), "{message}");
            assert!(message.contains("mode 644"), "{message}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read(&data).unwrap(), token);
    }

    #[test]
    fn a_missing_or_empty_token() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(read(dir.path()).unwrap_err(), TokenError::Read { .. }));
        let path = token_path(dir.path());
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(read(dir.path()).unwrap_err(), TokenError::Empty { .. }));
        let token = load_or_create(dir.path()).unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(read(dir.path()).unwrap(), token);
    }
}

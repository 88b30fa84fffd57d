//! Small filesystem helpers: durable writes, a private directory, and an
//! exclusive lock file.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` so that readers see either the old file or the
/// whole new one, even across a crash: temporary file, fsync, rename, fsync of
/// the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        uuid::Uuid::new_v4().simple()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Creates `dir` private to its owner (mode 0700 on unix), and its missing
/// parents as `create_dir_all` would. An existing directory is left as it is.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    match builder.create(dir) {
        // Created meanwhile by someone else: as if it had been there.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        other => other,
    }
}

/// The permission bits of `path` that let its group or others in (unix
/// `mode & 0o077`), with the whole mode: `Some(mode)` when there are any.
/// Always `None` elsewhere.
pub fn open_to_others(path: &Path) -> std::io::Result<Option<u32>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        Ok((mode & 0o077 != 0).then_some(mode))
    }
    #[cfg(not(unix))]
    {
        std::fs::metadata(path).map(|_| None)
    }
}

/// An exclusive lock on a file (`File::try_lock`: advisory, released when
/// dropped or when the process ends, however it ends). The holder may write
/// a note about itself into the file for whoever finds it locked.
#[derive(Debug)]
pub struct LockFile {
    file: File,
    path: PathBuf,
}

impl LockFile {
    /// Locks `path` (created if missing, its content kept). `Ok(Err(note))`
    /// when another holder has it: `note` is what that holder wrote.
    pub fn try_acquire(path: &Path) -> std::io::Result<Result<LockFile, String>> {
        let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Ok(LockFile { file, path: path.to_path_buf() })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(Err(std::fs::read_to_string(path).unwrap_or_default())),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }

    /// Replaces the file's content with `note`.
    pub fn write_note(&self, note: &str) -> std::io::Result<()> {
        let mut file = &self.file;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(note.as_bytes())?;
        file.set_len(note.len() as u64)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_is_exclusive_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let first = LockFile::try_acquire(&path).unwrap().unwrap();
        first.write_note("pid 1, a longer note").unwrap();
        first.write_note("pid 1").unwrap();
        // Another open file description is refused, even in this process.
        assert_eq!(LockFile::try_acquire(&path).unwrap().unwrap_err(), "pid 1");
        drop(first);
        let again = LockFile::try_acquire(&path).unwrap().unwrap();
        assert_eq!(again.path(), path);
    }

    #[cfg(unix)]
    #[test]
    fn a_private_dir_is_0700_and_modes_open_to_others_are_found() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("a/b");
        create_private_dir(&private).unwrap();
        create_private_dir(&private).unwrap();
        assert_eq!(std::fs::metadata(&private).unwrap().permissions().mode() & 0o777, 0o700);
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        for (mode, open) in [(0o600, None), (0o400, None), (0o640, Some(0o640)), (0o602, Some(0o602))] {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(open_to_others(&file).unwrap(), open, "{mode:o}");
        }
    }
}

//! Where a dump is written: a file replaced atomically, or stdout.
//!
//! [`AtomicFile`] writes to a temporary file beside the target path (same
//! directory, so the final `rename` cannot cross filesystems), created with
//! mode 0600 because a dump holds the whole database. Only [`AtomicFile::commit`]
//! makes the dump visible: flush, fsync the file, rename over the path, fsync
//! the directory so the rename itself survives a crash. Dropping it without
//! commit (an error, a panic unwinding, Ctrl-C handled by the engine) removes
//! the temporary file, so last night's backup is either replaced by a whole
//! new dump or not touched at all.
//!
//! Not owned here: signal handling (the engine must unwind, not `exit`, for
//! `Drop` to run; a SIGKILL leaves a `.name.rump-tmp-*` file behind, which is
//! harmless and recognisable), and choosing the format (mod.rs).

use std::collections::hash_map::RandomState;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, ErrorKind, Stdout, Write};
use std::path::{Path, PathBuf};

use super::DumpError;

/// A file being written beside `path`, renamed over it on [`commit`](Self::commit).
#[derive(Debug)]
pub struct AtomicFile {
    file: File,
    path: PathBuf,
    temp: PathBuf,
    committed: bool,
}

impl AtomicFile {
    /// Create the temporary file `.<name>.rump-tmp-<pid>-<random>` in the
    /// directory of `path`, mode 0600 (umask may only remove bits).
    ///
    /// # Errors
    /// `InvalidInput` if `path` has no file name or is a directory (found
    /// now, not by the final rename after the whole database was read);
    /// otherwise whatever the directory refuses (missing, not writable).
    pub fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let Some(name) = path.file_name() else {
            return Err(io::Error::new(
                ErrorKind::InvalidInput,
                "dump path has no file name",
            ));
        };
        if fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
            return Err(io::Error::new(ErrorKind::InvalidInput, "is a directory"));
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut attempts = 0;
        loop {
            let mut temp_name = OsString::from(".");
            temp_name.push(name);
            temp_name.push(format!(
                ".rump-tmp-{}-{:016x}",
                std::process::id(),
                random()
            ));
            let temp = dir.join(temp_name);
            let mut opts = OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            match opts.open(&temp) {
                Ok(file) => {
                    return Ok(Self {
                        file,
                        path,
                        temp,
                        committed: false,
                    })
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists && attempts < 8 => attempts += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// The path the dump will have once committed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The temporary file being written.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Make the dump durable and visible: flush, fsync, rename over the
    /// target path, fsync the directory.
    ///
    /// # Errors
    /// Any failing step; the temporary file is then removed and the old file
    /// at `path` is untouched (unless the failure was the directory fsync,
    /// after the rename).
    pub fn commit(mut self) -> io::Result<()> {
        self.file.flush()?;
        self.file.sync_all()?;
        fs::rename(&self.temp, &self.path)?;
        self.committed = true;
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.file.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: nothing useful can be done about a failure here,
            // and the name marks the file as a leftover.
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// 64 random-enough bits for a temporary name without a `rand` dependency:
/// std seeds each `RandomState` from the OS once per process and varies it
/// per instance. `create_new` makes a collision an error, and we retry.
fn random() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// The destination of a dump as the user named it: `-` is stdout, streamed
/// directly (no temporary file, nothing to rename); anything else is an
/// [`AtomicFile`].
#[derive(Debug)]
pub enum Output {
    /// A file replaced atomically on commit.
    File(AtomicFile),
    /// Standard output.
    Stdout(Stdout),
}

impl Output {
    /// Open `path` for writing a dump (`-` = stdout).
    ///
    /// # Errors
    /// [`DumpError::Io`] naming the file when the temporary file cannot be created.
    pub fn create(path: &str) -> Result<Self, DumpError> {
        if path == "-" {
            return Ok(Self::Stdout(io::stdout()));
        }
        AtomicFile::create(path)
            .map(Self::File)
            .map_err(|e| DumpError::io(path, "create", None, e))
    }

    /// Finish: commit the file, or flush stdout.
    ///
    /// # Errors
    /// [`DumpError::Io`] naming the file; for stdout the source may be
    /// `BrokenPipe`, which `main` treats as a clean exit.
    pub fn commit(self, name: &str) -> Result<(), DumpError> {
        match self {
            Self::File(f) => f
                .commit()
                .map_err(|e| DumpError::io(name, "commit", None, e)),
            Self::Stdout(mut s) => s.flush().map_err(|e| DumpError::io(name, "write", None, e)),
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::File(f) => f.write(buf),
            Self::Stdout(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Self::File(f) => f.write_vectored(bufs),
            Self::Stdout(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::File(f) => f.flush(),
            Self::Stdout(s) => s.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".rump-tmp-"))
            .collect()
    }

    #[test]
    fn temp_file_is_beside_the_target_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backup.rump");
        let f = AtomicFile::create(&path).unwrap();
        assert_eq!(f.temp_path().parent(), Some(dir.path()));
        let name = f
            .temp_path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(name.starts_with(".backup.rump.rump-tmp-"), "{name}");
        let mode = fs::metadata(f.temp_path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        f.commit().unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn commit_replaces_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backup.rump");
        fs::write(&path, b"last night").unwrap();
        let mut f = AtomicFile::create(&path).unwrap();
        f.write_all(b"tonight").unwrap();
        assert_eq!(
            fs::read(&path).unwrap(),
            b"last night",
            "not visible before commit"
        );
        f.commit().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"tonight");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn drop_without_commit_leaves_the_old_file_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backup.rump");
        fs::write(&path, b"last night").unwrap();
        {
            let mut f = AtomicFile::create(&path).unwrap();
            f.write_all(b"half a dump").unwrap();
            assert_eq!(leftovers(dir.path()).len(), 1);
        }
        assert_eq!(fs::read(&path).unwrap(), b"last night");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn drop_without_commit_creates_nothing_when_there_was_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.rump");
        drop(AtomicFile::create(&path).unwrap());
        assert!(!path.exists());
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn relative_path_without_directory_uses_the_current_one() {
        let f = AtomicFile::create("x.rump").unwrap();
        assert_eq!(f.temp_path().parent(), Some(Path::new(".")));
        // Dropped uncommitted: nothing is left in the working directory.
        let temp = f.temp_path().to_path_buf();
        drop(f);
        assert!(!temp.exists());
    }

    #[test]
    fn a_directory_is_refused_at_create_not_at_commit() {
        let dir = tempfile::tempdir().unwrap();
        let e = Output::create(&dir.path().to_string_lossy()).unwrap_err();
        assert!(
            e.to_string().ends_with(": create failed: is a directory"),
            "{e}"
        );
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn missing_directory_is_an_error_naming_the_file() {
        let e = Output::create("/nonexistent-rump-dir/x.rump").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("dump file \"/nonexistent-rump-dir/x.rump\": create failed: "),
            "{e}"
        );
        assert!(AtomicFile::create("/").is_err());
    }
}

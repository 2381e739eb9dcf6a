//! Where a dump is written: a regular file replaced atomically, a device or
//! FIFO written in place, or stdout.
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
//! A symbolic link is followed first: the file it points at is the one
//! replaced (the temporary file goes beside it), so the link stays a link. A
//! target that exists and is not a regular file (`/dev/null`, a tape, a FIFO
//! a compressor reads from) cannot be replaced by renaming: renaming over a
//! device node would swap it for a regular file. [`Output`] opens those and
//! writes into them directly, as a shell redirection would.
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

/// Most symbolic links followed to find the file a dump path names (Linux's
/// own limit for one path lookup).
const MAX_LINKS: usize = 40;

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
    /// directory of `path`, mode 0600 (umask may only remove bits). If
    /// `path` is a symbolic link (even a dangling one), the file it points at
    /// is the one that will be replaced, and the temporary file goes beside
    /// that file.
    ///
    /// # Errors
    /// `InvalidInput` if `path` has no file name, is a directory or another
    /// file that is not a regular one, or is a loop of links (all found now,
    /// not by the final rename after the whole database was read); otherwise
    /// whatever the directory refuses (missing, not writable).
    pub fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = resolve_links(path.as_ref())?;
        let Some(name) = path.file_name() else {
            return Err(io::Error::new(
                ErrorKind::InvalidInput,
                "dump path has no file name",
            ));
        };
        match fs::metadata(&path) {
            Ok(m) if m.is_dir() => {
                return Err(io::Error::new(ErrorKind::InvalidInput, "is a directory"))
            }
            Ok(m) if !m.is_file() => {
                return Err(io::Error::new(
                    ErrorKind::InvalidInput,
                    "is not a regular file, so it cannot be replaced",
                ))
            }
            _ => {}
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

    /// The path the dump will have once committed (symbolic links followed).
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

/// `path` with symbolic links followed until it names something that is not
/// a link, or nothing: a dangling link resolves to the path it points at.
/// A relative link target is taken from the link's own directory. Only the
/// last component is resolved; the directories on the way are left to the
/// kernel, which resolves them the same way for the temporary file.
fn resolve_links(path: &Path) -> io::Result<PathBuf> {
    let mut path = path.to_path_buf();
    for _ in 0..=MAX_LINKS {
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = fs::read_link(&path)?;
                // An absolute `to` replaces the whole path in `join`.
                path = match path.parent() {
                    Some(dir) => dir.join(to),
                    None => to,
                };
            }
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
            _ => return Ok(path),
        }
    }
    Err(io::Error::new(
        ErrorKind::InvalidInput,
        format!("more than {MAX_LINKS} levels of symbolic links"),
    ))
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
/// directly (no temporary file, nothing to rename); an existing file that is
/// not a regular one (a device, a FIFO), possibly through symbolic links, is
/// written in place; anything else is an [`AtomicFile`].
#[derive(Debug)]
pub enum Output {
    /// A regular file replaced atomically on commit.
    File(AtomicFile),
    /// A device or FIFO, opened for writing and written in place.
    Direct(File),
    /// Standard output.
    Stdout(Stdout),
}

impl Output {
    /// Open `path` for writing a dump (`-` = stdout). Opening a FIFO waits
    /// until something opens it for reading, as a shell redirection does.
    ///
    /// # Errors
    /// [`DumpError::Io`] naming the file when the temporary file cannot be
    /// created or the device cannot be opened.
    pub fn create(path: &str) -> Result<Self, DumpError> {
        if path == "-" {
            return Ok(Self::Stdout(io::stdout()));
        }
        // `metadata` follows links: this is the type of what is written.
        match fs::metadata(path) {
            Ok(m) if !m.is_file() && !m.is_dir() => OpenOptions::new()
                .write(true)
                .open(path)
                .map(Self::Direct)
                .map_err(|e| DumpError::io(path, "open", None, e)),
            _ => AtomicFile::create(path)
                .map(Self::File)
                .map_err(|e| DumpError::io(path, "create", None, e)),
        }
    }

    /// True for an [`AtomicFile`]: nothing reaches `path` before
    /// [`commit`](Self::commit). False when bytes go out as they are written.
    pub fn is_atomic(&self) -> bool {
        matches!(self, Self::File(_))
    }

    /// Finish: commit the file, or flush (and, for a device, fsync) what was
    /// written in place.
    ///
    /// # Errors
    /// [`DumpError::Io`] naming the file. A `BrokenPipe` source means the
    /// reader of stdout or of a FIFO went away: the dump it got is incomplete.
    pub fn commit(self, name: &str) -> Result<(), DumpError> {
        match self {
            Self::File(f) => f
                .commit()
                .map_err(|e| DumpError::io(name, "commit", None, e)),
            Self::Direct(mut f) => {
                f.flush()
                    .map_err(|e| DumpError::io(name, "write", None, e))?;
                match f.sync_all() {
                    // /dev/null and FIFOs have nothing to sync and say so.
                    Err(e)
                        if !matches!(
                            e.kind(),
                            ErrorKind::InvalidInput | ErrorKind::Unsupported
                        ) =>
                    {
                        Err(DumpError::io(name, "commit", None, e))
                    }
                    _ => Ok(()),
                }
            }
            Self::Stdout(mut s) => s.flush().map_err(|e| DumpError::io(name, "write", None, e)),
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::File(f) => f.write(buf),
            Self::Direct(f) => f.write(buf),
            Self::Stdout(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Self::File(f) => f.write_vectored(bufs),
            Self::Direct(f) => f.write_vectored(bufs),
            Self::Stdout(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::File(f) => f.flush(),
            Self::Direct(f) => f.flush(),
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

    #[test]
    fn a_symlink_is_followed_and_stays_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let (data, links) = (dir.path().join("data"), dir.path().join("links"));
        fs::create_dir(&data).unwrap();
        fs::create_dir(&links).unwrap();
        fs::write(data.join("real.rump"), b"last night").unwrap();
        let link = links.join("latest.rump");
        std::os::unix::fs::symlink("../data/real.rump", &link).unwrap();
        let mut f = AtomicFile::create(&link).unwrap();
        assert_eq!(f.path(), links.join("../data/real.rump"));
        assert_eq!(f.temp_path().parent(), Some(&*links.join("../data")));
        f.write_all(b"tonight").unwrap();
        f.commit().unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(fs::read(data.join("real.rump")).unwrap(), b"tonight");
        assert!(leftovers(&data).is_empty() && leftovers(&links).is_empty());

        // A dangling link, through a second link: the file is created.
        std::os::unix::fs::symlink(data.join("new.rump"), links.join("hop")).unwrap();
        std::os::unix::fs::symlink("hop", links.join("next.rump")).unwrap();
        let mut out = Output::create(&links.join("next.rump").to_string_lossy()).unwrap();
        assert!(out.is_atomic());
        out.write_all(b"first").unwrap();
        out.commit("next.rump").unwrap();
        assert_eq!(fs::read(data.join("new.rump")).unwrap(), b"first");
        assert!(fs::symlink_metadata(links.join("next.rump"))
            .unwrap()
            .is_symlink());
    }

    #[test]
    fn a_symlink_loop_is_refused_at_create() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        let e = Output::create(&a.to_string_lossy()).unwrap_err();
        assert!(
            e.to_string().ends_with(&format!(
                "create failed: more than {MAX_LINKS} levels of symbolic links"
            )),
            "{e}"
        );
        // Exactly MAX_LINKS links lead to a file.
        let at = |i: usize| dir.path().join(format!("l{i}"));
        fs::write(at(0), b"").unwrap();
        for i in 1..=MAX_LINKS {
            std::os::unix::fs::symlink(at(i - 1), at(i)).unwrap();
        }
        assert_eq!(resolve_links(&at(MAX_LINKS)).unwrap(), at(0));
        std::os::unix::fs::symlink(at(MAX_LINKS), at(MAX_LINKS + 1)).unwrap();
        assert!(resolve_links(&at(MAX_LINKS + 1)).is_err());
    }

    #[test]
    fn a_fifo_is_written_in_place_never_renamed_over() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let e = AtomicFile::create(&fifo).unwrap_err();
        assert_eq!(
            e.to_string(),
            "is not a regular file, so it cannot be replaced"
        );

        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || tx.send(fs::read(path).unwrap()));
        let mut out = Output::create(&fifo.to_string_lossy()).unwrap();
        assert!(!out.is_atomic());
        out.write_all(b"through the pipe").unwrap();
        // fsync of a FIFO fails with EINVAL: not an error here.
        out.commit("pipe").unwrap();
        let got = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        assert_eq!(got, b"through the pipe");
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
        assert!(leftovers(dir.path()).is_empty());
    }
}

//! `--checkpoint FILE`: how far a run got, so a later run can resume.
//!
//! The file is a few lines of text (readable, diffable, and hand-editable in
//! an emergency), written atomically with mode 0600 by the same machinery as
//! dump files:
//!
//! ```text
//! rump-checkpoint 1
//! source 10.0.0.1:6379/0
//! match 757365723a2a
//! type -
//! slots 0-5460
//! copied 123456
//! node 10.0.0.1:6379 run_id 5d1e... db 0 cursor 81920
//! ```
//!
//! `source`, `match` (hex, so any bytes survive), `type` and `slots` are the key
//! selection: a run whose selection differs would resume into the wrong
//! keys, so it is refused (exit 2). A `node` line per source node records
//! its run_id and the last cursor all of whose keys the target acknowledged.
//! `copied` is the total over every run that wrote the file, for the resume
//! message.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::dump::AtomicFile;
use crate::engine::ledger::NodeProgress;
use crate::error::Error;

const MAGIC: &str = "rump-checkpoint 1";

/// What selects the keys of a run: a checkpoint only fits the same selection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// The source endpoint as messages name it (`host:port[/db]`).
    pub source: String,
    pub match_pattern: Option<Vec<u8>>,
    pub key_type: Option<String>,
    /// `--slots`/`--partition`, as slot ranges (`0-5460,10923`).
    pub slots: Option<String>,
}

/// A checkpoint file's contents.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checkpoint {
    pub selection: Selection,
    /// Keys copied by all the runs that wrote this file.
    pub copied: u64,
    pub nodes: Vec<NodeProgress>,
}

impl Checkpoint {
    /// The file's text.
    pub fn render(&self) -> String {
        let s = &self.selection;
        let mut out = format!("{MAGIC}\nsource {}\n", s.source);
        out.push_str(&format!(
            "match {}\n",
            s.match_pattern.as_deref().map_or("-".into(), hex)
        ));
        out.push_str(&format!("type {}\n", s.key_type.as_deref().unwrap_or("-")));
        out.push_str(&format!("slots {}\n", s.slots.as_deref().unwrap_or("-")));
        out.push_str(&format!("copied {}\n", self.copied));
        for n in &self.nodes {
            let cursor = if n.complete { "done" } else { &n.cursor };
            out.push_str(&format!(
                "node {} run_id {} db {} cursor {cursor}\n",
                n.name, n.run_id, n.db
            ));
        }
        out
    }

    /// Parses a checkpoint file's text; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Checkpoint, String> {
        let mut lines = text.lines();
        if lines.next() != Some(MAGIC) {
            return Err(format!(
                "is not a rump checkpoint (it does not start with {MAGIC:?})"
            ));
        }
        let mut cp = Checkpoint::default();
        for (i, line) in lines.enumerate() {
            let bad = || format!("line {}: cannot read {line:?}", i + 2);
            let (field, value) = line.split_once(' ').ok_or_else(bad)?;
            match field {
                "source" => cp.selection.source = value.to_string(),
                "match" if value == "-" => {}
                "match" => cp.selection.match_pattern = Some(unhex(value).ok_or_else(bad)?),
                "type" if value == "-" => {}
                "type" => cp.selection.key_type = Some(value.to_string()),
                "slots" if value == "-" => {}
                "slots" => cp.selection.slots = Some(value.to_string()),
                "copied" => cp.copied = value.parse().map_err(|_| bad())?,
                "node" => cp.nodes.push(parse_node(value).ok_or_else(bad)?),
                _ => return Err(bad()),
            }
        }
        if cp.selection.source.is_empty() || cp.nodes.is_empty() {
            return Err("is incomplete (no source or no node line)".into());
        }
        Ok(cp)
    }
}

fn parse_node(value: &str) -> Option<NodeProgress> {
    let parts: Vec<&str> = value.split(' ').collect();
    let [name, "run_id", run_id, "db", db, "cursor", cursor] = parts[..] else {
        return None;
    };
    let complete = cursor == "done";
    if !complete && cursor.parse::<u64>().is_err() {
        return None;
    }
    Some(NodeProgress {
        name: name.to_string(),
        run_id: run_id.to_string(),
        db: db.parse().ok()?,
        cursor: if complete {
            "0".into()
        } else {
            cursor.to_string()
        },
        complete,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Where a run's checkpoint lives, and what it resumed from.
#[derive(Debug)]
pub struct CheckpointFile {
    path: PathBuf,
    selection: Selection,
    /// What an earlier run had recorded, if the file existed.
    pub resumed: Option<Checkpoint>,
}

impl CheckpointFile {
    /// Opens `path` for a run with `selection`: reads what an earlier run
    /// left there (a usage error when it was written for another selection),
    /// or nothing when the file does not exist yet.
    pub fn open(path: &Path, selection: Selection) -> Result<CheckpointFile, Error> {
        let name = path.display();
        let resumed = match std::fs::read_to_string(path) {
            Ok(text) => {
                let cp = Checkpoint::parse(&text)
                    .map_err(|e| Error::Usage(format!("--checkpoint {name} {e}")))?;
                if cp.selection != selection {
                    return Err(Error::Usage(format!(
                        "--checkpoint {name} was written for {}, not for this run's {}: \
                         give another file, or remove it to start over",
                        describe(&cp.selection),
                        describe(&selection)
                    )));
                }
                Some(cp)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(Error::Usage(format!(
                    "--checkpoint {name}: cannot read it: {e}"
                )))
            }
        };
        Ok(CheckpointFile {
            path: path.to_path_buf(),
            selection,
            resumed,
        })
    }

    /// Where a node's scan resumes: its recorded cursor, when the node is the
    /// same server (same run_id) and db; `None` to start from the beginning.
    pub fn resume_cursor(&self, name: &str, run_id: &str, db: u32) -> Option<&NodeProgress> {
        self.resumed
            .as_ref()?
            .nodes
            .iter()
            .find(|n| n.name == name && n.run_id == run_id && n.db == db)
    }

    /// Keys the earlier runs copied.
    pub fn copied_before(&self) -> u64 {
        self.resumed.as_ref().map_or(0, |c| c.copied)
    }

    /// Writes the progress now (atomically, mode 0600).
    pub fn write(&self, nodes: Vec<NodeProgress>, copied_now: u64) -> Result<(), Error> {
        let cp = Checkpoint {
            selection: self.selection.clone(),
            copied: self.copied_before() + copied_now,
            nodes,
        };
        let io = |e: std::io::Error| {
            Error::Setup(std::io::Error::new(
                e.kind(),
                format!("cannot write checkpoint {}: {e}", self.path.display()),
            ))
        };
        let mut file = AtomicFile::create(&self.path).map_err(io)?;
        file.write_all(cp.render().as_bytes()).map_err(io)?;
        file.commit().map_err(io)
    }

    /// The run completed: the checkpoint has nothing left to say.
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn describe(s: &Selection) -> String {
    let mut text = format!("-from {}", s.source);
    if let Some(m) = &s.match_pattern {
        text.push_str(&format!(" --match {:?}", String::from_utf8_lossy(m)));
    }
    if let Some(t) = &s.key_type {
        text.push_str(&format!(" --type {t}"));
    }
    if let Some(slots) = &s.slots {
        text.push_str(&format!(" --slots {slots}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            selection: Selection {
                source: "127.0.0.1:6379/2".into(),
                match_pattern: Some(b"user:\xff*".to_vec()),
                key_type: Some("hash".into()),
                slots: Some("0-5460,10923".into()),
            },
            copied: 12,
            nodes: vec![NodeProgress {
                name: "127.0.0.1:6379".into(),
                run_id: "abc".into(),
                db: 2,
                cursor: "4096".into(),
                complete: false,
            }],
        }
    }

    #[test]
    fn a_checkpoint_survives_its_text_form() {
        let cp = sample();
        assert_eq!(Checkpoint::parse(&cp.render()), Ok(cp.clone()));
        let mut done = cp;
        done.nodes[0].complete = true;
        done.nodes[0].cursor = "0".into();
        assert!(done.render().contains("cursor done"));
        assert_eq!(Checkpoint::parse(&done.render()), Ok(done));
    }

    #[test]
    fn damaged_checkpoints_are_refused() {
        assert!(Checkpoint::parse("").is_err());
        assert!(Checkpoint::parse("hello\n").is_err());
        let text = sample().render();
        assert!(Checkpoint::parse(&text.replace("cursor 4096", "cursor x")).is_err());
        assert!(Checkpoint::parse(&text.replace("match 75", "match 7")).is_err());
        assert!(Checkpoint::parse(&format!("{text}bogus 1\n")).is_err());
        assert!(Checkpoint::parse(MAGIC).is_err());
    }

    #[test]
    fn a_file_for_another_selection_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        let cp = sample();
        std::fs::write(&path, cp.render()).unwrap();
        let same = CheckpointFile::open(&path, cp.selection.clone()).unwrap();
        assert!(same.resume_cursor("127.0.0.1:6379", "abc", 2).is_some());
        assert!(same
            .resume_cursor("127.0.0.1:6379", "restarted", 2)
            .is_none());
        let mut other = cp.selection;
        other.key_type = None;
        let e = CheckpointFile::open(&path, other).unwrap_err();
        assert!(matches!(e, Error::Usage(_)), "{e}");
        assert!(e.to_string().contains("--type hash"), "{e}");
    }

    #[test]
    fn written_atomically_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        let file = CheckpointFile::open(&path, sample().selection).unwrap();
        assert!(file.resumed.is_none());
        file.write(sample().nodes, 5).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let back = CheckpointFile::open(&path, sample().selection).unwrap();
        assert_eq!(back.copied_before(), 5);
        back.remove();
        assert!(!path.exists());
    }
}

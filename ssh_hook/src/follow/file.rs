//! Following a log file (`/var/log/auth.log`) across rotation, resuming
//! from a saved position.
//!
//! - rename-and-create (logrotate's default): the path names a new inode;
//!   the old file is read to its end first, then the new one from its start.
//! - copytruncate: the same inode shrinks below our offset; read from 0.
//! - resume: a saved `(inode, offset)` on the same inode continues there;
//!   on another inode (rotated while we were down) the new file is read
//!   from its start.
//! - first start without a saved position: from the end (old history is
//!   not replayed as fresh failures).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where a follower is: the file's inode and the offset after the last
/// whole line handed out. Saved as text by the daemon (`inode:offset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The inode of the file read.
    pub inode: u64,
    /// Bytes consumed: the start of the first line not yet handed out.
    pub offset: u64,
}

impl Position {
    /// `inode:offset`.
    pub fn to_text(self) -> String {
        format!("{}:{}", self.inode, self.offset)
    }

    /// Parses [`Position::to_text`]'s form.
    pub fn from_text(text: &str) -> Option<Position> {
        let (inode, offset) = text.split_once(':')?;
        Some(Position {
            inode: inode.parse().ok()?,
            offset: offset.parse().ok()?,
        })
    }
}

/// The longest line kept; longer lines are cut (sshd lines are far shorter).
const MAX_LINE: usize = 16 * 1024;

/// Follows one path.
#[derive(Debug)]
pub struct FileFollower {
    path: PathBuf,
    file: Option<File>,
    position: Position,
    /// A line whose end has not been written yet (capped at `MAX_LINE`)…
    partial: Vec<u8>,
    /// …and its length in the file.
    partial_bytes: u64,
    buffer: Vec<u8>,
}

impl FileFollower {
    /// Starts following `path`, from `resume` if it still applies, else
    /// from the end of the current file. A missing file is not an error:
    /// it is picked up when it appears.
    pub fn new(path: &Path, resume: Option<Position>) -> FileFollower {
        let mut f = FileFollower {
            path: path.to_owned(),
            file: None,
            position: Position {
                inode: 0,
                offset: 0,
            },
            partial: Vec::new(),
            partial_bytes: 0,
            buffer: vec![0; 64 * 1024],
        };
        if let Ok(file) = File::open(path)
            && let Ok(meta) = file.metadata()
        {
            let offset = match resume {
                Some(p) if p.inode == meta.ino() && p.offset <= meta.len() => p.offset,
                Some(_) => 0,
                None => meta.len(),
            };
            f.attach(file, meta.ino(), offset);
        }
        f
    }

    /// The path followed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The position after the last line handed out.
    pub fn position(&self) -> Position {
        self.position
    }

    /// Hands out up to `max_lines` whole new lines (without their `\n`);
    /// returns how many. Call again while it returns `max_lines`.
    pub fn poll(&mut self, max_lines: usize, mut line: impl FnMut(&[u8])) -> io::Result<usize> {
        let mut handed = 0;
        while handed < max_lines {
            if self.file.is_none() && !self.reopen()? {
                break;
            }
            let n = self.read_some(max_lines - handed, &mut line)?;
            handed += n;
            if n == 0 && !self.switch_if_rotated()? {
                break;
            }
        }
        Ok(handed)
    }

    fn attach(&mut self, mut file: File, inode: u64, offset: u64) {
        if file.seek(SeekFrom::Start(offset)).is_ok() {
            self.file = Some(file);
            self.position = Position { inode, offset };
            self.partial.clear();
            self.partial_bytes = 0;
        }
    }

    /// Opens the path if it exists now (after a rotation or a late start).
    fn reopen(&mut self) -> io::Result<bool> {
        match File::open(&self.path) {
            Ok(file) => {
                let inode = file.metadata()?.ino();
                self.attach(file, inode, 0);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// At the end of the open file: moves to the path's new file if it was
    /// rotated, or back to 0 if it was truncated. True when there may be more.
    fn switch_if_rotated(&mut self) -> io::Result<bool> {
        let Some(file) = &self.file else {
            return Ok(false);
        };
        let open_len = file.metadata()?.len();
        if open_len < self.position.offset + self.partial_bytes {
            // copytruncate: same file, shorter than what we read.
            let inode = self.position.inode;
            if let Some(file) = self.file.take() {
                self.attach(file, inode, 0);
            }
            return Ok(true);
        }
        match std::fs::metadata(&self.path) {
            Ok(meta) if meta.ino() != self.position.inode => {
                // The old file was read to its end above: a partial last line stays unfinished.
                self.file = None;
                self.reopen()
            }
            _ => Ok(false),
        }
    }

    /// Reads what is there and hands out whole lines; returns how many.
    fn read_some(&mut self, max_lines: usize, line: &mut impl FnMut(&[u8])) -> io::Result<usize> {
        let FileFollower {
            file: Some(file),
            position,
            partial,
            partial_bytes,
            buffer,
            ..
        } = self
        else {
            return Ok(0);
        };
        let mut handed = 0;
        while handed < max_lines {
            let n = file.read(buffer)?;
            if n == 0 {
                break;
            }
            let mut start = 0;
            for at in (0..n).filter(|&i| buffer[i] == b'\n') {
                let piece = &buffer[start..at];
                if partial.is_empty() && *partial_bytes == 0 {
                    line(&piece[..piece.len().min(MAX_LINE)]);
                } else {
                    extend_capped(partial, piece);
                    line(partial);
                    partial.clear();
                }
                position.offset += *partial_bytes + (at + 1 - start) as u64;
                *partial_bytes = 0;
                start = at + 1;
                handed += 1;
                if handed == max_lines {
                    break;
                }
            }
            if handed == max_lines && start < n {
                // Give back what follows the last line handed out.
                file.seek(SeekFrom::Current(-i64::try_from(n - start).unwrap_or(0)))?;
                break;
            }
            extend_capped(partial, &buffer[start..n]);
            *partial_bytes += (n - start) as u64;
        }
        Ok(handed)
    }
}

fn extend_capped(partial: &mut Vec<u8>, more: &[u8]) {
    let room = MAX_LINE.saturating_sub(partial.len());
    partial.extend_from_slice(&more[..more.len().min(room)]);
}

#[cfg(test)]
mod tests;

use super::*;
use std::io::Write;

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("ag-follow-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
    fn log(&self) -> PathBuf {
        self.0.join("auth.log")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn drain(f: &mut FileFollower) -> Vec<String> {
    let mut lines = Vec::new();
    f.poll(usize::MAX, |l| {
        lines.push(String::from_utf8_lossy(l).into_owned())
    })
    .unwrap();
    lines
}

#[test]
fn starts_at_the_end_then_hands_out_whole_lines_only() {
    let d = Dir::new("end");
    append(&d.log(), "old 1\nold 2\n");
    let mut f = FileFollower::new(&d.log(), None);
    assert!(drain(&mut f).is_empty(), "history is not replayed");
    append(&d.log(), "new 1\nnew 2 is half");
    assert_eq!(drain(&mut f), ["new 1"]);
    append(&d.log(), " done\n");
    assert_eq!(drain(&mut f), ["new 2 is half done"]);
    assert_eq!(
        f.position().offset,
        std::fs::metadata(d.log()).unwrap().len()
    );
}

#[test]
fn follows_rename_and_create_reading_the_old_file_to_its_end() {
    let d = Dir::new("rename");
    append(&d.log(), "");
    let mut f = FileFollower::new(&d.log(), None);
    append(&d.log(), "a\n");
    assert_eq!(drain(&mut f), ["a"]);
    append(&d.log(), "b written just before rotation\n");
    std::fs::rename(d.log(), d.0.join("auth.log.1")).unwrap();
    append(&d.log(), "c in the new file\n");
    assert_eq!(
        drain(&mut f),
        ["b written just before rotation", "c in the new file"]
    );
}

#[test]
fn follows_copytruncate() {
    let d = Dir::new("truncate");
    append(&d.log(), "");
    let mut f = FileFollower::new(&d.log(), None);
    append(&d.log(), "before the copy\n");
    assert_eq!(drain(&mut f), ["before the copy"]);
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(d.log())
        .unwrap();
    append(&d.log(), "after\n");
    assert_eq!(drain(&mut f), ["after"]);
}

#[test]
fn resumes_from_a_saved_position_without_loss_or_repeat() {
    let d = Dir::new("resume");
    append(&d.log(), "");
    let mut f = FileFollower::new(&d.log(), None);
    append(&d.log(), "1\n2\n3\n");
    let mut first = Vec::new();
    assert_eq!(f.poll(2, |l| first.push(l.to_vec())).unwrap(), 2);
    let saved = Position::from_text(&f.position().to_text()).unwrap();
    drop(f);
    append(&d.log(), "4\n");
    let mut g = FileFollower::new(&d.log(), Some(saved));
    assert_eq!(drain(&mut g), ["3", "4"]);
    // A position on another inode (rotated while down): the new file from its start.
    std::fs::rename(d.log(), d.0.join("auth.log.1")).unwrap();
    append(&d.log(), "5\n");
    let mut h = FileFollower::new(&d.log(), Some(saved));
    assert_eq!(drain(&mut h), ["5"]);
}

#[test]
fn a_missing_file_is_picked_up_when_it_appears() {
    let d = Dir::new("late");
    let mut f = FileFollower::new(&d.log(), None);
    assert!(drain(&mut f).is_empty());
    append(&d.log(), "first\n");
    assert_eq!(drain(&mut f), ["first"]);
}

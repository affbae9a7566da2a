//! Where a file has been read to, and how the file is recognised again (the checkpoint value).
//!
//! `2:DEVICE:INODE:OFFSET:LINE:FP_LEN:FP:SIZE`: the device and inode, the offset read to (in
//! decompressed bytes for `.gz`), the line that offset starts, a fingerprint (SHA-256, first 8
//! bytes) of the file's first `FP_LEN` bytes, and for a `.gz` file the compressed size once it
//! was read to its end (0 otherwise). The fingerprint tells a file truncated and regrown, or
//! deleted and recreated with the same inode, from the file that was read: the same inode with
//! other first bytes is a new file, read from its start. The older form
//! `DEVICE:INODE:OFFSET:LINE` is still understood (no fingerprint yet; the next commit adds it).

use std::fs::File;
use std::os::unix::fs::FileExt;

use sha2::{Digest, Sha256};

/// How many of a file's first bytes its fingerprint covers.
pub const FINGERPRINT_LEN: u64 = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub device: u64,
    pub inode: u64,
    pub offset: u64,
    pub line: u64,
    pub fp_len: u64,
    pub fp: u64,
    /// A `.gz` file's compressed size when it was read whole; 0 while it is not.
    pub size: u64,
}

impl Mark {
    /// The start of a file not read before.
    pub fn start(device: u64, inode: u64) -> Mark {
        Mark {
            device,
            inode,
            offset: 0,
            line: 1,
            fp_len: 0,
            fp: 0,
            size: 0,
        }
    }

    pub fn parse(text: &str) -> Option<Mark> {
        let parts: Vec<&str> = text.split(':').collect();
        let num = |i: usize| parts.get(i)?.parse::<u64>().ok();
        match parts.len() {
            4 => Some(Mark {
                offset: num(2)?,
                line: num(3)?,
                ..Mark::start(num(0)?, num(1)?)
            }),
            8 if parts[0] == "2" => Some(Mark {
                device: num(1)?,
                inode: num(2)?,
                offset: num(3)?,
                line: num(4)?,
                fp_len: num(5)?,
                fp: u64::from_str_radix(parts[6], 16).ok()?,
                size: num(7)?,
            }),
            _ => None,
        }
    }

    pub fn text(&self) -> String {
        format!(
            "2:{}:{}:{}:{}:{}:{:016x}:{}",
            self.device, self.inode, self.offset, self.line, self.fp_len, self.fp, self.size
        )
    }

    /// Whether `file` (device `device`, inode `inode`) still starts with the bytes this mark
    /// fingerprinted.
    pub fn recognises(&self, file: &File, device: u64, inode: u64) -> bool {
        (self.device, self.inode) == (device, inode)
            && (self.fp_len == 0 || fingerprint(file, self.fp_len) == Some(self.fp))
    }
}

/// The fingerprint of `file`'s first `len` bytes; `None` when it is shorter or unreadable.
pub fn fingerprint(file: &File, len: u64) -> Option<u64> {
    let mut bytes = vec![0; len as usize];
    let mut got = 0;
    while got < bytes.len() {
        match file.read_at(&mut bytes[got..], got as u64) {
            Ok(0) | Err(_) => return None,
            Ok(n) => got += n,
        }
    }
    let digest = Sha256::digest(&bytes);
    Some(u64::from_be_bytes(digest[..8].try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip() {
        let m = Mark {
            device: 1,
            inode: 2,
            offset: 3,
            line: 4,
            fp_len: 5,
            fp: 0xdead_beef,
            size: 7,
        };
        assert_eq!(Mark::parse(&m.text()), Some(m));
        assert_eq!(Mark::parse("garbage"), None);
        assert_eq!(Mark::parse("3:1:2:3:4:5:6:7"), None);
    }

    #[test]
    fn the_old_form_is_understood() {
        let m = Mark::parse("11:22:333:4").unwrap();
        assert_eq!((m.device, m.inode, m.offset, m.line), (11, 22, 333, 4));
        assert_eq!(m.fp_len, 0, "no fingerprint yet");
    }

    #[test]
    fn a_file_with_other_first_bytes_is_not_recognised() {
        use std::os::unix::fs::MetadataExt;
        let path = std::env::temp_dir().join(format!("herald-mark-{}", std::process::id()));
        std::fs::write(&path, b"{\"a\":1}\n").unwrap();
        let file = File::open(&path).unwrap();
        let meta = file.metadata().unwrap();
        let mark = Mark {
            offset: 8,
            fp_len: 8,
            fp: fingerprint(&file, 8).unwrap(),
            ..Mark::start(meta.dev(), meta.ino())
        };
        assert!(mark.recognises(&file, meta.dev(), meta.ino()));
        // Rewritten in place (same inode), other bytes.
        std::fs::write(&path, b"{\"b\":2}\n").unwrap();
        assert!(!mark.recognises(&file, meta.dev(), meta.ino()));
        std::fs::remove_file(&path).unwrap();
    }
}

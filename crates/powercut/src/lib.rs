//! A FUSE filesystem for power-cut tests (test-only). Everything lives in memory; each file
//! and directory keeps two states: what processes see now (live) and what a disk would still
//! hold after losing power (durable). [`PowerCutFs::cut`] freezes the filesystem at once (every
//! later operation fails with `EIO`, as on a dead disk); [`PowerCutFs::restore`] unmounts it
//! and mounts it again showing only the durable state, ready for a restarted broker.
//!
//! The model (strict; what POSIX promises, and what ext4 without `auto_da_alloc` permits):
//! - A file's data (its bytes and its length) becomes durable only by `fsync` or `fdatasync`
//!   of that file (the two are the same here). After a cut a file has exactly its contents
//!   at its last fsync, or is empty if it was never fsynced. `sync_file_range`, `close` and
//!   `flush` make nothing durable.
//! - A directory's entries (names → inodes) become durable only by `fsync` of that
//!   directory. Creating, unlinking or renaming a name is lost at a cut unless the directory
//!   holding the name was fsynced after it: a created file disappears, an unlinked file comes
//!   back (with its own durable data), a rename reverts. A rename across two directories
//!   needs both fsynced; fsyncing only one can leave the inode under both names or neither.
//!   Fsyncing a file does not make its name durable, nor does fsyncing a directory make its
//!   parent's entry for it durable.
//! - After a cut only what is reachable from the root through durable entries exists.
//! - Permissions, owners and timestamps are not modelled for durability (kept as they are).
//! - Open files, locks and in-flight operations die with the cut.

use fuser::{
    BackgroundSession, FileAttr, FileType, Filesystem, MountOption, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

const ROOT: u64 = fuser::FUSE_ROOT_ID;
/// How long the kernel may cache names and attributes. Every change goes through this
/// filesystem and each cut is followed by a fresh mount, so caching is always consistent.
const TTL: Duration = Duration::from_secs(1);
/// Above this many separate dirty ranges an fsync copies the whole file instead.
const DIRTY_RANGES_MAX: usize = 1024;
const BLOCK: u64 = 4096;

/// File bytes: live and durable, and the ranges written since the last fsync.
#[derive(Default)]
struct FileData {
    live: Vec<u8>,
    durable: Vec<u8>,
    /// `(start, end)` byte ranges written since the last fsync (merged when adjacent).
    dirty: Vec<(u64, u64)>,
    all_dirty: bool,
}

impl FileData {
    fn mark(&mut self, start: u64, end: u64) {
        if self.all_dirty || start >= end {
            return;
        }
        if let Some(last) = self.dirty.last_mut() {
            if start <= last.1 && end >= last.0 {
                *last = (last.0.min(start), last.1.max(end));
                return;
            }
        }
        if self.dirty.len() >= DIRTY_RANGES_MAX {
            self.all_dirty = true;
            self.dirty.clear();
        } else {
            self.dirty.push((start, end));
        }
    }

    fn sync(&mut self) {
        if self.all_dirty {
            self.durable.clone_from(&self.live);
        } else {
            let len = self.live.len();
            self.durable.resize(len, 0);
            for &(start, end) in &self.dirty {
                let (s, e) = ((start as usize).min(len), (end as usize).min(len));
                self.durable[s..e].copy_from_slice(&self.live[s..e]);
            }
        }
        self.dirty.clear();
        self.all_dirty = false;
    }

    fn has_unsynced(&self) -> bool {
        self.all_dirty || !self.dirty.is_empty() || self.live.len() != self.durable.len()
    }
}

#[derive(Default)]
struct DirData {
    live: BTreeMap<OsString, u64>,
    durable: BTreeMap<OsString, u64>,
    /// The live parent (for `..`).
    parent: u64,
}

enum Kind {
    File(FileData),
    Dir(DirData),
}

struct Node {
    kind: Kind,
    perm: u16,
    uid: u32,
    gid: u32,
    /// Live names referring to this inode.
    nlink: u32,
    atime: SystemTime,
    mtime: SystemTime,
    ctime: SystemTime,
}

impl Node {
    fn new(kind: Kind, perm: u16, uid: u32, gid: u32) -> Node {
        let now = SystemTime::now();
        Node { kind, perm, uid, gid, nlink: 1, atime: now, mtime: now, ctime: now }
    }
}

/// Counts of what a cut dropped (for test reports).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CutReport {
    /// Files whose live contents differed from their durable contents.
    pub files_reverted: u64,
    /// Directories whose live entries differed from their durable entries.
    pub dirs_reverted: u64,
}

#[derive(Default)]
struct State {
    nodes: HashMap<u64, Node>,
    next_ino: u64,
    /// Set by a cut: the "disk" is gone until `restore`.
    dead: bool,
    /// Bumped by each restore (a new mount).
    generation: u64,
    fsyncs: u64,
}

impl State {
    fn new() -> State {
        let mut nodes = HashMap::new();
        let root = DirData { parent: ROOT, ..DirData::default() };
        let mut node = Node::new(Kind::Dir(root), 0o755, 0, 0);
        node.nlink = 2;
        nodes.insert(ROOT, node);
        State { nodes, next_ino: ROOT + 1, dead: false, generation: 0, fsyncs: 0 }
    }

    fn attr(&self, ino: u64) -> Option<FileAttr> {
        let node = self.nodes.get(&ino)?;
        let (kind, size) = match &node.kind {
            Kind::File(f) => (FileType::RegularFile, f.live.len() as u64),
            Kind::Dir(d) => (FileType::Directory, d.live.len() as u64),
        };
        Some(FileAttr {
            ino,
            size,
            blocks: size.div_ceil(512),
            atime: node.atime,
            mtime: node.mtime,
            ctime: node.ctime,
            crtime: node.ctime,
            kind,
            perm: node.perm,
            nlink: node.nlink,
            uid: node.uid,
            gid: node.gid,
            rdev: 0,
            blksize: BLOCK as u32,
            flags: 0,
        })
    }

    fn dir(&mut self, ino: u64) -> Result<&mut DirData, i32> {
        match self.nodes.get_mut(&ino).map(|n| &mut n.kind) {
            Some(Kind::Dir(d)) => Ok(d),
            Some(Kind::File(_)) => Err(libc::ENOTDIR),
            None => Err(libc::ENOENT),
        }
    }

    fn file(&mut self, ino: u64) -> Result<&mut FileData, i32> {
        match self.nodes.get_mut(&ino).map(|n| &mut n.kind) {
            Some(Kind::File(f)) => Ok(f),
            Some(Kind::Dir(_)) => Err(libc::EISDIR),
            None => Err(libc::ENOENT),
        }
    }

    fn lookup(&mut self, parent: u64, name: &OsStr) -> Result<u64, i32> {
        self.dir(parent)?.live.get(name).copied().ok_or(libc::ENOENT)
    }

    fn touch(&mut self, ino: u64) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            let now = SystemTime::now();
            n.mtime = now;
            n.ctime = now;
        }
    }

    /// Adds a new node under `parent`/`name`; fails if the name exists.
    fn insert(&mut self, parent: u64, name: &OsStr, node: Node) -> Result<u64, i32> {
        let is_dir = matches!(node.kind, Kind::Dir(_));
        if self.dir(parent)?.live.contains_key(name) {
            return Err(libc::EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(ino, node);
        self.dir(parent)?.live.insert(name.to_os_string(), ino);
        if is_dir {
            if let Some(p) = self.nodes.get_mut(&parent) {
                p.nlink += 1;
            }
        }
        self.touch(parent);
        Ok(ino)
    }

    /// Drops one live name of `ino` (the node itself stays until a restore collects it:
    /// the durable state may still name it).
    fn unlinked(&mut self, ino: u64) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.nlink = n.nlink.saturating_sub(1);
        }
    }

    fn remove(&mut self, parent: u64, name: &OsStr, want_dir: bool) -> Result<(), i32> {
        let ino = self.lookup(parent, name)?;
        match self.nodes.get(&ino).map(|n| &n.kind) {
            Some(Kind::Dir(d)) if want_dir => {
                if !d.live.is_empty() {
                    return Err(libc::ENOTEMPTY);
                }
            }
            Some(Kind::Dir(_)) => return Err(libc::EISDIR),
            Some(Kind::File(_)) if want_dir => return Err(libc::ENOTDIR),
            Some(Kind::File(_)) => {}
            None => return Err(libc::ENOENT),
        }
        self.dir(parent)?.live.remove(name);
        self.unlinked(ino);
        if want_dir {
            self.unlinked(ino);
            self.unlinked(parent);
        }
        self.touch(parent);
        Ok(())
    }

    fn rename(&mut self, parent: u64, name: &OsStr, newparent: u64, newname: &OsStr, flags: u32) -> Result<(), i32> {
        if flags & libc::RENAME_EXCHANGE != 0 {
            return Err(libc::EINVAL);
        }
        let ino = self.lookup(parent, name)?;
        let moving_dir = matches!(self.nodes.get(&ino).map(|n| &n.kind), Some(Kind::Dir(_)));
        if moving_dir && self.is_ancestor(ino, newparent) {
            return Err(libc::EINVAL);
        }
        if let Some(&old) = self.dir(newparent)?.live.get(newname) {
            if old == ino {
                return Ok(());
            }
            if flags & libc::RENAME_NOREPLACE != 0 {
                return Err(libc::EEXIST);
            }
            match self.nodes.get(&old).map(|n| &n.kind) {
                Some(Kind::Dir(d)) if !moving_dir || !d.live.is_empty() => {
                    return Err(if moving_dir { libc::ENOTEMPTY } else { libc::EISDIR });
                }
                Some(Kind::File(_)) if moving_dir => return Err(libc::ENOTDIR),
                _ => {}
            }
            self.remove(newparent, newname, moving_dir)?;
        }
        self.dir(parent)?.live.remove(name);
        self.dir(newparent)?.live.insert(newname.to_os_string(), ino);
        if moving_dir {
            if let Kind::Dir(d) = &mut self.nodes.get_mut(&ino).ok_or(libc::ENOENT)?.kind {
                d.parent = newparent;
            }
            self.unlinked(parent);
            if let Some(p) = self.nodes.get_mut(&newparent) {
                p.nlink += 1;
            }
        }
        self.touch(parent);
        self.touch(newparent);
        Ok(())
    }

    /// Whether `dir` is `ino` or lies below it (live tree).
    fn is_ancestor(&self, ino: u64, mut dir: u64) -> bool {
        loop {
            if dir == ino {
                return true;
            }
            let parent = match self.nodes.get(&dir).map(|n| &n.kind) {
                Some(Kind::Dir(d)) => d.parent,
                _ => return false,
            };
            if parent == dir {
                return false;
            }
            dir = parent;
        }
    }

    /// The power cut: the live state becomes the durable state. Nodes not reachable from the
    /// root through durable entries are dropped; a directory reachable twice (a rename across
    /// directories with both fsynced at different times) keeps its first name only.
    fn revert_to_durable(&mut self) -> CutReport {
        let mut report = CutReport::default();
        let mut reached: HashSet<u64> = HashSet::new();
        let mut links: HashMap<u64, u32> = HashMap::new();
        let mut stack = vec![(ROOT, ROOT)];
        reached.insert(ROOT);
        while let Some((ino, parent)) = stack.pop() {
            let Some(node) = self.nodes.get_mut(&ino) else { continue };
            let Kind::Dir(d) = &mut node.kind else { continue };
            d.parent = parent;
            if d.live != d.durable {
                report.dirs_reverted += 1;
            }
            d.live = d.durable.clone();
            let children: Vec<(OsString, u64)> = d.live.iter().map(|(n, i)| (n.clone(), *i)).collect();
            let mut drop_names = Vec::new();
            for (name, child) in children {
                let child_is_dir = matches!(self.nodes.get(&child).map(|n| &n.kind), Some(Kind::Dir(_)));
                if !self.nodes.contains_key(&child) || (child_is_dir && reached.contains(&child)) {
                    drop_names.push(name);
                    continue;
                }
                *links.entry(child).or_insert(0) += 1;
                if reached.insert(child) && child_is_dir {
                    stack.push((child, ino));
                }
            }
            if let Some(Kind::Dir(d)) = self.nodes.get_mut(&ino).map(|n| &mut n.kind) {
                for name in drop_names {
                    d.live.remove(&name);
                    d.durable.remove(&name);
                }
            }
        }
        self.nodes.retain(|ino, _| reached.contains(ino));
        let dir_children: HashMap<u64, u32> = self
            .nodes
            .iter()
            .filter_map(|(ino, n)| match &n.kind {
                Kind::Dir(d) => Some((
                    *ino,
                    d.live.values().filter(|c| matches!(self.nodes.get(c).map(|n| &n.kind), Some(Kind::Dir(_)))).count()
                        as u32,
                )),
                Kind::File(_) => None,
            })
            .collect();
        for (ino, node) in self.nodes.iter_mut() {
            match &mut node.kind {
                Kind::File(f) => {
                    if f.has_unsynced() || f.live != f.durable {
                        report.files_reverted += 1;
                    }
                    f.live = f.durable.clone();
                    f.dirty.clear();
                    f.all_dirty = false;
                    node.nlink = links.get(ino).copied().unwrap_or(1);
                }
                Kind::Dir(_) => node.nlink = 2 + dir_children.get(ino).copied().unwrap_or(0),
            }
        }
        report
    }
}

/// The FUSE side: every request takes the one state lock.
struct Fs {
    state: Arc<Mutex<State>>,
    /// The mount this session serves; requests from an older mount fail with `EIO`.
    generation: u64,
}

/// Locks the state; a poisoned lock (a panic elsewhere) still holds consistent data.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Fs {
    /// The state, or `EIO` once the power is cut.
    fn live(&self) -> Result<MutexGuard<'_, State>, i32> {
        let st = lock(&self.state);
        if st.dead || st.generation != self.generation {
            Err(libc::EIO)
        } else {
            Ok(st)
        }
    }

    fn entry(&self, reply: ReplyEntry, f: impl FnOnce(&mut State) -> Result<u64, i32>) {
        let result = self.live().and_then(|mut st| {
            let ino = f(&mut st)?;
            st.attr(ino).ok_or(libc::ENOENT)
        });
        match result {
            Ok(attr) => reply.entry(&TTL, &attr, 0),
            Err(e) => reply.error(e),
        }
    }

    fn empty(&self, reply: ReplyEmpty, f: impl FnOnce(&mut State) -> Result<(), i32>) {
        match self.live().and_then(|mut st| f(&mut st)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}

fn perm(mode: u32, umask: u32) -> u16 {
    (mode & !umask & 0o7777) as u16
}

impl Filesystem for Fs {
    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        self.entry(reply, |st| st.lookup(parent, name));
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        match self.live().and_then(|st| st.attr(ino).ok_or(libc::ENOENT)) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<u64>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<u32>,
        reply: ReplyAttr,
    ) {
        let result = self.live().and_then(|mut st| {
            if let Some(size) = size {
                let f = st.file(ino)?;
                let old = f.live.len() as u64;
                f.live.resize(size as usize, 0);
                f.mark(old.min(size), old.max(size));
                st.touch(ino);
            }
            let node = st.nodes.get_mut(&ino).ok_or(libc::ENOENT)?;
            let when = |t: TimeOrNow| match t {
                TimeOrNow::SpecificTime(t) => t,
                TimeOrNow::Now => SystemTime::now(),
            };
            if let Some(mode) = mode {
                node.perm = (mode & 0o7777) as u16;
            }
            if let Some(uid) = uid {
                node.uid = uid;
            }
            if let Some(gid) = gid {
                node.gid = gid;
            }
            if let Some(t) = atime {
                node.atime = when(t);
            }
            if let Some(t) = mtime {
                node.mtime = when(t);
            }
            st.attr(ino).ok_or(libc::ENOENT)
        });
        match result {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &mut self,
        req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        if mode & libc::S_IFMT != libc::S_IFREG {
            reply.error(libc::EPERM);
            return;
        }
        let node = Node::new(Kind::File(FileData::default()), perm(mode, umask), req.uid(), req.gid());
        self.entry(reply, |st| st.insert(parent, name, node));
    }

    fn mkdir(&mut self, req: &Request<'_>, parent: u64, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        let mut node =
            Node::new(Kind::Dir(DirData { parent, ..DirData::default() }), perm(mode, umask), req.uid(), req.gid());
        node.nlink = 2;
        self.entry(reply, |st| st.insert(parent, name, node));
    }

    fn unlink(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        self.empty(reply, |st| st.remove(parent, name, false));
    }

    fn rmdir(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        self.empty(reply, |st| st.remove(parent, name, true));
    }

    fn rename(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: u32,
        reply: ReplyEmpty,
    ) {
        self.empty(reply, |st| st.rename(parent, name, newparent, newname, flags));
    }

    fn link(&mut self, _req: &Request<'_>, ino: u64, newparent: u64, newname: &OsStr, reply: ReplyEntry) {
        self.entry(reply, |st| {
            st.file(ino)?;
            let dir = st.dir(newparent)?;
            if dir.live.contains_key(newname) {
                return Err(libc::EEXIST);
            }
            dir.live.insert(newname.to_os_string(), ino);
            if let Some(n) = st.nodes.get_mut(&ino) {
                n.nlink += 1;
            }
            st.touch(newparent);
            Ok(ino)
        });
    }

    fn open(&mut self, _req: &Request<'_>, ino: u64, flags: i32, reply: ReplyOpen) {
        let result = self.live().and_then(|mut st| {
            let f = st.file(ino)?;
            if flags & libc::O_TRUNC != 0 {
                let old = f.live.len() as u64;
                f.live.clear();
                f.mark(0, old);
            }
            Ok(())
        });
        match result {
            Ok(()) => reply.opened(0, 0),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        let mut st = match self.live() {
            Ok(st) => st,
            Err(e) => return reply.error(e),
        };
        match st.file(ino) {
            Ok(f) => {
                let len = f.live.len();
                let start = (offset.max(0) as usize).min(len);
                let end = start.saturating_add(size as usize).min(len);
                reply.data(&f.live[start..end]);
            }
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        data: &[u8],
        _write_flags: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyWrite,
    ) {
        let result = self.live().and_then(|mut st| {
            let f = st.file(ino)?;
            let start = usize::try_from(offset).map_err(|_| libc::EINVAL)?;
            let end = start.checked_add(data.len()).ok_or(libc::EFBIG)?;
            if end > f.live.len() {
                f.live.resize(end, 0);
            }
            f.live[start..end].copy_from_slice(data);
            f.mark(start as u64, end as u64);
            st.touch(ino);
            Ok(())
        });
        match result {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e),
        }
    }

    fn flush(&mut self, _req: &Request<'_>, _ino: u64, _fh: u64, _lock_owner: u64, reply: ReplyEmpty) {
        self.empty(reply, |_| Ok(()));
    }

    fn fsync(&mut self, _req: &Request<'_>, ino: u64, _fh: u64, _datasync: bool, reply: ReplyEmpty) {
        self.empty(reply, |st| {
            st.file(ino)?.sync();
            st.fsyncs += 1;
            Ok(())
        });
    }

    fn readdir(&mut self, _req: &Request<'_>, ino: u64, _fh: u64, offset: i64, mut reply: ReplyDirectory) {
        let listing = self.live().and_then(|mut st| {
            let d = st.dir(ino)?;
            let mut out =
                vec![(ino, FileType::Directory, OsString::from(".")), (d.parent, FileType::Directory, "..".into())];
            let names: Vec<(OsString, u64)> = d.live.iter().map(|(n, i)| (n.clone(), *i)).collect();
            for (name, child) in names {
                let kind = match st.nodes.get(&child).map(|n| &n.kind) {
                    Some(Kind::Dir(_)) => FileType::Directory,
                    _ => FileType::RegularFile,
                };
                out.push((child, kind, name));
            }
            Ok(out)
        });
        match listing {
            Ok(entries) => {
                for (i, (child, kind, name)) in entries.into_iter().enumerate().skip(offset.max(0) as usize) {
                    if reply.add(child, (i + 1) as i64, kind, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn fsyncdir(&mut self, _req: &Request<'_>, ino: u64, _fh: u64, _datasync: bool, reply: ReplyEmpty) {
        self.empty(reply, |st| {
            let d = st.dir(ino)?;
            d.durable = d.live.clone();
            st.fsyncs += 1;
            Ok(())
        });
    }

    fn statfs(&mut self, _req: &Request<'_>, _ino: u64, reply: ReplyStatfs) {
        // Plenty of room: a broker checking free space must not think this disk is full.
        let blocks = 1u64 << 28;
        reply.statfs(blocks, blocks, blocks, 1 << 24, 1 << 24, BLOCK as u32, 255, BLOCK as u32);
    }

    fn access(&mut self, _req: &Request<'_>, ino: u64, _mask: i32, reply: ReplyEmpty) {
        self.empty(reply, |st| st.nodes.get(&ino).map(|_| ()).ok_or(libc::ENOENT));
    }

    fn create(
        &mut self,
        req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let result = self.live().and_then(|mut st| {
            let ino = match st.lookup(parent, name) {
                Ok(_) if flags & libc::O_EXCL != 0 => return Err(libc::EEXIST),
                Ok(ino) => {
                    let f = st.file(ino)?;
                    if flags & libc::O_TRUNC != 0 {
                        let old = f.live.len() as u64;
                        f.live.clear();
                        f.mark(0, old);
                    }
                    ino
                }
                Err(_) => {
                    let node = Node::new(Kind::File(FileData::default()), perm(mode, umask), req.uid(), req.gid());
                    st.insert(parent, name, node)?
                }
            };
            st.attr(ino).ok_or(libc::ENOENT)
        });
        match result {
            Ok(attr) => reply.created(&TTL, &attr, 0, 0, 0),
            Err(e) => reply.error(e),
        }
    }

    fn fallocate(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        length: i64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        self.empty(reply, |st| {
            if mode != 0 {
                return Err(libc::EOPNOTSUPP);
            }
            let end = offset.checked_add(length).and_then(|e| usize::try_from(e).ok()).ok_or(libc::EINVAL)?;
            let f = st.file(ino)?;
            let old = f.live.len();
            if end > old {
                f.live.resize(end, 0);
                f.mark(old as u64, end as u64);
            }
            Ok(())
        });
    }
}

/// A mounted power-cut filesystem. The handle is the control channel: [`cut`](Self::cut)
/// kills the "disk", [`restore`](Self::restore) mounts the survivors. Dropping it unmounts.
pub struct PowerCutFs {
    state: Arc<Mutex<State>>,
    mountpoint: PathBuf,
    session: Option<BackgroundSession>,
    /// The FUSE connection number of the current mount (its device minor).
    connection: Option<u32>,
}

impl PowerCutFs {
    /// Mounts an empty filesystem on `mountpoint` (an existing empty directory). Needs
    /// `/dev/fuse` and `fusermount3` (Debian package fuse3).
    pub fn mount(mountpoint: &Path) -> io::Result<PowerCutFs> {
        let mut fs = PowerCutFs {
            state: Arc::new(Mutex::new(State::new())),
            mountpoint: mountpoint.to_path_buf(),
            session: None,
            connection: None,
        };
        fs.mount_session()?;
        Ok(fs)
    }

    fn mount_session(&mut self) -> io::Result<()> {
        let generation = lock(&self.state).generation;
        let options = [MountOption::FSName("powercut".into()), MountOption::Subtype("powercut".into())];
        let fs = Fs { state: Arc::clone(&self.state), generation };
        let session = fuser::spawn_mount2(fs, &self.mountpoint, &options)?;
        self.session = Some(session);
        self.connection =
            std::fs::metadata(&self.mountpoint).ok().map(|m| libc::minor(std::os::unix::fs::MetadataExt::dev(&m)));
        Ok(())
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// The power cut: from this instant every operation fails with `EIO`, and everything not
    /// yet durable is dropped. Returns what was lost.
    pub fn cut(&self) -> CutReport {
        let mut st = lock(&self.state);
        st.dead = true;
        st.revert_to_durable()
    }

    /// Power back on: unmounts (dropping the kernel's caches of the old state) and mounts
    /// the durable state again. Files still open on the old mount stay dead (`EIO`).
    pub fn restore(&mut self) -> io::Result<()> {
        {
            let mut st = lock(&self.state);
            if !st.dead {
                return Err(io::Error::other("restore without a cut"));
            }
            st.generation += 1;
        }
        self.unmount();
        lock(&self.state).dead = false;
        self.mount_session()
    }

    /// A cut followed at once by a restore.
    pub fn power_cycle(&mut self) -> io::Result<CutReport> {
        let report = self.cut();
        self.restore()?;
        Ok(report)
    }

    /// Number of successful fsync/fdatasync/fsyncdir calls so far.
    pub fn fsyncs(&self) -> u64 {
        lock(&self.state).fsyncs
    }

    /// Unmounts and ends the session thread. A busy mount (a file still open) is aborted
    /// through the FUSE control filesystem and detached, so this never waits on a process.
    fn unmount(&mut self) {
        let Some(session) = self.session.take() else { return };
        let Ok(path) = std::ffi::CString::new(self.mountpoint.as_os_str().as_encoded_bytes()) else { return };
        // SAFETY: `path` is a valid NUL-terminated string that outlives the calls.
        let unmounted = unsafe { libc::umount(path.as_ptr()) } == 0;
        if !unmounted {
            if let Some(conn) = self.connection {
                abort_connection(conn);
            }
            // SAFETY: as above.
            unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        }
        session.join();
    }
}

/// Aborts FUSE connection `conn` (every request fails, the session's device read ends).
fn abort_connection(conn: u32) {
    let control = Path::new("/sys/fs/fuse/connections");
    let abort = control.join(conn.to_string()).join("abort");
    if !abort.exists() {
        let _ = std::process::Command::new("mount").args(["-t", "fusectl", "none"]).arg(control).status();
    }
    let _ = std::fs::write(abort, b"1");
}

impl Drop for PowerCutFs {
    fn drop(&mut self) {
        lock(&self.state).generation += 1;
        self.unmount();
    }
}

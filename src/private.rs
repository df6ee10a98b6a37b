//! Files only their owner can read: the data dir (0700), the store, its
//! WAL and shared-memory files, the logs and console exports (0600),
//! whatever the umask.

use std::fs::OpenOptions;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The mode of private directories.
pub const DIR_MODE: u32 = 0o700;
/// The mode of private files.
pub const FILE_MODE: u32 = 0o600;

/// What [`private_dir`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirState {
    /// It did not exist and was created 0700.
    Created,
    /// It existed and was private already.
    Private,
    /// It existed with this mode (readable by others, writable by no one
    /// else) and was tightened to 0700.
    Tightened(u32),
}

/// Makes `path` a private directory: creates it 0700 (its missing parents
/// with the usual mode), tightens an existing one that others can read or
/// enter to 0700, and refuses one that group or others can write (someone
/// else could have replaced its files), naming the path and the mode.
pub fn private_dir(path: &Path) -> Result<DirState, String> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            }
            match std::fs::DirBuilder::new().mode(DIR_MODE).create(path) {
                Ok(()) => {}
                // created by someone else in between: check it as it is
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return private_dir(path);
                }
                Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
            }
            // the umask may have taken bits away; never added any
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(DIR_MODE))
                .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))?;
            Ok(DirState::Created)
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        Ok(m) if !m.is_dir() => Err(format!("{} is not a directory", path.display())),
        Ok(m) => {
            let mode = m.permissions().mode() & 0o7777;
            if mode & 0o022 != 0 {
                return Err(format!(
                    "{} has mode {mode:04o}: group or other users can write to it, so they could \
                     replace the audit trail or the logs; vigil refuses it (chmod 700 {} if it is \
                     yours, or use another --data-dir)",
                    path.display(),
                    path.display()
                ));
            }
            if mode & 0o077 == 0 {
                return Ok(DirState::Private);
            }
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(DIR_MODE)).map_err(
                |e| {
                    format!(
                        "{} has mode {mode:04o} and cannot be made private (0700): {e}",
                        path.display()
                    )
                },
            )?;
            Ok(DirState::Tightened(mode))
        }
    }
}

/// Options that create a file with mode 0600 (an existing file keeps its
/// mode: see [`private_file`]).
pub fn private_file_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(FILE_MODE);
    o
}

/// Makes `path` a private file: creates it empty with mode 0600 when it
/// does not exist, sets an existing regular file to 0600. A symlink is
/// refused rather than followed.
pub fn private_file(path: &Path) -> Result<(), String> {
    let f = private_file_options()
        .append(true)
        .create(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let m = f
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !m.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    if m.permissions().mode() & 0o777 != FILE_MODE {
        f.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
            .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Sets an existing file to 0600; a missing one is fine.
pub fn tighten_if_exists(path: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o777 != FILE_MODE => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE))
                .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Sets the process umask to 077 so that whatever else the process
/// creates (by libraries too) is private; returns the previous umask.
pub fn private_umask() -> u32 {
    // SAFETY: umask only swaps the process's file mode creation mask.
    let old = unsafe { libc::umask(0o077) };
    #[allow(clippy::unnecessary_cast)]
    {
        old as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn dirs_are_created_tightened_or_refused() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b/data");
        assert_eq!(private_dir(&d).unwrap(), DirState::Created);
        assert_eq!(mode(&d), 0o700);
        assert_eq!(private_dir(&d).unwrap(), DirState::Private);

        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(private_dir(&d).unwrap(), DirState::Tightened(0o755));
        assert_eq!(mode(&d), 0o700);

        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = private_dir(&d).unwrap_err();
        assert!(
            e.contains(&d.display().to_string()) && e.contains("0777"),
            "{e}"
        );
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o770)).unwrap();
        assert!(private_dir(&d).unwrap_err().contains("0770"));

        let f = t.path().join("file");
        std::fs::write(&f, "x").unwrap();
        assert!(private_dir(&f).unwrap_err().contains("not a directory"));
    }

    #[test]
    fn files_are_0600_new_or_old_and_symlinks_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        private_file(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        private_file(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        tighten_if_exists(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
        tighten_if_exists(&t.path().join("missing")).unwrap();

        let l = t.path().join("link");
        std::os::unix::fs::symlink(&f, &l).unwrap();
        assert!(private_file(&l).is_err());

        let g = t.path().join("g");
        private_file_options()
            .write(true)
            .create_new(true)
            .open(&g)
            .unwrap();
        assert_eq!(mode(&g), 0o600);
    }
}

//! Files a person writes: the error that says where in one a problem is
//! (`FILE:LINE: what`), and the kinds Vigil ships a copy of that a user
//! may override from a folder of their own (runbooks, themes, keymaps).
//!
//! Reads files; parses nothing (each kind parses its own text).

use std::path::Path;

/// A problem in a file, with where it is: `FILE:LINE: message`, or
/// `FILE: message` when no line applies.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct FileError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl FileError {
    pub fn new(file: impl Into<String>, line: Option<usize>, message: impl Into<String>) -> Self {
        FileError {
            file: file.into(),
            line,
            message: message.into(),
        }
    }
}

/// One file's text and the label errors name it by (its path, or
/// `themes/NAME.toml (bundled)` for a bundled copy).
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub name: String,
    pub file: String,
    pub text: String,
}

/// A kind of `NAME.toml` file with bundled copies compiled in and a user
/// folder whose same-named files replace them.
pub struct Bundled {
    /// What one is called in errors: `theme`, `keymap`, `runbook`.
    pub kind: &'static str,
    /// The folder the bundled copies come from (`themes`), which is also
    /// the folder's name under a config dir.
    pub folder: &'static str,
    /// How a bundled copy's label ends: `bundled`, `built in`.
    pub tag: &'static str,
    /// (name, text) of each bundled copy.
    pub files: &'static [(&'static str, &'static str)],
    /// What to say when a name is neither the user's nor bundled (the
    /// user folder is passed, for listing).
    pub missing: fn(&Bundled, &str, Option<&Path>) -> String,
}

impl Bundled {
    /// `FOLDER/NAME.toml (TAG)`: how a bundled copy is named in errors.
    pub fn label(&self, name: &str) -> String {
        format!("{}/{name}.toml ({})", self.folder, self.tag)
    }

    /// The bundled copy of `name`.
    pub fn bundled(&self, name: &str) -> Option<&'static str> {
        self.files.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }

    /// The bundled names, in order.
    pub fn bundled_names(&self) -> Vec<&'static str> {
        self.files.iter().map(|(n, _)| *n).collect()
    }

    /// This kind's folder under a config dir (`DIR/themes`).
    pub fn user_folder(&self, config_dir: Option<&Path>) -> Option<std::path::PathBuf> {
        config_dir.map(|d| d.join(self.folder))
    }

    /// Every name: the bundled ones, then the user's other files (sorted).
    pub fn names(&self, user: Option<&Path>) -> Vec<String> {
        let mut v: Vec<String> = self.files.iter().map(|(n, _)| n.to_string()).collect();
        for p in toml_files(user) {
            if let Some(stem) = p.file_stem().and_then(|s| s.to_str())
                && !v.iter().any(|n| n == stem)
            {
                v.push(stem.to_string());
            }
        }
        v
    }

    /// The file for `name`: the user's `USER/NAME.toml` when it exists (an
    /// unreadable one is reported and the bundled copy used), else the
    /// bundled copy. A name is letters, digits, '-' and '_', so it cannot
    /// leave the user folder. Problems go to `errors`; `None` when there is
    /// nothing to use.
    pub fn find(
        &self,
        name: &str,
        user: Option<&Path>,
        errors: &mut Vec<FileError>,
    ) -> Option<Source> {
        let kind = self.kind;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            errors.push(FileError::new(
                format!("{kind} {name:?}"),
                None,
                format!("a {kind} name is letters, digits, '-' and '_'"),
            ));
            return None;
        }
        if let Some(d) = user {
            let p = d.join(format!("{name}.toml"));
            if p.exists() {
                match std::fs::read_to_string(&p) {
                    Ok(text) => {
                        return Some(Source {
                            name: name.to_string(),
                            file: p.display().to_string(),
                            text,
                        });
                    }
                    Err(e) => errors.push(FileError::new(
                        p.display().to_string(),
                        None,
                        format!("cannot read: {e}"),
                    )),
                }
            }
        }
        if let Some(text) = self.bundled(name) {
            return Some(Source {
                name: name.to_string(),
                file: self.label(name),
                text: text.to_string(),
            });
        }
        errors.push(FileError::new(
            format!("{kind} {name:?}"),
            None,
            (self.missing)(self, name, user),
        ));
        None
    }

    /// Every file: the bundled copies in order, each replaced by the
    /// user's file of the same name, then the user's other files by path.
    /// A user file that cannot be read is the error.
    pub fn all(&self, user: Option<&Path>) -> Result<Vec<Source>, FileError> {
        let mut out: Vec<Source> = self
            .files
            .iter()
            .map(|(n, t)| Source {
                name: n.to_string(),
                file: self.label(n),
                text: t.to_string(),
            })
            .collect();
        for path in toml_files(user) {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            let text = std::fs::read_to_string(&path).map_err(|e| {
                FileError::new(
                    path.display().to_string(),
                    None,
                    format!("cannot read: {e}"),
                )
            })?;
            let s = Source {
                name,
                file: path.display().to_string(),
                text,
            };
            match out.iter_mut().find(|o| o.name == s.name) {
                Some(slot) => *slot = s,
                None => out.push(s),
            }
        }
        Ok(out)
    }
}

/// The `*.toml` entries of a folder, by path; none when it is absent or
/// unreadable.
fn toml_files(dir: Option<&Path>) -> Vec<std::path::PathBuf> {
    let Some(rd) = dir.and_then(|d| std::fs::read_dir(d).ok()) else {
        return Vec::new();
    };
    let mut files: Vec<_> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(b: &Bundled, _: &str, user: Option<&Path>) -> String {
        format!("no such {}; known: {}", b.kind, b.names(user).join(", "))
    }

    const KIND: Bundled = Bundled {
        kind: "thing",
        folder: "things",
        tag: "bundled",
        files: &[("a", "A"), ("b", "B")],
        missing: known,
    };

    #[test]
    fn file_errors_name_the_file_and_the_line_when_known() {
        assert_eq!(
            FileError::new("x.toml", Some(3), "bad").to_string(),
            "x.toml:3: bad"
        );
        assert_eq!(
            FileError::new("x.toml", None, "bad").to_string(),
            "x.toml: bad"
        );
    }

    #[test]
    fn a_users_file_replaces_the_bundled_copy_and_others_are_added() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("b.toml"), "mine").unwrap();
        std::fs::write(d.path().join("c.toml"), "C").unwrap();
        std::fs::write(d.path().join("notes.txt"), "x").unwrap();
        let all = KIND.all(Some(d.path())).unwrap();
        let got: Vec<(&str, &str)> = all
            .iter()
            .map(|s| (s.name.as_str(), s.text.as_str()))
            .collect();
        assert_eq!(got, [("a", "A"), ("b", "mine"), ("c", "C")]);
        assert_eq!(all[0].file, "things/a.toml (bundled)");
        assert_eq!(KIND.names(Some(d.path())), ["a", "b", "c"]);

        let mut errs = Vec::new();
        let b = KIND.find("b", Some(d.path()), &mut errs).unwrap();
        assert_eq!(b.text, "mine");
        let a = KIND.find("a", Some(d.path()), &mut errs).unwrap();
        assert_eq!(a.file, "things/a.toml (bundled)");
        assert!(errs.is_empty());
        assert!(KIND.find("z", Some(d.path()), &mut errs).is_none());
        assert_eq!(
            errs.pop().unwrap().to_string(),
            "thing \"z\": no such thing; known: a, b, c"
        );
        // A name cannot walk out of the folder.
        assert!(KIND.find("../b", Some(d.path()), &mut errs).is_none());
        assert!(errs[0].message.contains("letters, digits"), "{errs:?}");
        assert_eq!(KIND.all(None).unwrap().len(), 2);
    }
}

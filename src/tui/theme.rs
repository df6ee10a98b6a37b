//! Colour themes: the bundled `themes/*.toml` files, a user's overrides from
//! the config dir, and the parsed `Theme` the views draw with.
//!
//! A theme never decides what is shown, only how: severity and mode are
//! always carried by a word too, so a monochrome theme loses nothing.
//! Loading never fails the console: problems are reported and the bundled
//! default is used instead.

use std::collections::BTreeMap;
use std::path::Path;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

use crate::model::Severity;
use crate::units::files::{Bundled, FileError};
use crate::units::toml_error_line;

/// The bundled themes, compiled in (name, TOML).
pub const BUNDLED: &[(&str, &str)] = &[
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
    ("mono", include_str!("../../themes/mono.toml")),
    ("colorblind", include_str!("../../themes/colorblind.toml")),
];

/// The theme used when `NO_COLOR` is set.
pub const NO_COLOR_THEME: &str = "mono";

/// Every role a theme styles, by table and key.
pub const ROLES: &[(&str, &[&str])] = &[
    (
        "ui",
        &[
            "text",
            "muted",
            "border",
            "border_focused",
            "title",
            "selection",
            "status_bar",
            "key_hint",
            "background",
        ],
    ),
    (
        "severity",
        &["critical", "high", "warning", "info", "resolved"],
    ),
    (
        "approval",
        &["pending", "approved", "rejected", "executing", "failed"],
    ),
    ("mode", &["dry_run_banner", "live_banner", "frozen_banner"]),
];

/// Roles a theme may leave out: the terminal's own then shows.
pub const OPTIONAL_ROLES: &[&str] = &["ui.background"];

/// How many colours the terminal shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColourDepth {
    /// 24-bit (`COLORTERM=truecolor` or `24bit`).
    True,
    /// The xterm 256-colour palette (`TERM=*256color*`).
    Ansi256,
    /// The 16 ANSI colours.
    Ansi16,
}

impl ColourDepth {
    /// From `COLORTERM` and `TERM`, as terminals announce themselves.
    pub fn from_env() -> ColourDepth {
        ColourDepth::of(
            std::env::var("COLORTERM").ok().as_deref(),
            std::env::var("TERM").ok().as_deref(),
        )
    }

    pub fn of(colorterm: Option<&str>, term: Option<&str>) -> ColourDepth {
        let ct = colorterm.unwrap_or("").to_ascii_lowercase();
        if ct.contains("truecolor") || ct.contains("24bit") {
            ColourDepth::True
        } else if term.unwrap_or("").contains("256color") {
            ColourDepth::Ansi256
        } else {
            ColourDepth::Ansi16
        }
    }
}

/// The 16 ANSI colours with the RGB xterm gives them.
const ANSI16: [(Color, (u8, u8, u8)); 16] = [
    (Color::Black, (0, 0, 0)),
    (Color::Red, (205, 0, 0)),
    (Color::Green, (0, 205, 0)),
    (Color::Yellow, (205, 205, 0)),
    (Color::Blue, (0, 0, 238)),
    (Color::Magenta, (205, 0, 205)),
    (Color::Cyan, (0, 205, 205)),
    (Color::Gray, (229, 229, 229)),
    (Color::DarkGray, (127, 127, 127)),
    (Color::LightRed, (255, 0, 0)),
    (Color::LightGreen, (0, 255, 0)),
    (Color::LightYellow, (255, 255, 0)),
    (Color::LightBlue, (92, 92, 255)),
    (Color::LightMagenta, (255, 0, 255)),
    (Color::LightCyan, (0, 255, 255)),
    (Color::White, (255, 255, 255)),
];

fn dist(a: (u8, u8, u8), b: (u8, u8, u8)) -> i32 {
    let d = |x: u8, y: u8| i32::from(x) - i32::from(y);
    // Weighted for the eye: green counts most, blue least.
    3 * d(a.0, b.0).pow(2) + 4 * d(a.1, b.1).pow(2) + 2 * d(a.2, b.2).pow(2)
}

/// The RGB of a 256-palette index.
fn rgb_of_index(i: u8) -> (u8, u8, u8) {
    match i {
        0..=15 => ANSI16[usize::from(i)].1,
        16..=231 => {
            let n = i - 16;
            let v = |c: u8| if c == 0 { 0 } else { 55 + 40 * c };
            (v(n / 36), v((n / 6) % 6), v(n % 6))
        }
        _ => {
            let g = 8 + 10 * (i - 232);
            (g, g, g)
        }
    }
}

/// The nearest colour of the xterm 256 palette (cube or grey ramp).
pub fn to_256(r: u8, g: u8, b: u8) -> u8 {
    let level = |v: u8| -> u8 {
        if v < 48 {
            0
        } else if v < 115 {
            1
        } else {
            (v - 35) / 40
        }
    };
    let cube = 16 + 36 * level(r) + 6 * level(g) + level(b);
    let avg = ((u16::from(r) + u16::from(g) + u16::from(b)) / 3) as u8;
    let grey = 232 + (avg.saturating_sub(8) / 10).min(23);
    if dist((r, g, b), rgb_of_index(grey)) < dist((r, g, b), rgb_of_index(cube)) {
        grey
    } else {
        cube
    }
}

/// The nearest of the 16 ANSI colours.
pub fn to_16(rgb: (u8, u8, u8)) -> Color {
    ANSI16
        .iter()
        .min_by_key(|(_, c)| dist(rgb, *c))
        .map_or(Color::Reset, |(c, _)| *c)
}

fn fit(c: Color, depth: ColourDepth) -> Color {
    match (c, depth) {
        (_, ColourDepth::True) => c,
        (Color::Rgb(r, g, b), ColourDepth::Ansi256) => Color::Indexed(to_256(r, g, b)),
        (Color::Rgb(r, g, b), ColourDepth::Ansi16) => to_16((r, g, b)),
        (Color::Indexed(i), ColourDepth::Ansi16) => to_16(rgb_of_index(i)),
        _ => c,
    }
}

/// A parsed theme: one style per role.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub dark: bool,
    styles: BTreeMap<String, Style>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    meta: Meta,
    #[serde(default)]
    palette: BTreeMap<String, String>,
    #[serde(default)]
    ui: BTreeMap<String, StyleSpec>,
    #[serde(default)]
    severity: BTreeMap<String, StyleSpec>,
    #[serde(default)]
    approval: BTreeMap<String, StyleSpec>,
    #[serde(default)]
    mode: BTreeMap<String, StyleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Meta {
    name: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    extends: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum StyleSpec {
    Colour(String),
    Full {
        #[serde(default)]
        fg: Option<String>,
        #[serde(default)]
        bg: Option<String>,
        #[serde(default)]
        modifiers: Vec<String>,
    },
}

const MODIFIERS: &[(&str, Modifier)] = &[
    ("bold", Modifier::BOLD),
    ("dim", Modifier::DIM),
    ("italic", Modifier::ITALIC),
    ("underlined", Modifier::UNDERLINED),
    ("reversed", Modifier::REVERSED),
    ("crossed_out", Modifier::CROSSED_OUT),
    ("slow_blink", Modifier::SLOW_BLINK),
];

/// Parses a colour: a name (`red`, `light_blue`, `dark_gray`, `reset`...),
/// `#rrggbb`, or an ANSI index `0`..`255`.
pub fn parse_colour(s: &str) -> Result<Color, String> {
    let t = s.trim();
    if let Some(hex) = t.strip_prefix('#') {
        if hex.len() == 6
            && let Ok(v) = u32::from_str_radix(hex, 16)
        {
            return Ok(Color::Rgb((v >> 16) as u8, (v >> 8) as u8, v as u8));
        }
        return Err(format!(
            "colour {s:?}: expected #rrggbb with six hex digits"
        ));
    }
    if let Ok(i) = t.parse::<u8>() {
        return Ok(Color::Indexed(i));
    }
    let c = match t.to_ascii_lowercase().replace(['-', ' '], "_").as_str() {
        "reset" | "default" => Color::Reset,
        "black" => Color::Black,
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "gray" | "grey" => Color::Gray,
        "dark_gray" | "dark_grey" => Color::DarkGray,
        "light_red" => Color::LightRed,
        "light_green" => Color::LightGreen,
        "light_yellow" => Color::LightYellow,
        "light_blue" => Color::LightBlue,
        "light_magenta" => Color::LightMagenta,
        "light_cyan" => Color::LightCyan,
        "white" => Color::White,
        _ => {
            return Err(format!(
                "colour {s:?}: expected a name (black, red, green, yellow, blue, magenta, cyan, \
                 gray, dark_gray, light_red..., white, reset), #rrggbb, an index 0-255 or \
                 $palette_name"
            ));
        }
    };
    Ok(c)
}

impl Theme {
    /// The bundled default theme. Never fails: it is checked by the tests.
    pub fn fallback() -> Theme {
        let mut errs = Vec::new();
        load_text(
            "default",
            BUNDLED[0].1,
            "themes/default.toml",
            None,
            &mut errs,
        )
        .unwrap_or_else(|| Theme {
            name: "default".into(),
            dark: true,
            styles: BTreeMap::new(),
        })
    }

    /// A role's style (`ui.text`, `severity.critical`, `mode.live_banner`).
    /// Unknown roles are unstyled.
    pub fn style(&self, role: &str) -> Style {
        self.styles.get(role).copied().unwrap_or_default()
    }

    /// The theme with every colour the terminal cannot show replaced by
    /// its nearest one there.
    pub fn for_terminal(mut self, depth: ColourDepth) -> Theme {
        for st in self.styles.values_mut() {
            st.fg = st.fg.map(|c| fit(c, depth));
            st.bg = st.bg.map(|c| fit(c, depth));
        }
        self
    }

    /// The whole screen's style (a light theme sets its background).
    pub fn background(&self) -> Style {
        self.style("ui.background")
    }

    pub fn text(&self) -> Style {
        self.style("ui.text")
    }
    pub fn muted(&self) -> Style {
        self.style("ui.muted")
    }
    pub fn border(&self, focused: bool) -> Style {
        if focused {
            self.style("ui.border_focused")
        } else {
            self.style("ui.border")
        }
    }
    pub fn title(&self) -> Style {
        self.style("ui.title")
    }
    pub fn selection(&self) -> Style {
        self.style("ui.selection")
    }
    pub fn status_bar(&self) -> Style {
        self.style("ui.status_bar")
    }
    pub fn key_hint(&self) -> Style {
        self.style("ui.key_hint")
    }

    pub fn severity(&self, s: Severity) -> Style {
        self.style(match s {
            Severity::Critical => "severity.critical",
            Severity::High => "severity.high",
            Severity::Warning => "severity.warning",
            Severity::Info => "severity.info",
        })
    }
    pub fn resolved(&self) -> Style {
        self.style("severity.resolved")
    }
}

/// Theme files: the bundled ones and the config dir's `themes/`.
pub const THEMES: Bundled = Bundled {
    kind: "theme",
    folder: "themes",
    tag: "bundled",
    files: BUNDLED,
    missing: |b, _, user| format!("no such theme; known: {}", b.names(user).join(", ")),
};

/// Loads theme `name`: the user's `DIR/themes/NAME.toml` when it exists,
/// else the bundled one. Problems go to `errors`; `None` when nothing
/// usable was found.
pub fn load(name: &str, user_dir: Option<&Path>, errors: &mut Vec<FileError>) -> Option<Theme> {
    let (text, file) = source(name, user_dir, errors)?;
    load_text(name, &text, &file, user_dir, errors)
}

/// The names of every theme: bundled, then the user's.
pub fn names(user_dir: Option<&Path>) -> Vec<String> {
    THEMES.names(THEMES.user_folder(user_dir).as_deref())
}

fn source(
    name: &str,
    user_dir: Option<&Path>,
    errors: &mut Vec<FileError>,
) -> Option<(String, String)> {
    THEMES
        .find(name, THEMES.user_folder(user_dir).as_deref(), errors)
        .map(|s| (s.text, s.file))
}

fn load_text(
    name: &str,
    text: &str,
    file: &str,
    user_dir: Option<&Path>,
    errors: &mut Vec<FileError>,
) -> Option<Theme> {
    load_depth(name, text, file, user_dir, errors, 0)
}

fn load_depth(
    name: &str,
    text: &str,
    file: &str,
    user_dir: Option<&Path>,
    errors: &mut Vec<FileError>,
    depth: usize,
) -> Option<Theme> {
    let err = |line: Option<usize>, message: String| FileError {
        file: file.to_string(),
        line,
        message,
    };
    let tf: ThemeFile = match toml::from_str(text) {
        Ok(t) => t,
        Err(e) => {
            let (line, message) = toml_error_line(&e, text);
            errors.push(err(line, message));
            return None;
        }
    };
    let line_of = |needle: &str| crate::units::line_of(text, needle);
    let mut theme = match tf.meta.extends.as_deref() {
        Some(parent) if depth < 4 => {
            let (ptext, pfile) = source(parent, user_dir, errors)?;
            let mut t = load_depth(parent, &ptext, &pfile, user_dir, errors, depth + 1)?;
            t.name = tf.meta.name.clone();
            t
        }
        Some(parent) => {
            errors.push(err(
                line_of("extends"),
                format!("extends {parent:?}: chains of more than 4 themes are refused (a loop?)"),
            ));
            return None;
        }
        None => Theme {
            name: tf.meta.name.clone(),
            dark: true,
            styles: BTreeMap::new(),
        },
    };
    let _ = name;
    match tf.meta.variant.as_deref() {
        None => {}
        Some("dark") => theme.dark = true,
        Some("light") => theme.dark = false,
        Some(v) => errors.push(err(
            line_of("variant"),
            format!("variant {v:?}: expected \"dark\" or \"light\""),
        )),
    }
    let palette = &tf.palette;
    let resolve = |v: &str| -> Result<Color, String> {
        if let Some(p) = v.strip_prefix('$') {
            match palette.get(p) {
                Some(c) => parse_colour(c).map_err(|e| format!("palette {p}: {e}")),
                None => Err(format!(
                    "${p}: no such palette colour; the palette has: {}",
                    palette.keys().cloned().collect::<Vec<_>>().join(", ")
                )),
            }
        } else {
            parse_colour(v)
        }
    };
    let tables = [
        ("ui", &tf.ui),
        ("severity", &tf.severity),
        ("approval", &tf.approval),
        ("mode", &tf.mode),
    ];
    let mut ok = true;
    for (table, entries) in tables {
        let known = ROLES
            .iter()
            .find(|(t, _)| *t == table)
            .map(|(_, r)| *r)
            .unwrap_or(&[]);
        for (key, spec) in entries {
            let line = key_line(text, table, key);
            if !known.contains(&key.as_str()) {
                errors.push(err(
                    line,
                    format!("[{table}] {key}: unknown role; known: {}", known.join(", ")),
                ));
                continue;
            }
            match style_of(spec, &resolve) {
                Ok(s) => {
                    theme.styles.insert(format!("{table}.{key}"), s);
                }
                Err(e) => {
                    ok = false;
                    errors.push(err(line, format!("[{table}] {key}: {e}")));
                }
            }
        }
    }
    if depth == 0 {
        let missing: Vec<String> = ROLES
            .iter()
            .flat_map(|(table, roles)| roles.iter().map(move |r| format!("{table}.{r}")))
            .filter(|k| !theme.styles.contains_key(k) && !OPTIONAL_ROLES.contains(&k.as_str()))
            .collect();
        if !missing.is_empty() {
            errors.push(err(
                None,
                format!(
                    "missing roles: {} (give each a style, or start from another theme with \
                     `extends = \"default\"` in [meta])",
                    missing.join(", ")
                ),
            ));
            ok = false;
        }
    }
    ok.then_some(theme)
}

/// The 1-based line of `key = ...` inside `[table]` of a TOML text.
pub fn key_line(text: &str, table: &str, key: &str) -> Option<usize> {
    let header = format!("[{table}]");
    let mut inside = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            inside = t == header;
            continue;
        }
        if inside
            && let Some(rest) = t.strip_prefix(key)
            && rest.trim_start().starts_with('=')
        {
            return Some(i + 1);
        }
    }
    None
}

fn style_of(
    spec: &StyleSpec,
    resolve: &dyn Fn(&str) -> Result<Color, String>,
) -> Result<Style, String> {
    match spec {
        StyleSpec::Colour(c) => Ok(Style::default().fg(resolve(c)?)),
        StyleSpec::Full { fg, bg, modifiers } => {
            let mut s = Style::default();
            if let Some(f) = fg {
                s = s.fg(resolve(f)?);
            }
            if let Some(b) = bg {
                s = s.bg(resolve(b)?);
            }
            for m in modifiers {
                match MODIFIERS.iter().find(|(n, _)| n == m) {
                    Some((_, md)) => s = s.add_modifier(*md),
                    None => {
                        return Err(format!(
                            "modifier {m:?}: expected one of {}",
                            MODIFIERS
                                .iter()
                                .map(|(n, _)| *n)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                }
            }
            Ok(s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_theme_loads_without_problems() {
        for (name, _) in BUNDLED {
            let mut errs = Vec::new();
            let t = load(name, None, &mut errs);
            assert!(errs.is_empty(), "{name}: {errs:?}");
            let t = t.expect(name);
            for (table, roles) in ROLES {
                for r in *roles {
                    let role = format!("{table}.{r}");
                    assert!(
                        t.styles.contains_key(&role) || OPTIONAL_ROLES.contains(&role.as_str()),
                        "{name} {table}.{r}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_live_and_dry_run_banners_differ_in_every_theme() {
        for (name, _) in BUNDLED {
            let t = load(name, None, &mut Vec::new()).expect(name);
            assert_ne!(
                t.style("mode.live_banner"),
                t.style("mode.dry_run_banner"),
                "{name}"
            );
        }
    }

    #[test]
    fn the_mono_theme_uses_no_colour() {
        let t = load("mono", None, &mut Vec::new()).expect("mono");
        for s in t.styles.values() {
            for c in [s.fg, s.bg].into_iter().flatten() {
                assert!(
                    matches!(c, Color::Reset | Color::Black | Color::White | Color::Gray),
                    "{c:?}"
                );
            }
        }
    }

    #[test]
    fn themes_fall_back_to_256_and_16_colours_without_truecolor() {
        assert_eq!(
            ColourDepth::of(Some("truecolor"), Some("xterm")),
            ColourDepth::True
        );
        assert_eq!(
            ColourDepth::of(None, Some("screen-256color")),
            ColourDepth::Ansi256
        );
        assert_eq!(
            ColourDepth::of(Some(""), Some("xterm")),
            ColourDepth::Ansi16
        );
        for (name, _) in BUNDLED {
            let mut errs = Vec::new();
            let t = load(name, None, &mut errs).expect("theme");
            let t256 = t.clone().for_terminal(ColourDepth::Ansi256);
            let t16 = t.clone().for_terminal(ColourDepth::Ansi16);
            for st in t256.styles.values() {
                for c in [st.fg, st.bg].into_iter().flatten() {
                    assert!(!matches!(c, Color::Rgb(..)), "{name}: {c:?} in 256 colours");
                }
            }
            for st in t16.styles.values() {
                for c in [st.fg, st.bg].into_iter().flatten() {
                    assert!(
                        !matches!(c, Color::Rgb(..) | Color::Indexed(_)),
                        "{name}: {c:?} in 16 colours"
                    );
                }
            }
            // LIVE and DRY-RUN stay apart in every depth.
            for tt in [&t256, &t16] {
                assert_ne!(
                    tt.style("mode.live_banner"),
                    tt.style("mode.dry_run_banner"),
                    "{name}"
                );
            }
        }
        assert_eq!(to_256(255, 0, 0), 196);
        assert_eq!(to_256(128, 128, 128), 244);
        assert_eq!(to_16((200, 30, 30)), Color::Red);
    }

    #[test]
    fn the_light_theme_sets_its_background() {
        let mut errs = Vec::new();
        let t = load("light", None, &mut errs).expect("light");
        assert!(t.background().bg.is_some(), "{:?}", t.background());
        assert!(!t.dark);
    }

    #[test]
    fn colours_parse_and_bad_ones_say_what_is_accepted() {
        assert_eq!(parse_colour("#ff0080"), Ok(Color::Rgb(255, 0, 128)));
        assert_eq!(parse_colour("light-blue"), Ok(Color::LightBlue));
        assert_eq!(parse_colour("42"), Ok(Color::Indexed(42)));
        let e = parse_colour("#12").unwrap_err();
        assert!(e.contains("#rrggbb"), "{e}");
        let e = parse_colour("chartreuse").unwrap_err();
        assert!(e.contains("expected a name"), "{e}");
    }

    #[test]
    fn a_broken_user_theme_names_file_line_and_role() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("themes")).unwrap();
        std::fs::write(
            dir.path().join("themes/mine.toml"),
            "[meta]\nname = \"mine\"\nextends = \"default\"\n\n[ui]\ntext = \"$nope\"\nsparkle = \"red\"\n",
        )
        .unwrap();
        let mut errs = Vec::new();
        let t = load("mine", Some(dir.path()), &mut errs);
        assert!(t.is_none());
        let text = errs
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n");
        assert!(text.contains("mine.toml:6: [ui] text: $nope"), "{text}");
        assert!(
            text.contains("mine.toml:7: [ui] sparkle: unknown role"),
            "{text}"
        );
    }

    #[test]
    fn a_user_theme_extends_a_bundled_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("themes")).unwrap();
        std::fs::write(
            dir.path().join("themes/mine.toml"),
            "[meta]\nname = \"mine\"\nextends = \"light\"\n[palette]\nx = \"#010203\"\n[ui]\ntext = \"$x\"\n",
        )
        .unwrap();
        let mut errs = Vec::new();
        let t = load("mine", Some(dir.path()), &mut errs).expect("loads");
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(t.text().fg, Some(Color::Rgb(1, 2, 3)));
        assert!(!t.dark);
        assert!(names(Some(dir.path())).contains(&"mine".to_string()));
    }

    #[test]
    fn unknown_theme_lists_the_known_ones() {
        let mut errs = Vec::new();
        assert!(load("nope", None, &mut errs).is_none());
        assert!(errs[0].message.contains("default, light"), "{errs:?}");
        let mut errs = Vec::new();
        assert!(load("../etc/passwd", None, &mut errs).is_none());
        assert!(errs[0].message.contains("letters, digits"));
    }
}

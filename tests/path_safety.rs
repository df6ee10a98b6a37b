//! Path safety of the built-in runbooks against a local attacker, with real
//! processes (run as root under VIGIL_E2E=1):
//! - disk_cleanup while an unprivileged user (`nobody`) swaps a directory
//!   under the root for a symlink to a victim tree in a tight loop;
//! - log_rotation with a directory symlink planted under /var/log, and
//!   swapped in a loop (in a private mount namespace with a tmpfs on
//!   /var/log, so the real /var/log is untouched);
//! - disk_cleanup with an old file held open by another user's process,
//!   run as a user who cannot see it (and behind hidepid, and in another
//!   PID namespace): it fails closed and removes nothing.
//!
//! Each asserts that nothing outside the root changed, byte for byte.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{execution, fact, hash_tree, local_set, need, show};

/// A child process killed and reaped on drop.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn must_be_root() {
    let uid = String::from_utf8_lossy(&Command::new("id").arg("-u").output().unwrap().stdout)
        .trim()
        .to_string();
    assert_eq!(
        uid, "0",
        "these tests act as root and as other users: run them as root"
    );
}

fn tempdir_in(parent: &str, prefix: &str) -> tempfile::TempDir {
    std::fs::create_dir_all(parent).expect("parent");
    let d = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(parent)
        .expect("temp dir");
    chmod(d.path(), 0o755);
    d
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn chown(p: &Path, owner: &str) {
    let st = Command::new("chown")
        .arg("-R")
        .arg(owner)
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success(), "chown {owner} {}", p.display());
}

fn touch_old(p: &Path) {
    let st = Command::new("touch")
        .args(["-h", "-d", "30 days ago"])
        .arg(p)
        .status()
        .expect("touch");
    assert!(st.success());
}

/// A victim tree outside every root: `n` old root-owned files named like
/// the attacker's, `f0000`...
fn victim(n: usize) -> tempfile::TempDir {
    let v = tempdir_in("/tmp", "vigil-victim-");
    for i in 0..n {
        let f = v.path().join(format!("f{i:04}"));
        std::fs::write(&f, format!("victim file {i}\n")).unwrap();
        touch_old(&f);
    }
    v
}

/// Entries of two tree hashes that differ (changed, gone or new).
fn changed(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> usize {
    let mut n = before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(*v))
        .count();
    n += after.keys().filter(|k| !before.contains_key(*k)).count();
    n
}

/// The argv of one step of a plan, by name.
fn step_argv(x: &vigil::engine::Execution, name: &str) -> Vec<String> {
    x.steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name:?}"))
        .argv
        .clone()
}

fn as_user(user: &str, group: &str) -> Command {
    let mut c = Command::new(need("setpriv", "util-linux"));
    c.arg(format!("--reuid={user}"))
        .arg(format!("--regid={group}"))
        .arg("--clear-groups")
        .arg("--");
    c
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The attacker of disk_cleanup, as `nobody` in its own directory under the
/// root: makes `d/` with `n` old files named like the victim's, then until
/// `stop` exists swaps `d` for a symlink to the victim and back; prints the
/// number of swaps.
const SWAPPER: &str = r#"
my ($victim, $n) = @ARGV;
my $old = time - 30 * 86400;
mkdir "d" or die "mkdir d: $!";
for my $i (0 .. $n - 1) {
  my $f = sprintf "d/f%04d", $i;
  open my $h, ">", $f or die "$f: $!"; print $h "attacker $i\n"; close $h;
  utime $old, $old, $f;
}
symlink $victim, "l" or die "symlink: $!";
open my $r, ">", "ready" or die "ready: $!"; close $r;
my $swaps = 0;
until (-e "stop") {
  rename "d", "d.real" or last;
  rename "l", "d" or last;
  rename "d", "l" or last;
  rename "d.real", "d" or last;
  $swaps++;
}
print "$swaps\n";
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(vigil_e2e),
    ignore = "needs VIGIL_E2E=1: runs as root with setpriv and unshare"
)]
async fn disk_cleanup_never_follows_a_directory_swapped_for_a_symlink() {
    must_be_root();
    let perl = need("perl", "perl-base");
    const FILES: usize = 300;
    const TRIALS: usize = 12;
    let victim = victim(FILES);
    let before = hash_tree(victim.path());
    let vtmp = tempdir_in("/var/tmp", "vigil-race-");
    let logs = tempdir_in("/var/log", "vigil-race-");
    let mut total_swaps = 0u64;
    let mut removed = 0i64;
    for trial in 0..TRIALS {
        let root = tempdir_in("/tmp", "vigil-race-");
        let work = root.path().join("work");
        std::fs::create_dir(&work).unwrap();
        chown(&work, "nobody:nogroup");
        let attacker = Reaped(
            as_user("nobody", "nogroup")
                .arg(&perl)
                .arg("-e")
                .arg(SWAPPER)
                .arg(victim.path())
                .arg(FILES.to_string())
                .current_dir(&work)
                .stdout(Stdio::piped())
                .spawn()
                .expect("setpriv runs the attacker"),
        );
        wait_for("the attacker's files", || work.join("ready").exists());
        let x = execution(
            "disk_cleanup",
            "localhost",
            "local",
            &[
                ("max_age_days", "7"),
                ("tmp_root", root.path().to_str().unwrap()),
                ("var_tmp_root", vtmp.path().to_str().unwrap()),
                ("log_root", logs.path().to_str().unwrap()),
                ("system_caches", "no"),
            ],
        );
        let o = local_set().run(&x).await;
        std::fs::write(work.join("stop"), "").unwrap();
        let out = attacker.take().wait_with_output_ref();
        let swaps: u64 = out.trim().parse().unwrap_or(0);
        total_swaps += swaps;
        removed += fact(&o, "removed_files").unwrap_or(0);
        let after = hash_tree(victim.path());
        assert_eq!(
            changed(&before, &after),
            0,
            "trial {trial}: {} of {} victim entries outside the root changed ({swaps} swaps during the run): {}",
            changed(&before, &after),
            before.len(),
            show(&o)
        );
        assert!(o.success, "trial {trial}: {}", show(&o));
    }
    assert!(
        total_swaps > 100,
        "the attacker swapped only {total_swaps} times: the race was not exercised"
    );
    assert!(removed > 0, "nothing was ever removed under the root");
    eprintln!(
        "{TRIALS} trials, {total_swaps} swaps, {removed} attacker files removed inside the root, victim unchanged"
    );
}

trait WaitRef {
    fn wait_with_output_ref(self) -> String;
}

impl WaitRef for Child {
    fn wait_with_output_ref(mut self) -> String {
        use std::io::Read;
        let mut s = String::new();
        if let Some(mut out) = self.stdout.take() {
            let _ = out.read_to_string(&mut s);
        }
        let _ = self.wait();
        s
    }
}

impl Reaped {
    fn take(mut self) -> Child {
        // Leave a harmless child to the drop.
        std::mem::replace(
            &mut self.0,
            Command::new("true").spawn().expect("true runs"),
        )
    }
}

/// Runs in a private mount namespace (`unshare -m`) as root, with a tmpfs
/// on /var/log: $1 the victim directory, $2 trials, then the rotation
/// step's argv. First a symlink `evil` -> victim planted by `nobody` in
/// /var/log/app (the step runs once); then `nobody` swaps `evil` between a
/// real directory (holding its own `passwd`) and the symlink while the step
/// runs `trials` times.
const LOG_NS: &str = r#"
set -u
victim=$1; trials=$2; shift 2
mount -t tmpfs -o size=32m,mode=0755 vigil-test-log /var/log || exit 90
mkdir /var/log/app && chown nobody:nogroup /var/log/app || exit 91
setpriv --reuid=nobody --regid=nogroup --clear-groups -- ln -s "$victim" /var/log/app/evil || exit 92
"$@"
echo "planted_exit=$?"
rm -f /var/log/app/evil
setpriv --reuid=nobody --regid=nogroup --clear-groups -- perl -e '
  my $victim = shift; chdir "/var/log/app" or die;
  symlink $victim, "l" or die; mkdir "evil" or die;
  open my $r, ">", "ready" or die; close $r;
  my $swaps = 0;
  until (-e "stop") {
    if (open my $h, ">>", "evil/passwd") { print $h "app line $swaps\n"; close $h }
    rename "evil", "evil.real" or last; rename "l", "evil" or last;
    rename "evil", "l" or last; rename "evil.real", "evil" or last;
    $swaps++;
  }
  open my $o, ">", "swaps" or die; print $o $swaps; close $o;
' "$victim" &
while [ ! -e /var/log/app/ready ]; do sleep 0.01; done
i=0; ok=0; refused=0
while [ "$i" -lt "$trials" ]; do
  "$@" >/dev/null 2>&1
  case $? in 0) ok=$((ok + 1)) ;; *) refused=$((refused + 1)) ;; esac
  i=$((i + 1))
done
touch /var/log/app/stop; wait
echo "race_ok=$ok race_refused=$refused swaps=$(cat /var/log/app/swaps)"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(vigil_e2e),
    ignore = "needs VIGIL_E2E=1: runs as root with setpriv and unshare"
)]
async fn log_rotation_never_goes_through_a_directory_symlink_under_var_log() {
    must_be_root();
    let unshare = need("unshare", "util-linux");
    need("setpriv", "util-linux");
    need("perl", "perl-base");
    need("gzip", "gzip");
    let victim = tempdir_in("/tmp", "vigil-victim-lr-");
    let passwd = victim.path().join("passwd");
    std::fs::write(
        &passwd,
        "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n",
    )
    .unwrap();
    std::fs::write(victim.path().join("shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
    let before = hash_tree(victim.path());
    let x = execution(
        "log_rotation",
        "localhost",
        "local",
        &[
            ("path", "/var/log/app/evil/passwd"),
            ("keep", "3"),
            ("method", "copytruncate"),
        ],
    );
    // The step that changes the host (whatever its name).
    let rotate = x
        .steps
        .iter()
        .find(|s| !s.read_only && !s.rollback)
        .expect("a rotation step")
        .argv
        .clone();
    const TRIALS: usize = 150;
    let out = Command::new(unshare)
        .args(["-m", "--propagation", "private", "sh", "-c", LOG_NS, "sh"])
        .arg(victim.path())
        .arg(TRIALS.to_string())
        .args(&rotate)
        .output()
        .expect("unshare runs");
    let t = text(&out);
    let after = hash_tree(victim.path());
    assert_eq!(
        changed(&before, &after),
        0,
        "{} of {} entries outside /var/log changed: {t}",
        changed(&before, &after),
        before.len()
    );
    assert!(out.status.success(), "{t}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("planted_exit=2"), "{t}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/var/log/app/evil is a symlink"),
        "{t}"
    );
    let swaps: u64 = stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix("swaps="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(swaps > 100, "the race was not exercised: {t}");
    eprintln!("{}", stdout.trim());
}

/// An old file held open by a `nobody` process, in a root owned by
/// `daemon`, with a second old file beside it.
struct InUse {
    root: tempfile::TempDir,
    vtmp: tempfile::TempDir,
    logs: tempfile::TempDir,
    held: PathBuf,
    other: PathBuf,
    _holder: Reaped,
}

fn in_use() -> InUse {
    let root = tempdir_in("/tmp", "vigil-inuse-");
    let held = root.path().join("held.bin");
    let other = root.path().join("other.bin");
    std::fs::write(&held, vec![b'h'; 50_000]).unwrap();
    std::fs::write(&other, vec![b'o'; 7_000]).unwrap();
    chmod(&held, 0o644);
    touch_old(&held);
    touch_old(&other);
    chown(root.path(), "daemon:daemon");
    let holder = Reaped(
        as_user("nobody", "nogroup")
            .args(["sh", "-c", "exec 3<\"$1\"; echo held; exec sleep 600", "sh"])
            .arg(&held)
            .stdout(Stdio::piped())
            .spawn()
            .expect("holder"),
    );
    let mut holder = holder;
    {
        use std::io::Read;
        let mut b = [0u8; 5];
        holder
            .0
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut b)
            .expect("the holder opened the file");
    }
    InUse {
        root,
        vtmp: tempdir_in("/var/tmp", "vigil-inuse-"),
        logs: tempdir_in("/var/log", "vigil-inuse-"),
        held,
        other,
        _holder: holder,
    }
}

impl InUse {
    fn execution(&self) -> vigil::engine::Execution {
        execution(
            "disk_cleanup",
            "localhost",
            "local",
            &[
                ("max_age_days", "7"),
                ("tmp_root", self.root.path().to_str().unwrap()),
                ("var_tmp_root", self.vtmp.path().to_str().unwrap()),
                ("log_root", self.logs.path().to_str().unwrap()),
                ("system_caches", "no"),
            ],
        )
    }

    fn assert_nothing_removed(&self, why: &str, o: &Output) {
        let t = text(o);
        assert!(
            self.held.exists(),
            "{why}: the held-open file was removed: {t}"
        );
        assert!(
            self.other.exists(),
            "{why}: a file was removed although the step was blind: {t}"
        );
        assert!(
            !o.status.success(),
            "{why}: the step did not fail closed: {t}"
        );
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            stdout.contains("freed_bytes=0")
                && !stdout
                    .lines()
                    .any(|l| l.contains("freed_bytes=") && !l.contains("freed_bytes=0")),
            "{why}: bytes were counted as freed: {t}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(vigil_e2e),
    ignore = "needs VIGIL_E2E=1: runs as root with setpriv and unshare"
)]
async fn disk_cleanup_fails_closed_when_it_cannot_see_other_users_open_files() {
    must_be_root();
    let unshare = need("unshare", "util-linux");
    let cleanup_name = "remove old files under the roots";

    // As daemon: nobody's descriptors are not readable.
    let u = in_use();
    let argv = step_argv(&u.execution(), cleanup_name);
    let o = as_user("daemon", "daemon").args(&argv).output().unwrap();
    u.assert_nothing_removed("as daemon", &o);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot read /proc/"),
        "{}",
        text(&o)
    );

    // Behind hidepid=2 (a private mount namespace with its own /proc):
    // daemon does not even see nobody's process.
    let u = in_use();
    let argv = step_argv(&u.execution(), cleanup_name);
    let o = Command::new(&unshare)
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg("mount -t proc -o hidepid=2 proc /proc || exit 90; exec setpriv --reuid=daemon --regid=daemon --clear-groups -- \"$@\"")
        .arg("sh")
        .args(&argv)
        .output()
        .unwrap();
    assert_ne!(
        o.status.code(),
        Some(90),
        "mount proc hidepid=2: {}",
        text(&o)
    );
    u.assert_nothing_removed("hidepid=2", &o);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("hidepid"),
        "{}",
        text(&o)
    );

    // As root in another PID namespace: the holder outside it is invisible.
    let u = in_use();
    let argv = step_argv(&u.execution(), cleanup_name);
    let o = Command::new(&unshare)
        .args(["-m", "-p", "-f", "--mount-proc"])
        .args(&argv)
        .output()
        .unwrap();
    u.assert_nothing_removed("another PID namespace", &o);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("PID namespace"),
        "{}",
        text(&o)
    );

    // As root on the host: the held file is kept, the other one removed and
    // only its bytes counted.
    let u = in_use();
    let o = local_set().run(&u.execution()).await;
    assert!(o.success, "{}", show(&o));
    assert!(u.held.exists(), "{}", show(&o));
    assert!(!u.other.exists(), "{}", show(&o));
    assert_eq!(fact(&o, "skipped_open"), Some(1), "{}", show(&o));
    assert_eq!(fact(&o, "freed_bytes"), Some(7_000), "{}", show(&o));
}

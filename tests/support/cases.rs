//! The built-in runbooks run for real against this machine, through a given
//! executor set (local, or ssh to 127.0.0.1), each checking the host
//! afterwards. Shared by tests/exec_local.rs and tests/exec_ssh.rs.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vigil::exec::ExecutorSet;

use super::{execution, fact, hash_tree, need, sh, show};

/// A child process killed and reaped on drop.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn touch_old(p: &Path) {
    let st = Command::new("touch")
        .args(["-h", "-d", "30 days ago"])
        .arg(p)
        .status()
        .expect("touch");
    assert!(st.success());
}

fn write(p: &Path, bytes: usize) {
    std::fs::write(p, vec![b'x'; bytes]).expect("write");
}

fn tempdir_in(parent: &str, prefix: &str) -> tempfile::TempDir {
    std::fs::create_dir_all(parent).expect("parent");
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(parent)
        .expect("temp dir")
}

/// disk_cleanup on temporary trees under /tmp, /var/tmp and /var/log with
/// symlinks pointing outside, an open file, young files and (when a tmpfs
/// can be mounted) another file system; nothing outside changes.
pub async fn disk_cleanup(set: &ExecutorSet, executor: &str, host: &str) {
    let tmp = tempdir_in("/tmp", "vigil-dc-");
    let vtmp = tempdir_in("/var/tmp", "vigil-dc-");
    let logs = tempdir_in("/var/log", "vigil-dc-");
    let outside = tempdir_in("/tmp", "vigil-outside-");
    let t = tmp.path();
    // Outside the roots: must not change at all.
    write(&outside.path().join("secret.txt"), 1000);
    std::fs::create_dir(outside.path().join("dir")).unwrap();
    write(&outside.path().join("dir/old.bin"), 2000);
    touch_old(&outside.path().join("secret.txt"));
    touch_old(&outside.path().join("dir/old.bin"));
    // Inside.
    write(&t.join("old.bin"), 10_000);
    touch_old(&t.join("old.bin"));
    write(&t.join("young.bin"), 5_000);
    std::fs::create_dir(t.join("sub")).unwrap();
    write(&t.join("sub/old2.bin"), 3_000);
    touch_old(&t.join("sub/old2.bin"));
    write(&t.join("open.bin"), 7_000);
    touch_old(&t.join("open.bin"));
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), t.join("link-out")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("dir"), t.join("dir-out")).unwrap();
    touch_old(&t.join("link-out"));
    touch_old(&t.join("dir-out"));
    write(&t.join("weird name; rm -rf $HOME"), 100);
    touch_old(&t.join("weird name; rm -rf $HOME"));
    // Another file system inside the root, when one can be mounted here.
    let mnt = t.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&mnt)
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if mounted {
        write(&mnt.join("other-fs.bin"), 4_000);
        touch_old(&mnt.join("other-fs.bin"));
    } else {
        eprintln!("no tmpfs could be mounted here: the cross-file-system case is not exercised");
    }
    // A process holding the old file open.
    let holder = Reaped(
        Command::new("sh")
            .arg("-c")
            .arg("exec 3<\"$1\"; exec sleep 600")
            .arg("sh")
            .arg(t.join("open.bin"))
            .spawn()
            .expect("holder"),
    );
    std::thread::sleep(Duration::from_millis(200));
    write(&vtmp.path().join("old.tmp"), 6_000);
    touch_old(&vtmp.path().join("old.tmp"));
    let l = logs.path();
    write(&l.join("app.log"), 1_000);
    touch_old(&l.join("app.log"));
    write(&l.join("app.log.1"), 20_000);
    touch_old(&l.join("app.log.1"));
    write(&l.join("app.log.2.gz"), 30_000);
    touch_old(&l.join("app.log.2.gz"));
    write(&l.join("young.log.1"), 800);

    let before_outside = hash_tree(outside.path());
    let x = execution(
        "disk_cleanup",
        host,
        executor,
        &[
            ("mountpoint", "/"),
            ("max_age_days", "7"),
            ("tmp_root", t.to_str().unwrap()),
            ("var_tmp_root", vtmp.path().to_str().unwrap()),
            ("log_root", l.to_str().unwrap()),
            ("system_caches", "no"),
        ],
    );
    let o = set.run(&x).await;
    assert!(o.success, "{}", show(&o));
    let removed = 10_000 + 3_000 + 100 + 6_000 + 20_000 + 30_000;
    assert_eq!(fact(&o, "freed_bytes"), Some(removed), "{}", show(&o));
    assert_eq!(fact(&o, "skipped_open"), Some(1), "{}", show(&o));
    assert!(fact(&o, "used_kb_before").is_some() && fact(&o, "used_kb_after").is_some());
    for gone in [
        t.join("old.bin"),
        t.join("sub/old2.bin"),
        t.join("weird name; rm -rf $HOME"),
        vtmp.path().join("old.tmp"),
        l.join("app.log.1"),
        l.join("app.log.2.gz"),
    ] {
        assert!(!gone.exists(), "{} should be removed", gone.display());
    }
    for kept in [
        t.join("young.bin"),
        t.join("open.bin"),
        l.join("app.log"),
        l.join("young.log.1"),
    ] {
        assert!(kept.exists(), "{} must stay", kept.display());
    }
    assert!(std::fs::symlink_metadata(t.join("link-out")).is_ok());
    assert!(std::fs::symlink_metadata(t.join("dir-out")).is_ok());
    assert_eq!(
        before_outside,
        hash_tree(outside.path()),
        "outside the roots changed"
    );
    if mounted {
        assert!(mnt.join("other-fs.bin").exists(), "crossed a file system");
        let _ = Command::new("umount").arg(&mnt).status();
    }
    drop(holder);
}

/// log_rotation with the real logrotate: the file is rotated and
/// compressed, and the rotated copy holds every byte it held.
pub async fn log_rotation(set: &ExecutorSet, executor: &str, host: &str) {
    need("gzip", "gzip");
    let logs = tempdir_in("/var/log", "vigil-lr-");
    let f = logs.path().join("app.log");
    let content: String = (0..20_000)
        .map(|i| format!("line {i} of the log\n"))
        .collect();
    std::fs::write(&f, &content).unwrap();
    let x = execution(
        "log_rotation",
        host,
        executor,
        &[("path", f.to_str().unwrap()), ("keep", "3")],
    );
    let o = set.run(&x).await;
    assert!(o.success, "{}", show(&o));
    assert_eq!(fact(&o, "bytes_before"), Some(content.len() as i64));
    assert_eq!(fact(&o, "bytes_after"), Some(0));
    assert_eq!(std::fs::metadata(&f).unwrap().len(), 0);
    let gz = logs.path().join("app.log.1.gz");
    let out = Command::new("gzip").arg("-cd").arg(&gz).output().unwrap();
    assert!(out.status.success(), "{} missing", gz.display());
    assert_eq!(String::from_utf8_lossy(&out.stdout), content);
}

/// log_rotation with method create: a live writer (one numbered line every
/// 5 ms, reopening its log on SIGHUP) loses no line across the rotation.
pub async fn log_rotation_create(set: &ExecutorSet, executor: &str, host: &str) {
    need("gzip", "gzip");
    let logs = tempdir_in("/var/log", "vigil-lrc-");
    let f = logs.path().join("app.log");
    let pid_file = logs.path().join("app.pid");
    let stop = logs.path().join("stop");
    let mut writer = Reaped(
        Command::new(need("perl", "perl-base"))
            .arg("-e")
            .arg(
                r#"use IO::Handle; my ($f, $p, $stop) = @ARGV; my $fh;
                   sub reopen { open($fh, '>>', $f) or die; $fh->autoflush(1) }
                   reopen(); $SIG{HUP} = \&reopen;
                   open(my $ph, '>', $p) or die; print $ph "$$
"; close $ph;
                   my $i = 0; until (-e $stop) { print $fh "line $i
"; $i++; select(undef, undef, undef, 0.005) }
                   print $fh "last $i
";"#,
            )
            .arg(&f)
            .arg(&pid_file)
            .arg(&stop)
            .spawn()
            .unwrap(),
    );
    wait_for("the writer's pid file", || pid_file.exists() && f.exists());
    std::thread::sleep(Duration::from_millis(500));
    let x = execution(
        "log_rotation",
        host,
        executor,
        &[
            ("path", f.to_str().unwrap()),
            ("method", "create"),
            ("pid_file", pid_file.to_str().unwrap()),
            ("reopen_signal", "HUP"),
        ],
    );
    let o = set.run(&x).await;
    assert!(o.success, "{}", show(&o));
    assert_eq!(fact(&o, "reopen_signalled"), Some(1), "{}", show(&o));
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&stop, "").unwrap();
    let _ = writer.0.wait();
    let rotated = std::fs::read_to_string(logs.path().join("app.log.1")).unwrap();
    let current = std::fs::read_to_string(&f).unwrap();
    assert!(!current.is_empty(), "the writer did not reopen its log");
    let all = format!("{rotated}{current}");
    let mut next = 0;
    for l in all.lines() {
        if let Some(n) = l.strip_prefix("line ") {
            assert_eq!(
                n.parse::<u64>().unwrap(),
                next,
                "a line was lost or reordered"
            );
            next += 1;
        }
    }
    assert!(
        all.contains(&format!("last {next}")),
        "lines lost at the end"
    );
}

/// A perl interpreter copied under a unique name, so its comm is unique.
pub fn unique_perl(dir: &Path, name: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::copy(need("perl", "perl-base"), &p).expect("copy perl");
    p
}

fn zombies_of(ppid: u32) -> usize {
    sh(&format!(
        "ps -eo ppid=,stat= | awk '$1 == {ppid} && $2 ~ /^Z/' | wc -l"
    ))
    .trim()
    .parse()
    .unwrap_or(0)
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// zombie_killer: a parent that reaps only on SIGCHLD gets nudged and its
/// zombies disappear; a parent that never reaps is terminated only when
/// its name is allowed.
pub async fn zombie_killer(set: &ExecutorSet, executor: &str, host: &str) {
    let dir = tempfile::tempdir().unwrap();
    let tag = std::process::id() % 100_000;
    // Reaps only when a SIGCHLD arrives after its children died.
    let reaper_name = format!("zr{tag}{}", executor.len());
    let reaper = unique_perl(dir.path(), &reaper_name);
    let mut p = Reaped(
        Command::new(&reaper)
            .arg("-e")
            .arg("for (1..5) { exit 0 unless fork } sleep 1; $SIG{CHLD} = sub { 1 while waitpid(-1, 1) > 0 }; sleep 1 while 1")
            .spawn()
            .unwrap(),
    );
    let ppid = p.0.id();
    wait_for("5 zombies", || zombies_of(ppid) == 5);
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(zombies_of(ppid), 5);
    let x = execution(
        "zombie_killer",
        host,
        executor,
        &[("term_allow", "none"), ("max_zombies", "100000")],
    );
    let o = set.run(&x).await;
    assert!(o.success, "{}", show(&o));
    assert!(fact(&o, "parents_nudged").unwrap_or(0) >= 1, "{}", show(&o));
    assert_eq!(fact(&o, "parents_terminated"), Some(0), "{}", show(&o));
    wait_for("zombies reaped after SIGCHLD", || zombies_of(ppid) == 0);
    assert!(p.0.try_wait().unwrap().is_none(), "the parent must live");

    // A parent that never reaps: SIGTERM only because it is allow-listed.
    let stubborn_name = format!("zs{tag}{}", executor.len());
    let stubborn = unique_perl(dir.path(), &stubborn_name);
    let mut s = Reaped(
        Command::new(&stubborn)
            .arg("-e")
            .arg("for (1..3) { exit 0 unless fork } sleep 1 while 1")
            .spawn()
            .unwrap(),
    );
    let spid = s.0.id();
    wait_for("3 zombies", || zombies_of(spid) == 3);
    let x = execution(
        "zombie_killer",
        host,
        executor,
        &[("term_allow", "none"), ("max_zombies", "100000")],
    );
    let o = set.run(&x).await;
    assert!(o.success, "{}", show(&o));
    assert_eq!(
        zombies_of(spid),
        3,
        "not allowed: the parent keeps its zombies"
    );
    assert!(s.0.try_wait().unwrap().is_none());
    let x = execution(
        "zombie_killer",
        host,
        executor,
        &[("term_allow", &stubborn_name), ("max_zombies", "100000")],
    );
    let o = set.run(&x).await;
    assert!(o.success, "{}", show(&o));
    assert!(
        fact(&o, "parents_terminated").unwrap_or(0) >= 1,
        "{}",
        show(&o)
    );
    wait_for("the stubborn parent ended", || {
        s.0.try_wait().ok().flatten().is_some()
    });
    // The reaper (not allow-listed) was never terminated.
    assert!(p.0.try_wait().unwrap().is_none());
}

/// memory_pressure in kill mode: an allow-listed runaway that ignores
/// SIGTERM gets SIGKILL; a process not allow-listed is refused.
pub async fn memory_pressure_kill(set: &ExecutorSet, executor: &str, host: &str) {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("rw{}{}", std::process::id() % 100_000, executor.len());
    let perl = unique_perl(dir.path(), &name);
    let mut r = Reaped(
        Command::new(&perl)
            .arg("-e")
            .arg("$SIG{TERM} = 'IGNORE'; my $x = 'a' x 50_000_000; sleep 1 while 1")
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));
    // Not allow-listed: refused, untouched.
    let x = execution(
        "memory_pressure",
        host,
        executor,
        &[
            ("service", "app"),
            ("mode", "kill"),
            ("process", &name),
            ("kill_allow", "java,node"),
            ("grace_seconds", "1"),
        ],
    );
    let o = set.run(&x).await;
    assert!(!o.success, "{}", show(&o));
    assert!(o.detail.contains("allow-list"), "{}", show(&o));
    assert!(r.0.try_wait().unwrap().is_none());
    // Allow-listed: TERM (ignored), then KILL.
    let x = execution(
        "memory_pressure",
        host,
        executor,
        &[
            ("service", "app"),
            ("mode", "kill"),
            ("process", &name),
            ("kill_allow", &format!("java,{name}")),
            ("grace_seconds", "1"),
        ],
    );
    let o = set.run(&x).await;
    assert!(o.success, "{}", show(&o));
    assert_eq!(fact(&o, "sigterm"), Some(1), "{}", show(&o));
    assert_eq!(fact(&o, "sigkill"), Some(1), "{}", show(&o));
    let st = r.0.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(9));
}

/// memory_pressure: the runaway exits on SIGTERM and its PID is taken by a
/// new process with the same name before SIGKILL; the new process must not
/// be signalled. Forces the reuse with /proc/sys/kernel/ns_last_pid.
pub async fn memory_pressure_pid_reuse(set: &ExecutorSet, executor: &str, host: &str) {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("ru{}{}", std::process::id() % 100_000, executor.len());
    let perl = unique_perl(dir.path(), &name);
    let script = "$SIG{TERM} = sub { exit 0 }; sleep 1 while 1";
    let last = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid").unwrap_or_default();
    assert!(
        std::fs::write("/proc/sys/kernel/ns_last_pid", last.trim()).is_ok(),
        "this test forces PID reuse through /proc/sys/kernel/ns_last_pid: run it as root"
    );
    let mut conclusive = false;
    for _ in 0..6 {
        let mut old = Command::new(&perl).arg("-e").arg(script).spawn().unwrap();
        let pid = old.id();
        let perl2 = perl.clone();
        // Reap the runaway the moment it exits and start its double at the
        // same pid.
        let reuser = std::thread::spawn(move || {
            let _ = old.wait();
            let _ = std::fs::write("/proc/sys/kernel/ns_last_pid", format!("{}", pid - 1));
            Command::new(&perl2).arg("-e").arg(script).spawn().unwrap()
        });
        std::thread::sleep(Duration::from_millis(200));
        let x = execution(
            "memory_pressure",
            host,
            executor,
            &[
                ("service", "app"),
                ("mode", "kill"),
                ("process", &name),
                ("kill_allow", &name),
                ("grace_seconds", "2"),
            ],
        );
        let o = set.run(&x).await;
        let mut d = Reaped(reuser.join().unwrap());
        assert!(o.success, "{}", show(&o));
        if d.0.id() == pid {
            // Whatever the script saw, the double must be alive.
            assert!(
                d.0.try_wait().unwrap().is_none(),
                "the new process at the reused pid was killed: {}",
                show(&o)
            );
            assert_ne!(fact(&o, "sigkill"), Some(1), "{}", show(&o));
            if fact(&o, "pid_reused") == Some(1) {
                conclusive = true;
                break;
            }
        }
    }
    assert!(conclusive, "the PID was never reused in time (6 tries)");
}

/// A supervisord of its own, with one program; stopped on drop.
pub struct Supervisor {
    pub dir: tempfile::TempDir,
    pub conf: std::path::PathBuf,
    child: Reaped,
}

impl Supervisor {
    pub fn start(program: &str) -> Supervisor {
        let supervisord = need("supervisord", "supervisor");
        need("supervisorctl", "supervisor");
        let dir = tempfile::Builder::new()
            .prefix("vigil-sv-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let conf = d.join("supervisord.conf");
        let mut f = std::fs::File::create(&conf).unwrap();
        write!(
            f,
            "[unix_http_server]\nfile={d}/s.sock\n\n[supervisord]\nlogfile={d}/supervisord.log\npidfile={d}/supervisord.pid\nchildlogdir={d}\nnodaemon=true\n\n\
             [rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n\
             [supervisorctl]\nserverurl=unix://{d}/s.sock\n\n\
             [program:{program}]\ncommand=sleep 600\nstartsecs=1\nstopwaitsecs=5\nautostart=true\n",
            d = d.display()
        )
        .unwrap();
        let child = Reaped(
            Command::new(supervisord)
                .arg("-c")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let me = Supervisor { dir, conf, child };
        wait_for("supervisor program RUNNING", || {
            me.status(program).contains("RUNNING")
        });
        me
    }

    pub fn status(&self, program: &str) -> String {
        Command::new("supervisorctl")
            .arg("-c")
            .arg(&self.conf)
            .args(["status", program])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    pub fn pid(&self, program: &str) -> Option<String> {
        let s = self.status(program);
        let i = s.find("pid ")?;
        Some(s[i + 4..].split(',').next()?.trim().to_string())
    }

    pub fn ctl(&self, args: &[&str]) {
        let _ = Command::new("supervisorctl")
            .arg("-c")
            .arg(&self.conf)
            .args(args)
            .output();
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.ctl(&["shutdown"]);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// service_restart through supervisorctl: a stopped program comes back
/// RUNNING under a new pid; a protected service is refused by the runbook's
/// own check before anything runs (the engine's protected_target guard).
pub async fn service_restart_supervisor(set: &ExecutorSet, executor: &str, host: &str) {
    let sv = Supervisor::start("webapp");
    let pid0 = sv.pid("webapp").expect("a pid");
    sv.ctl(&["stop", "webapp"]);
    assert!(sv.status("webapp").contains("STOPPED"));
    let x = execution(
        "service_restart",
        host,
        executor,
        &[
            ("service", "webapp"),
            ("manager", "supervisor"),
            ("supervisor_config", sv.conf.to_str().unwrap()),
            ("verify_seconds", "15"),
        ],
    );
    let o = set.run(&x).await;
    assert!(o.success, "{}", show(&o));
    assert_eq!(fact(&o, "active"), Some(1));
    assert!(sv.status("webapp").contains("RUNNING"));
    assert_ne!(sv.pid("webapp").unwrap(), pid0);
    // A program that cannot start fails the verification.
    let x = execution(
        "service_restart",
        host,
        executor,
        &[
            ("service", "nosuchprogram"),
            ("manager", "supervisor"),
            ("supervisor_config", sv.conf.to_str().unwrap()),
            ("verify_seconds", "2"),
        ],
    );
    let o = set.run(&x).await;
    assert!(!o.success, "{}", show(&o));
}

//! Finding the inline scripts of an argument vector: the arguments an
//! interpreter runs as code (`sh -c SCRIPT`, `python3 -c CODE`, `perl -e`,
//! `awk 'PROGRAM'`, `sed SCRIPT`, `su -c CMD`, ...), however the interpreter
//! is reached (a path, `env`, `sudo`, `nice`, `timeout`, `xargs`,
//! `busybox`...).
//!
//! The search is deliberately conservative: every argument of the vector is
//! looked at as a possible interpreter name, so a wrapper the list does not
//! know still leads to the interpreter behind it. A value that happens to
//! look like an interpreter name can make an argument count as a script;
//! that only refuses more. Values must reach a script as positional
//! arguments after it, never inside it.

/// One inline script found in an argv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineScript {
    /// The index of the argument that holds the code (the option itself when
    /// the code is attached to it, as in `-cCODE` or `--eval=CODE`).
    pub index: usize,
    /// The program that runs it (base name), as written.
    pub interpreter: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// POSIX-like shells: any option cluster holding `c` makes the first
    /// operand the command string.
    Shell,
    Python,
    Perl,
    Ruby,
    Node,
    Awk,
    Sed,
    /// `su`, `runuser`: `-c CMD` / `--command=CMD` runs CMD with a shell.
    Su,
    /// `sudo -s|-i CMD...`: the command is joined and run by a shell.
    Sudo,
    /// `env -S STRING` / `--split-string=STRING`: STRING is parsed as a
    /// command line.
    Env,
    /// `flock FILE -c CMD`, `script -c CMD`: CMD runs with `sh -c`.
    DashC,
    /// `watch CMD...` runs its command with `sh -c` (unless `-x`).
    Watch,
    /// `ssh HOST CMD...`: the remote shell runs CMD.
    Ssh,
    Php,
    Lua,
}

fn kind_of(arg: &str) -> Option<Kind> {
    let base = arg.rsplit('/').next().unwrap_or(arg);
    let stem_is = |prefix: &str| {
        base.strip_prefix(prefix)
            .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit() || c == '.'))
    };
    Some(match base {
        "sh" | "bash" | "dash" | "zsh" | "ksh" | "ksh93" | "mksh" | "pdksh" | "oksh" | "ash"
        | "yash" | "posh" | "rbash" | "lksh" | "fish" | "csh" | "tcsh" => Kind::Shell,
        "awk" | "gawk" | "mawk" | "nawk" | "original-awk" => Kind::Awk,
        "sed" | "gsed" => Kind::Sed,
        "su" | "runuser" => Kind::Su,
        "sudo" | "doas" => Kind::Sudo,
        "env" => Kind::Env,
        "flock" | "script" => Kind::DashC,
        "watch" => Kind::Watch,
        "ssh" => Kind::Ssh,
        "nodejs" | "node" => Kind::Node,
        _ if stem_is("python") || stem_is("pypy") => Kind::Python,
        _ if base.strip_prefix("python").is_some_and(|r| {
            r.strip_suffix('m')
                .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
        }) =>
        {
            Kind::Python
        }
        _ if stem_is("perl") => Kind::Perl,
        _ if stem_is("ruby") => Kind::Ruby,
        _ if stem_is("node") => Kind::Node,
        _ if stem_is("php") => Kind::Php,
        _ if stem_is("lua") || stem_is("luajit") => Kind::Lua,
        _ => return None,
    })
}

/// A short option cluster (`-ec`, `-xec`), not `-`, `--` or a long option.
fn short_cluster(arg: &str) -> Option<&str> {
    let rest = arg.strip_prefix('-')?;
    if rest.is_empty() || rest.starts_with('-') {
        return None;
    }
    Some(rest)
}

/// Every inline script of `argv`.
pub fn inline_scripts(argv: &[String]) -> Vec<InlineScript> {
    let mut out = Vec::new();
    for (i, arg) in argv.iter().enumerate() {
        let Some(kind) = kind_of(arg) else { continue };
        let interpreter = arg.rsplit('/').next().unwrap_or(arg).to_string();
        let mut found = |index: usize| {
            if index < argv.len() && !out.iter().any(|s: &InlineScript| s.index == index) {
                out.push(InlineScript {
                    index,
                    interpreter: interpreter.clone(),
                });
            }
        };
        let rest = &argv[i + 1..];
        let at = |k: usize| i + 1 + k;
        match kind {
            Kind::Shell => {
                // sh [-abCefhimnuvx] [-o opt]... -c [opts] STRING [NAME [ARG]...]
                let mut c_seen = false;
                let mut k = 0;
                while k < rest.len() {
                    let a = rest[k].as_str();
                    if a == "--" {
                        if c_seen {
                            found(at(k + 1));
                        }
                        break;
                    }
                    if matches!(
                        a,
                        "-o" | "+o" | "-O" | "+O" | "--rcfile" | "--init-file" | "-C"
                    ) {
                        // The option's value is not code, but a value from
                        // a parameter has no business there either.
                        if c_seen {
                            found(at(k + 1));
                        }
                        k += 2;
                        continue;
                    }
                    if a == "--command" {
                        found(at(k + 1));
                        break;
                    }
                    if a.starts_with("--command=") {
                        found(at(k));
                        break;
                    }
                    if let Some(cl) = short_cluster(a).or_else(|| a.strip_prefix('+')) {
                        if cl.contains('c') {
                            c_seen = true;
                            // zsh and others accept `-c` with options
                            // after it: the cluster itself is looked at too.
                            found(at(k));
                        }
                        k += 1;
                        continue;
                    }
                    if a.starts_with("--") {
                        k += 1;
                        continue;
                    }
                    if c_seen {
                        found(at(k));
                    }
                    break;
                }
            }
            Kind::Python => {
                let mut k = 0;
                while k < rest.len() {
                    let a = rest[k].as_str();
                    if a == "--" || a == "-" || !a.starts_with('-') {
                        break; // a script file or stdin: the rest is sys.argv
                    }
                    if a.starts_with("--") {
                        k += 1;
                        continue;
                    }
                    let cl = &a[1..];
                    let mut stop = false;
                    let mut skip_next = false;
                    for (p, ch) in cl.char_indices() {
                        match ch {
                            'c' => {
                                found(at(k));
                                if p + 1 == cl.len() {
                                    found(at(k + 1));
                                }
                                stop = true;
                                break;
                            }
                            'm' => {
                                stop = true;
                                break;
                            }
                            'W' | 'X' => {
                                skip_next = p + 1 == cl.len();
                                break;
                            }
                            _ => {}
                        }
                    }
                    if stop {
                        break;
                    }
                    k += if skip_next { 2 } else { 1 };
                }
            }
            Kind::Perl | Kind::Ruby | Kind::Node | Kind::Php | Kind::Lua => {
                // Options whose value is code, and options whose value is
                // the rest of the cluster (or, when empty, the next argument).
                let (code, valued): (&[char], &[char]) = match kind {
                    Kind::Perl => (
                        &['e', 'E'],
                        // -l and -0 take digits only: the cluster goes on.
                        &['M', 'm', 'I', 'i', 'x', 'C', 'd', 'D'],
                    ),
                    Kind::Ruby => (
                        &['e'],
                        &['r', 'I', 'E', 'C', 'x', 'F', 'K', 'T', 'W', '0', 'i'],
                    ),
                    Kind::Node => (&['e', 'p'], &['r', 'C']),
                    Kind::Php => (&['r', 'B', 'R', 'E'], &['c', 'd', 'z', 'F']),
                    _ => (&['e'], &['l', 'i']),
                };
                let mut k = 0;
                while k < rest.len() {
                    let a = rest[k].as_str();
                    if a == "--" || a == "-" || !a.starts_with('-') {
                        break;
                    }
                    if let Some(long) = a.strip_prefix("--") {
                        if matches!(long, "eval" | "print" | "process-begin" | "process-code") {
                            found(at(k + 1));
                            k += 2;
                            continue;
                        }
                        if long.starts_with("eval=") || long.starts_with("print=") {
                            found(at(k));
                        }
                        k += 1;
                        continue;
                    }
                    let cl = &a[1..];
                    let mut next_is_code = false;
                    let mut skip_next = false;
                    for (p, ch) in cl.char_indices() {
                        if code.contains(&ch) {
                            found(at(k));
                            next_is_code = p + 1 == cl.len();
                            break;
                        }
                        if valued.contains(&ch) {
                            skip_next = p + 1 == cl.len() && matches!(ch, 'I' | 'r' | 'c' | 'd');
                            break;
                        }
                    }
                    if next_is_code {
                        found(at(k + 1));
                        k += 2;
                    } else if skip_next {
                        k += 2;
                    } else {
                        k += 1;
                    }
                }
            }
            Kind::Awk => {
                // awk [-F fs] [-v a=b] [-f file | -e/--source text] 'program' [file...]
                let mut from_file = false;
                let mut k = 0;
                while k < rest.len() {
                    let a = rest[k].as_str();
                    if a == "--" {
                        k += 1;
                        break;
                    }
                    if a == "-" || !a.starts_with('-') {
                        break;
                    }
                    match a {
                        "-e" | "--source" => {
                            found(at(k + 1));
                            k += 2;
                        }
                        "-f" | "--file" | "-i" | "--include" | "-l" | "--load" => {
                            // A program file named by a value is code too.
                            from_file |= a == "-f" || a == "--file";
                            found(at(k + 1));
                            k += 2;
                        }
                        "-F" | "-v" | "--assign" | "--field-separator" | "-W" => k += 2,
                        _ if a.starts_with("--source=") || a.starts_with("-e") => {
                            found(at(k));
                            k += 1;
                        }
                        _ if a.starts_with("-f") || a.starts_with("--file=") => {
                            from_file = true;
                            found(at(k));
                            k += 1;
                        }
                        _ => k += 1,
                    }
                }
                if !from_file {
                    found(at(k));
                }
            }
            Kind::Sed => {
                // sed [-n] [-e script]... [-f file]... [script] [file...]
                let mut given = false;
                let mut k = 0;
                while k < rest.len() {
                    let a = rest[k].as_str();
                    if a == "--" {
                        k += 1;
                        break;
                    }
                    if a == "-" || !a.starts_with('-') {
                        break;
                    }
                    if let Some(long) = a.strip_prefix("--") {
                        if matches!(long, "expression" | "file") {
                            given = true;
                            found(at(k + 1));
                            k += 2;
                            continue;
                        }
                        if long.starts_with("expression=") || long.starts_with("file=") {
                            given = true;
                            found(at(k));
                        }
                        if long == "line-length" {
                            k += 1;
                        }
                        k += 1;
                        continue;
                    }
                    let cl = &a[1..];
                    let mut next = 1;
                    for (p, ch) in cl.char_indices() {
                        match ch {
                            'e' | 'f' => {
                                given = true;
                                found(at(k));
                                if p + 1 == cl.len() {
                                    found(at(k + 1));
                                    next = 2;
                                }
                                break;
                            }
                            'l' => {
                                if p + 1 == cl.len() {
                                    next = 2;
                                }
                                break;
                            }
                            'i' => break,
                            _ => {}
                        }
                    }
                    k += next;
                }
                if !given {
                    found(at(k));
                }
            }
            Kind::Su => {
                let mut k = 0;
                while k < rest.len() {
                    let a = rest[k].as_str();
                    if a == "--" {
                        break;
                    }
                    if matches!(a, "--command" | "--session-command") {
                        found(at(k + 1));
                        k += 2;
                        continue;
                    }
                    if a.starts_with("--command=") || a.starts_with("--session-command=") {
                        found(at(k));
                    } else if let Some(cl) = short_cluster(a) {
                        for (p, ch) in cl.char_indices() {
                            if ch == 'c' {
                                found(at(k));
                                if p + 1 == cl.len() {
                                    found(at(k + 1));
                                    k += 1;
                                }
                                break;
                            }
                            if matches!(ch, 's' | 'g' | 'G' | 'w') {
                                if p + 1 == cl.len() {
                                    k += 1;
                                }
                                break;
                            }
                        }
                    }
                    k += 1;
                }
            }
            Kind::Sudo => {
                // With -s / -i (--shell, --login) the command is joined and
                // run by a shell: every argument after the options is code.
                let mut via_shell = false;
                let mut k = 0;
                while k < rest.len() {
                    let a = rest[k].as_str();
                    if a == "--" {
                        k += 1;
                        break;
                    }
                    if !a.starts_with('-') || a == "-" {
                        break;
                    }
                    if let Some(long) = a.strip_prefix("--") {
                        via_shell |= matches!(long, "shell" | "login");
                        let valued = matches!(
                            long,
                            "user"
                                | "group"
                                | "host"
                                | "prompt"
                                | "close-from"
                                | "chdir"
                                | "role"
                                | "type"
                                | "command-timeout"
                                | "other-user"
                                | "chroot"
                        );
                        k += if valued { 2 } else { 1 };
                        continue;
                    }
                    let cl = &a[1..];
                    let mut next = 1;
                    for (p, ch) in cl.char_indices() {
                        if matches!(ch, 's' | 'i') {
                            via_shell = true;
                        }
                        if "ughpCDrtTUR".contains(ch) {
                            if p + 1 == cl.len() {
                                next = 2;
                            }
                            break;
                        }
                    }
                    k += next;
                }
                if via_shell {
                    for j in k..rest.len() {
                        found(at(j));
                    }
                }
            }
            Kind::Env => {
                for (k, a) in rest.iter().enumerate() {
                    let a = a.as_str();
                    if a == "--split-string" || a == "-S" {
                        found(at(k + 1));
                    } else if a.starts_with("--split-string=")
                        || short_cluster(a).is_some_and(|cl| cl.contains('S'))
                    {
                        found(at(k));
                        if a.ends_with('S') {
                            found(at(k + 1));
                        }
                    } else if !a.starts_with('-') && !a.contains('=') {
                        break; // the command: looked at on its own
                    }
                }
            }
            Kind::DashC => {
                for (k, a) in rest.iter().enumerate() {
                    match a.as_str() {
                        "-c" | "--command" => found(at(k + 1)),
                        s if s.starts_with("--command=") => found(at(k)),
                        _ => {}
                    }
                }
            }
            Kind::Watch => {
                if !rest.iter().any(|a| a == "-x" || a == "--exec") {
                    let first = rest
                        .iter()
                        .position(|a| !a.starts_with('-'))
                        .unwrap_or(rest.len());
                    for j in first..rest.len() {
                        found(at(j));
                    }
                }
            }
            Kind::Ssh => {
                // ssh [options] HOST [COMMAND...]: the remote shell parses
                // the command.
                let mut k = 0;
                while k < rest.len() {
                    let a = rest[k].as_str();
                    if a == "--" {
                        k += 1;
                        break;
                    }
                    let Some(cl) = short_cluster(a) else { break };
                    // An option taking a value ends the cluster; when it is
                    // last, the value is the next argument.
                    let valued = cl
                        .char_indices()
                        .find(|(_, ch)| "BbcDEeFIiJLlmOopQRSWw".contains(*ch));
                    k += match valued {
                        Some((p, _)) if p + 1 == cl.len() => 2,
                        _ => 1,
                    };
                }
                for j in k + 1..rest.len() {
                    found(at(j));
                }
            }
        }
    }
    out.sort_by_key(|s| s.index);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    /// Does any inline script of this argv hold `{x}`?
    fn refused(a: &[&str]) -> bool {
        let v = argv(a);
        inline_scripts(&v)
            .iter()
            .any(|s| v[s.index].contains("{x}"))
    }

    #[test]
    fn every_way_of_putting_a_value_inside_a_script_is_found() {
        let cases: &[&[&str]] = &[
            &["sh", "-c", "echo {x}"],
            &["sh", "-ec", "echo {x}"],
            &["bash", "-xec", "echo {x}"],
            &["/bin/bash", "-o", "pipefail", "-c", "echo {x}"],
            &["sh", "-c", "-e", "echo {x}"],
            &["dash", "-c", "--", "echo {x}"],
            &["zsh", "-c", "echo {x}"],
            &["ksh", "-c", "echo {x}"],
            &["ash", "-c", "echo {x}"],
            &["/usr/bin/mksh", "-c", "echo {x}"],
            &["busybox", "sh", "-c", "echo {x}"],
            &["/bin/busybox", "ash", "-ec", "echo {x}"],
            &["env", "sh", "-c", "echo {x}"],
            &["env", "-i", "PATH=/bin", "FOO=1", "sh", "-c", "echo {x}"],
            &["/usr/bin/env", "-u", "HOME", "--", "bash", "-c", "echo {x}"],
            &["env", "-S", "sh -c 'echo {x}'"],
            &["env", "--split-string=echo {x}"],
            &["sudo", "sh", "-c", "echo {x}"],
            &["sudo", "-n", "-u", "root", "-E", "bash", "-ec", "echo {x}"],
            &["sudo", "-s", "echo", "{x}"],
            &["sudo", "-u", "app", "-i", "echo {x}"],
            &["nice", "-n", "10", "sh", "-c", "echo {x}"],
            &["ionice", "-c", "3", "sh", "-c", "echo {x}"],
            &["timeout", "5", "sh", "-c", "echo {x}"],
            &["timeout", "-k", "5", "10", "bash", "-c", "echo {x}"],
            &["nohup", "sh", "-c", "echo {x}"],
            &["setsid", "-w", "sh", "-c", "echo {x}"],
            &["xargs", "-0", "-r", "sh", "-c", "echo {x}"],
            &["chroot", "/srv/jail", "sh", "-c", "echo {x}"],
            &["stdbuf", "-oL", "sh", "-c", "echo {x}"],
            &["su", "-c", "echo {x}"],
            &["su", "-", "app", "-c", "echo {x}"],
            &["su", "app", "-s", "/bin/sh", "--command=echo {x}"],
            &["runuser", "-u", "app", "-c", "echo {x}"],
            &["flock", "/run/lock/x", "-c", "echo {x}"],
            &["watch", "-n", "1", "echo", "{x}"],
            &["ssh", "-p", "22", "host", "echo", "{x}"],
            &["python3", "-c", "print('{x}')"],
            &["python", "-c", "print('{x}')"],
            &["python3.11", "-c", "print('{x}')"],
            &["/usr/bin/python3", "-I", "-c", "print('{x}')"],
            &["python3", "-Ic", "print('{x}')"],
            &["python3", "-cprint('{x}')"],
            &["python3", "-W", "ignore", "-c", "print('{x}')"],
            &["perl", "-e", "print '{x}'"],
            &["perl", "-E", "say '{x}'"],
            &["perl", "-lne", "print '{x}'"],
            &["perl", "-Mstrict", "-we", "print '{x}'"],
            &["perl", "-e", "1", "-e", "print '{x}'"],
            &["perl", "-eprint'{x}'"],
            &["ruby", "-e", "puts '{x}'"],
            &["ruby", "-rjson", "-e", "puts '{x}'"],
            &["node", "-e", "console.log('{x}')"],
            &["node", "--eval", "console.log('{x}')"],
            &["node", "--eval=console.log('{x}')"],
            &["nodejs", "-p", "'{x}'"],
            &["awk", "{ print \"{x}\" }"],
            &["awk", "-F", ":", "-v", "a=1", "$1 == \"{x}\""],
            &["gawk", "-e", "BEGIN { print \"{x}\" }"],
            &["mawk", "--", "BEGIN { print \"{x}\" }"],
            &["sed", "s/a/{x}/"],
            &["sed", "-n", "-e", "s/a/{x}/p"],
            &["sed", "-i", "-e", "1e {x}", "/etc/hosts"],
            &["sed", "--expression=s/a/{x}/"],
            &["sed", "-E", "s/a/{x}/"],
            &["php", "-r", "echo '{x}';"],
            &["lua", "-e", "print('{x}')"],
            // Any of these inside a shell's positional arguments that it
            // runs as a command ("$@") is still found.
            &["sh", "-c", "exec \"$@\"", "sh", "sh", "-c", "echo {x}"],
        ];
        assert!(cases.len() >= 12);
        for c in cases {
            assert!(refused(c), "not refused: {c:?}");
        }
    }

    #[test]
    fn constant_scripts_with_positional_values_are_accepted() {
        let cases: &[&[&str]] = &[
            &["sh", "-c", "echo \"$1\"", "sh", "{x}"],
            &["sh", "-ec", "echo \"$1\"", "sh", "{x}"],
            &[
                "bash",
                "-o",
                "pipefail",
                "-c",
                "echo \"$1\"",
                "bash",
                "{x}",
                "{x}",
            ],
            &["env", "LC_ALL=C", "sh", "-c", "echo \"$1\"", "sh", "{x}"],
            &[
                "sudo",
                "-n",
                "-u",
                "app",
                "sh",
                "-c",
                "echo \"$1\"",
                "sh",
                "{x}",
            ],
            &["busybox", "sh", "-c", "echo \"$1\"", "sh", "{x}"],
            &["timeout", "5", "sh", "-c", "echo \"$1\"", "sh", "{x}"],
            &["python3", "-c", "import sys; print(sys.argv[1])", "{x}"],
            &[
                "python3",
                "-I",
                "-c",
                "import sys; print(sys.argv[1])",
                "{x}",
                "{x}",
            ],
            &["perl", "-e", "print $ARGV[0]", "{x}"],
            &["perl", "-Mstrict", "-we", "print $ARGV[0]", "--", "{x}"],
            &["ruby", "-e", "puts ARGV[0]", "{x}"],
            &["node", "-e", "console.log(process.argv[1])", "{x}"],
            &["awk", "{ print }", "{x}"],
            &["awk", "-F", ":", "{ print $1 }", "{x}"],
            &["sed", "-n", "1p", "{x}"],
            &["sed", "-e", "1p", "{x}"],
            &["su", "-c", "echo \"$1\"", "app", "{x}"],
            &["stat", "--format=%s", "--", "{x}"],
            &["systemctl", "restart", "--", "{x}"],
            &["supervisorctl", "-c", "{x}", "restart", "{x}"],
            &["docker", "restart", "--time", "{x}", "{x}"],
        ];
        for c in cases {
            assert!(!refused(c), "refused: {c:?} {:?}", inline_scripts(&argv(c)));
        }
    }
}

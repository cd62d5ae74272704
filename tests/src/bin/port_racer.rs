//! One side of a reservation race (`port_racer THREADS PORTS_PER_THREAD`),
//! driven line by line on stdin by the test that started it, so that two
//! sides (in two containers, or as two users) allocate at the same moment
//! and hold what they got until both are done:
//!
//! - at start it prints `ready uid=<euid> mnt=<mount ns inode> tmp=<st_dev of /tmp>`;
//! - `go`: THREADS threads reserve PORTS_PER_THREAD ports each, without
//!   binding them (only the reservation keeps the other side away), then it
//!   prints `ports <p1> <p2> ...` (or `error <message>`);
//! - `bind`: binds every port on 127.0.0.1 and keeps the listeners, then
//!   prints `bound <ok> failed <n>[ <first error>]`;
//! - end of stdin: exits (releasing everything).
//!
//! `port_racer --probe` prints `ok` and exits: a check that a user may run it.

use std::io::{BufRead, Write};
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--probe") {
        println!("ok");
        return;
    }
    let (threads, per_thread) = match args.as_slice() {
        [t, n] => match (t.parse::<usize>(), n.parse::<usize>()) {
            (Ok(t), Ok(n)) if t > 0 => (t, n),
            _ => usage(),
        },
        _ => usage(),
    };
    raise_fd_limit();
    let mut out = std::io::stdout().lock();
    say(&mut out, &format!("ready {}", identity()));
    let mut held: Vec<dynamo_test::Port> = Vec::new();
    let mut listeners: Vec<TcpListener> = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match line.trim() {
            "go" => match reserve(threads, per_thread) {
                Ok(ports) => {
                    let numbers: Vec<String> = ports.iter().map(|p| p.to_string()).collect();
                    say(&mut out, &format!("ports {}", numbers.join(" ")));
                    held.extend(ports);
                }
                Err(e) => say(&mut out, &format!("error {}", e.replace('\n', " | "))),
            },
            "bind" => {
                let mut failed = Vec::new();
                for p in &held {
                    match TcpListener::bind(("127.0.0.1", p.get())) {
                        Ok(l) => listeners.push(l),
                        Err(e) => failed.push(format!("127.0.0.1:{p}: {e}")),
                    }
                }
                let first = failed.first().map_or(String::new(), |f| format!(" {f}"));
                say(
                    &mut out,
                    &format!("bound {} failed {}{first}", listeners.len(), failed.len()),
                );
            }
            other => say(&mut out, &format!("error unknown command {other:?}")),
        }
    }
    drop(listeners);
    drop(held);
}

/// `threads` threads reserving `per_thread` ports each, all at once.
fn reserve(threads: usize, per_thread: usize) -> Result<Vec<dynamo_test::Port>, String> {
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            std::thread::Builder::new()
                .name(format!("port_racer pid {} thread {i}", std::process::id()))
                .spawn(move || {
                    (0..per_thread)
                        .map(|_| dynamo_test::find_free_port().map_err(|e| e.to_string()))
                        .collect::<Result<Vec<_>, _>>()
                })
                .map_err(|e| format!("spawn thread: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.join().map_err(|_| "a thread panicked".to_string())??);
    }
    Ok(all)
}

/// Who and where we are: the effective uid, the mount namespace, the
/// device of `/tmp` (a private tmpfs has its own).
fn identity() -> String {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let mnt = std::fs::metadata("/proc/self/ns/mnt").map_or(0, |m| m.ino());
    let tmp = std::fs::metadata("/tmp").map_or(0, |m| m.dev());
    format!("uid={uid} mnt={mnt} tmp={tmp}")
}

/// Each held port takes two descriptors and a listener a third: raise the
/// soft limit to the hard one (a CI default soft limit is 1024).
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct we pass, which
    // lives for the call; no safe wrapper is a dependency of the suite.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn say(out: &mut impl Write, line: &str) {
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(1);
    }
}

fn usage() -> ! {
    eprintln!("usage: port_racer THREADS PORTS_PER_THREAD | port_racer --probe");
    std::process::exit(2);
}

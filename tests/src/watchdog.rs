//! A deadline for a whole test binary, and panics shown as they happen.
//!
//! Every wait in these tests is bounded, but a test can still hang where no timeout reaches: a thread blocked
//! in a store call inside a current-thread runtime, or a runtime that waits at its drop for a blocking task.
//! CI then sits at its own limit with nothing printed that says where. So the first helper a test binary
//! uses arms a watchdog: past [`DEADLINE_ENV`] seconds ([`DEFAULT_DEADLINE`] by default, many times what the
//! whole `e2e` binary takes), it prints what the machine is doing (the processes, memory, disk, and every
//! thread's stack through gdb when it is installed), kills the processes the tests started and aborts, so
//! the run fails at once and says why.
//!
//! libtest shows a failed test's panic only when the whole binary ends, which an abort prevents; the hook
//! installed here also writes each panic to stderr straight away, past the test's output capture.

use std::{
    io::Write,
    os::fd::AsFd,
    process::{Command, Stdio},
    sync::Once,
    time::{Duration, Instant},
};

/// The environment variable that sets the deadline, in seconds.
pub const DEADLINE_ENV: &str = "TWIN_E2E_DEADLINE_SECS";
/// The deadline when [`DEADLINE_ENV`] is not set.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(20 * 60);

/// Arms the watchdog and the panic hook, once per process.
pub fn arm() {
    static ARMED: Once = Once::new();
    ARMED.call_once(|| {
        show_panics_at_once();
        let deadline = deadline();
        let started = Instant::now();
        let spawned = std::thread::Builder::new().name("e2e-watchdog".into()).spawn(move || {
            std::thread::sleep(deadline);
            expire(started.elapsed());
        });
        if let Err(e) = spawned {
            let _ = writeln!(std::io::stderr(), "e2e watchdog: cannot start ({e}); a hung test will not be caught");
        }
    });
}

fn deadline() -> Duration {
    match std::env::var(DEADLINE_ENV) {
        Ok(v) => match v.parse::<u64>() {
            Ok(secs) if secs > 0 => Duration::from_secs(secs),
            _ => {
                let _ = writeln!(std::io::stderr(), "e2e watchdog: {DEADLINE_ENV}={v:?} is not a number of seconds");
                DEFAULT_DEADLINE
            }
        },
        Err(_) => DEFAULT_DEADLINE,
    }
}

fn show_panics_at_once() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("an unnamed thread");
        // `std::io::stderr()` itself, not `eprintln!`: libtest captures only the macros.
        let _ = writeln!(std::io::stderr(), "panic in {name}: {info}");
        previous(info);
    }));
}

fn expire(ran: Duration) -> ! {
    let me = std::process::id();
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "\ne2e watchdog: this test binary ran for {ran:?}, past its deadline: a test is hung.");
    let _ = writeln!(err, "e2e watchdog: the tests still running are named above (\"has been running for over\").");
    drop(err);
    // Every process but the kernel's threads (kthreadd, 2, and its children).
    let columns = "pid,ppid,stat,pcpu,rss,etime,nlwp,args";
    show("processes", Command::new("ps").args(["--ppid", "2", "-p", "2", "--deselect", "-o", columns, "-ww"]));
    show("memory", Command::new("free").arg("-m"));
    show("disk", Command::new("df").args(["-h", "/tmp", "."]));
    show("load", Command::new("cat").arg("/proc/loadavg"));
    // Lets gdb, a child, attach to its parent where Yama's ptrace_scope would refuse; harmless elsewhere.
    #[allow(unsafe_code)]
    // SAFETY: prctl(PR_SET_PTRACER) takes plain integers.
    unsafe {
        libc::prctl(libc::PR_SET_PTRACER, libc::PR_SET_PTRACER_ANY, 0, 0, 0);
    }
    show(&format!("every thread of the test binary ({me})"), &mut stacks(me, 16));
    let started = crate::descendants(me);
    for &pid in &started {
        show(&format!("every thread of process {pid}, which a test started"), &mut stacks(pid, 8));
    }
    for pid in started {
        // SIGKILL: the tests' own processes must not outlive the abort and load the rest of the run.
        #[allow(unsafe_code)]
        // SAFETY: kill(2) takes no pointers; these pids are this process's descendants, read from /proc.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
        }
    }
    let _ = writeln!(std::io::stderr(), "e2e watchdog: aborting");
    std::process::abort();
}

/// gdb printing the innermost `depth` frames of every thread of `pid`, given a minute at most.
fn stacks(pid: u32, depth: u32) -> Command {
    let mut gdb = Command::new("timeout");
    gdb.args(["60", "gdb", "-p", &pid.to_string(), "-batch", "-nx", "-ex", &format!("thread apply all bt {depth}")]);
    gdb
}

/// Runs `command` with its output going straight to this process's stderr, under a heading; a command that
/// is missing says so. Not through a pipe: gdb stops every thread of this process, the pipe's reader too,
/// and would then block for good once the pipe filled.
fn show(what: &str, command: &mut Command) {
    let _ = writeln!(std::io::stderr(), "---- e2e watchdog: {what} ----");
    let stdout = match std::io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) => Stdio::from(fd),
        Err(_) => Stdio::null(),
    };
    if let Err(e) = command.stdin(Stdio::null()).stdout(stdout).stderr(Stdio::inherit()).status() {
        let _ = writeln!(std::io::stderr(), "(cannot run {:?}: {e})", command.get_program());
    }
}

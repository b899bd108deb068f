//! The watchdog that ends a hung test binary: a report, its processes killed, an abort.

use std::{
    io::Read,
    os::unix::process::ExitStatusExt,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use twin_e2e::{watchdog::DEADLINE_ENV, *};

#[test]
fn a_hung_test_binary_is_reported_killed_with_its_processes_and_aborted() {
    let mut hung = Command::new(binary("twin-e2e-hang").unwrap())
        .env(DEADLINE_ENV, "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read as it comes, so that a long report never fills the pipe and holds the hung binary up.
    let mut stderr = hung.stderr.take().unwrap();
    let report = std::thread::spawn(move || {
        let mut report = String::new();
        stderr.read_to_string(&mut report).map(|_| report)
    });
    let mut stdout = hung.stdout.take().unwrap();
    let mut first = [0u8; 64];
    let n = stdout.read(&mut first).unwrap();
    let line = String::from_utf8_lossy(&first[..n]).into_owned();
    let sleeper: u32 = line.trim().strip_prefix("child ").and_then(|p| p.parse().ok()).expect("the child's pid");
    assert!(is_running(sleeper));

    // gdb may take a while to attach and walk every thread.
    let limit = Instant::now() + WAIT * 2;
    let status = loop {
        if let Some(status) = hung.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > limit {
            let _ = hung.kill();
            panic!("the watchdog did not end the hung binary within {:?}", WAIT * 2);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.signal(), Some(libc::SIGABRT), "aborted: {status}");
    assert!(!is_running(sleeper), "the process the hung binary started was killed with it");
    let report = report.join().unwrap().unwrap();
    assert!(report.contains("past its deadline: a test is hung"), "{report}");
    assert!(report.contains("panic in a_failing_test: ") && report.contains("this test fails"), "{report}");
    let sleeper_stacks = format!("every thread of process {sleeper}, which a test started");
    for heading in ["processes", "memory", "disk", "every thread of the test binary", &sleeper_stacks] {
        assert!(report.contains(&format!("---- e2e watchdog: {heading}")), "{heading} in {report}");
    }
    assert!(report.contains("twin-e2e-hang"), "the process list shows the hung binary: {report}");
}

//! Hangs on purpose, for the test of the watchdog ([`twin_e2e::watchdog`]): arms it, fails one "test" (a
//! panicking thread), starts a child process as a test would, prints the child's pid and blocks forever.

#![allow(clippy::expect_used)]

fn main() {
    twin_e2e::watchdog::arm();
    let failed = std::thread::Builder::new().name("a_failing_test".into()).spawn(|| panic!("this test fails"));
    assert!(failed.is_ok_and(|t| t.join().is_err()), "the failing thread panics");
    let mut child = std::process::Command::new("sleep").arg("600").spawn().expect("sleep starts");
    println!("child {}", child.id());
    // Returns only once the watchdog has killed it, just before it aborts this process.
    let _ = child.wait();
    loop {
        std::thread::park();
    }
}

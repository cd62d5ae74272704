//! A test that `scripts/test.sh` also runs under a cargo nextest profile
//! that terminates it (`.config/nextest.toml`, profile `victim`): nextest's
//! real SIGTERM-then-SIGKILL of a hung test, after which the script checks
//! that the family this test started is gone.
//!
//! In a normal run it checks what makes that cleanup possible: the child
//! and its grandchild are running, and the child is tagged with its owner.

use dynamo_test::{dynamo_test, TestContext};
use dynamo_test_suite::wait_for_line;

/// Set by `scripts/test.sh`: where to write the family's pids before hanging.
const ENV_VICTIM_PIDS: &str = "DYNAMO_TEST_VICTIM_PIDS";

#[dynamo_test]
async fn a_hung_test_with_a_family(ctx: &TestContext) {
    let family = ctx
        .process("family", "sh")
        .args(["-c", "sleep 1000 & echo \"grandchild $!\"; wait"])
        .start()
        .await
        .unwrap();
    let grandchild: u32 = wait_for_line(&family, "grandchild ")
        .await
        .trim()
        .parse()
        .unwrap();
    let owner = dynamo_test::admin::procfs::environ_var(family.pid(), "DYNAMO_TEST_OWNER");
    let mine = format!("{}:", std::process::id());
    assert!(
        owner.is_some_and(|tag| tag.starts_with(&mine)),
        "the child carries its owner tag"
    );
    assert!(dynamo_test_suite::orphans::alive(grandchild));

    if let Some(file) = std::env::var_os(ENV_VICTIM_PIDS) {
        std::fs::write(file, format!("{} {grandchild}\n", family.pid())).unwrap();
        std::future::pending::<()>().await; // until nextest ends this process
    }
}

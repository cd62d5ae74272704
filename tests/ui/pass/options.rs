//! Every valid combination of options.

use dynamo_test::dynamo_test;

#[dynamo_test(flavor = "multi_thread", worker_threads = 2, timeout = "500ms")]
async fn multi_thread_all_options() {}

#[dynamo_test(flavor = "multi_thread")]
async fn multi_thread_default_workers() {}

#[dynamo_test(flavor = "current_thread", start_paused = true, timeout = "30s")]
async fn current_thread_paused() {
    tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
}

#[dynamo_test(start_paused = true)]
async fn paused() {}

#[dynamo_test(flavor = "multi_thread", start_paused = false)]
async fn multi_thread_not_paused() {}

#[dynamo_test(timeout = "10s")]
fn plain_fn_takes_a_timeout() {}

#[dynamo_test(crate = "dynamo_test", timeout = "1s")]
async fn explicit_crate_path() {}

fn main() {}

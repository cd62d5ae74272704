//! `()` and `Result<(), E: Debug>`, through any path or alias.

use dynamo_test::dynamo_test;

#[dynamo_test]
async fn unit() -> () {}

#[dynamo_test]
async fn string_error() -> Result<(), String> {
    Ok(())
}

#[dynamo_test]
async fn io_result() -> std::io::Result<()> {
    Ok(())
}

#[dynamo_test]
fn plain_string_error(port: u16) -> Result<(), String> {
    let _ = port;
    Ok(())
}

#[dynamo_test(timeout = "1s")]
fn plain_io_result() -> std::io::Result<()> {
    Ok(())
}

#[dynamo_test]
async fn harness_error() -> Result<(), dynamo_test::Error> {
    Ok(())
}

fn main() {}

//! A user type implementing `Inject` with async setup, by value, `&` and `&mut`.

use dynamo_test::{dynamo_test, Error, Inject, TestContext};

struct Counter {
    port: u16,
    hits: u32,
}

impl Inject for Counter {
    async fn inject(ctx: &TestContext, param: &str) -> Result<Self, Error> {
        let port = ctx.reserve_port(param)?;
        tokio::task::yield_now().await;
        ctx.defer("forget counter", async move {
            tokio::task::yield_now().await;
        });
        Ok(Counter { port, hits: 0 })
    }
}

#[dynamo_test]
async fn by_value(counter: Counter) {
    let _ = (counter.port, counter.hits);
}

#[dynamo_test]
async fn by_ref(counter: &Counter, ctx: &TestContext) {
    let _ = (counter.port, ctx);
}

#[dynamo_test]
async fn by_mut_ref(counter: &mut Counter) {
    counter.hits += 1;
}

#[dynamo_test(timeout = "10s")]
fn plain_by_mut_ref(counter: &mut Counter, other: Counter) {
    counter.hits += other.hits;
}

#[dynamo_test]
fn plain_by_mut_ref_no_timeout(counter: &mut Counter) -> Result<(), String> {
    counter.hits += 1;
    Ok(())
}

fn main() {}

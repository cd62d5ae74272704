use dynamo_test::dynamo_test;

// The options and the signature are checked independently: one compile
// shows a mistake in each.
#[dynamo_test(retries = 3)]
async fn t<T>(_port: impl Into<u16>) {}

fn main() {}

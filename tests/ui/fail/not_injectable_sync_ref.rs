use dynamo_test::dynamo_test;

#[dynamo_test]
fn t(port: u16, name: &String) {
    let _ = (port, name);
}

fn main() {}

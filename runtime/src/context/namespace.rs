//! A namespace per test run: Dynamo's `DYN_NAMESPACE`, etcd key prefixes
//! and NATS subjects on shared infrastructure.

/// `my_test` (the readable part of a test's name: its function's, or its
/// function's and case's) -> `my-test-<pid base36><8 random>-<n>`: unique
/// per test run, also across machines sharing one etcd (same pid, other
/// host), and valid in etcd keys, NATS subjects and Dynamo namespaces.
pub(super) fn namespace_for(short: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let mut clean: String = short
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    if clean.is_empty() {
        clean.push_str("test");
    }
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let salt: String = (0..8)
        .map(|_| fastrand::alphanumeric().to_ascii_lowercase())
        .collect();
    format!("{clean}-{}{salt}-{n}", base36(std::process::id()))
}

fn base36(mut n: u32) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(digits[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_unique_and_safe() {
        let a = namespace_for("My_Test");
        let b = namespace_for("My_Test");
        assert_ne!(a, b);
        assert!(a.starts_with("my-test-"), "{a}");
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{a}"
        );
        assert_eq!(base36(36 * 36 + 1), "101");
        let long = namespace_for(&"x".repeat(60));
        assert!(long.starts_with(&format!("{}-", "x".repeat(40))), "{long}");
    }
}

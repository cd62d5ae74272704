//! Running futures concurrently on the current task, without pulling in
//! the `futures` crate for one function.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// Polls every future until all are done; returns their outputs in order.
pub async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut busy = false;
        for (future, slot) in pending.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => busy = true,
                }
            }
        }
        if busy {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    done.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn runs_concurrently_and_keeps_order() {
        let started = Instant::now();
        let sleeps = [30u64, 10, 20].map(|ms| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            ms
        });
        assert_eq!(join_all(sleeps).await, [30, 10, 20]);
        assert!(
            started.elapsed() < Duration::from_millis(55),
            "{:?}",
            started.elapsed()
        );
    }
}

use super::SampleBacklog;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn senders_wait_while_the_hub_is_behind_and_go_when_it_drains() {
    let b = Arc::new(SampleBacklog::default());
    // A batch larger than the bound still goes when nothing waits.
    let big = b.admit(SampleBacklog::MAX_SAMPLES + 10).await;
    big.sent();
    assert_eq!(b.queued(), SampleBacklog::MAX_SAMPLES + 10);
    // The next one waits until the hub counts samples out.
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move { b.admit(5).await.sent() })
    };
    tokio::task::yield_now().await;
    assert!(
        tokio::time::timeout(Duration::from_millis(50), async {
            while !waiter.is_finished() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .is_err(),
        "admitted while the backlog was full"
    );
    b.done(SampleBacklog::MAX_SAMPLES + 10);
    tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("admitted once drained")
        .unwrap();
    assert_eq!(b.queued(), 5);
    // A ticket dropped before its batch was sent counts it out again.
    let t = b.admit(7).await;
    assert_eq!(b.queued(), 12);
    drop(t);
    assert_eq!(b.queued(), 5);
}

fn keyed(host: &str, value: f64) -> crate::model::KeyedSample {
    crate::model::KeyedSample {
        key: crate::model::SeriesKey::new("m", [("host", host)]),
        value,
    }
}

#[tokio::test]
async fn delivered_samples_wait_in_order_and_wake_the_hub_once() {
    let b = Arc::new(SampleBacklog::default());
    b.admit(2)
        .await
        .deliver(vec![keyed("a", 1.0), keyed("b", 2.0)]);
    b.admit(1).await.deliver(vec![keyed("a", 3.0)]);
    // Counted until the hub evaluated them.
    assert_eq!(b.queued(), 3);
    tokio::time::timeout(Duration::from_secs(5), b.arrived.notified())
        .await
        .expect("the first delivery wakes the hub");
    // The second delivery found the inbox busy: no second wakeup.
    assert!(
        tokio::time::timeout(Duration::from_millis(20), b.arrived.notified())
            .await
            .is_err()
    );
    let got = b.take_delivered();
    let seen: Vec<(Option<&str>, f64)> =
        got.iter().map(|s| (s.key.label("host"), s.value)).collect();
    assert_eq!(seen, [(Some("a"), 1.0), (Some("b"), 2.0), (Some("a"), 3.0)]);
    assert!(b.take_delivered().is_empty());
    b.done(3);
    assert_eq!(b.queued(), 0);
    // Empty again: the next delivery wakes the hub again.
    b.admit(1).await.deliver(vec![keyed("c", 4.0)]);
    tokio::time::timeout(Duration::from_secs(5), b.arrived.notified())
        .await
        .expect("woken again");
}

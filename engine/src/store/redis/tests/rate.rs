//! The cluster-wide rate limit: store instances on one prefix (engines) take from one
//! bucket, which behaves exactly like the in-process [`Bucket`].

use super::{PrefixGuard, connect, fresh_prefix};
use crate::limits::rate::{Bucket, Grant, RateLimit};
use crate::store::Store;
use crate::store::redis::RedisOptions;

const TEN_PER_SECOND: RateLimit = RateLimit { count: 10, window_ms: 1000, burst: 3 };

#[tokio::test]
async fn engines_on_one_prefix_take_from_one_bucket() {
    let prefix = fresh_prefix();
    let _guard = PrefixGuard(prefix.clone());
    let a = connect(&prefix, RedisOptions::default()).await.rate_gate();
    let b = connect(&prefix, RedisOptions::default()).await.rate_gate();
    let l = &TEN_PER_SECOND;
    assert_eq!(a.take("q", l, 2, 1_000).await.unwrap(), Grant { granted: 2, next_at: None });
    assert_eq!(b.take("q", l, 5, 1_000).await.unwrap(), Grant { granted: 1, next_at: Some(1_100) });
    assert_eq!(a.take("q", l, 5, 1_050).await.unwrap().granted, 0, "the other engine emptied it");
    assert_eq!(b.take("other", l, 5, 1_050).await.unwrap().granted, 3, "each queue has its own bucket");
    assert_eq!(a.take("q", l, 5, 1_100).await.unwrap(), Grant { granted: 1, next_at: Some(1_200) });
    b.refund("q", l, 1, 1_100).await.unwrap();
    assert_eq!(a.take("q", l, 5, 1_100).await.unwrap().granted, 1, "a refund is there for every engine");
    assert_eq!(b.take("q", l, 5, 60_000).await.unwrap().granted, 3, "a long pause refills to the burst only");
}

#[tokio::test]
async fn the_shared_bucket_answers_exactly_as_the_local_one() {
    let prefix = fresh_prefix();
    let _guard = PrefixGuard(prefix.clone());
    let gates = [
        connect(&prefix, RedisOptions::default()).await.rate_gate(),
        connect(&prefix, RedisOptions::default()).await.rate_gate(),
    ];
    // Odd rates, so the fractions of a token matter (7 per 3 s: one every 428.57 ms).
    let limit = RateLimit { count: 7, window_ms: 3_000, burst: 4 };
    let mut local = Bucket::full(&limit, 0);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = |m: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % m
    };
    let mut now = 0;
    let mut granted = 0;
    for step in 0..300 {
        now += next(400);
        let gate = &gates[step % 2];
        if next(4) == 0 {
            let n = next(3) as u32;
            gate.refund("q", &limit, n, now).await.unwrap();
            local.refund(&limit, n, now);
        } else {
            let want = 1 + next(4) as u32;
            let shared = gate.take("q", &limit, want, now).await.unwrap();
            assert_eq!(shared, local.take(&limit, want, now), "step {step} at {now}");
            granted += shared.granted;
        }
    }
    assert!(granted > 100, "the limit was exercised: {granted} granted");
}

use itertools::Itertools;
use proptest::prelude::*;

use super::*;
use crate::ErrorClass;

fn update_strategy() -> impl Strategy<Value = (DeliveryStatus, Option<ProviderError>)> {
    let status = prop_oneof![
        Just(DeliveryStatus::Accepted),
        Just(DeliveryStatus::Queued),
        Just(DeliveryStatus::Sent),
        Just(DeliveryStatus::Delivered),
        Just(DeliveryStatus::Read),
        Just(DeliveryStatus::Undelivered),
        Just(DeliveryStatus::Failed),
        Just(DeliveryStatus::Unknown("deleted".into())),
    ];
    let error = prop_oneof![
        Just(None),
        Just(Some(
            ProviderError::new(ErrorClass::Permanent, "carrier rejected").with_code("30007")
        )),
        Just(Some(
            ProviderError::new(ErrorClass::InvalidRecipient, "unreachable").with_code("30003")
        )),
        Just(Some(
            ProviderError::new(ErrorClass::WindowClosed, "window").with_code("131047")
        )),
    ];
    (status, error)
}

fn fold(updates: &[&(DeliveryStatus, Option<ProviderError>)]) -> DeliveryState {
    let mut state = DeliveryState::default();
    for (status, error) in updates {
        state.apply(status, error.as_ref());
    }
    state
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Every permutation of a set of updates (with duplicates) ends in the same state.
    #[test]
    fn every_permutation_converges(updates in proptest::collection::vec(update_strategy(), 1..=6)) {
        let reference = fold(&updates.iter().collect::<Vec<_>>());
        for permutation in updates.iter().permutations(updates.len()) {
            prop_assert_eq!(&fold(&permutation), &reference);
        }
    }

    /// Applying an update twice is the same as applying it once, and merging states is the same
    /// as applying all their updates.
    #[test]
    fn merge_is_idempotent_and_matches_apply(
        left in proptest::collection::vec(update_strategy(), 0..5),
        right in proptest::collection::vec(update_strategy(), 0..5),
    ) {
        let a = fold(&left.iter().collect::<Vec<_>>());
        let b = fold(&right.iter().collect::<Vec<_>>());
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        prop_assert_eq!(&ab, &ba);
        let all = fold(&left.iter().chain(right.iter()).collect::<Vec<_>>());
        prop_assert_eq!(&ab, &all);
        let mut twice = ab.clone();
        twice.merge(&ab);
        prop_assert_eq!(twice, ab);
    }
}

#[test]
fn progress_never_goes_backwards() {
    let mut state = DeliveryState::new(DeliveryStatus::Delivered);
    state.apply(&DeliveryStatus::Sent, None);
    state.apply(&DeliveryStatus::Queued, None);
    assert_eq!(state.status, DeliveryStatus::Delivered);
}

#[test]
fn failure_is_terminal_for_progress_short_of_delivery() {
    let error = ProviderError::new(ErrorClass::Permanent, "blocked").with_code("30007");
    let mut state = DeliveryState::default();
    state.apply(&DeliveryStatus::Failed, Some(&error));
    state.apply(&DeliveryStatus::Sent, None);
    assert_eq!(state.status, DeliveryStatus::Failed);
    assert_eq!(state.failure.unwrap().error, Some(error));
}

#[test]
fn failure_after_delivery_is_kept_for_audit() {
    let error = ProviderError::new(ErrorClass::Permanent, "late failure").with_code("131000");
    let mut state = DeliveryState::new(DeliveryStatus::Delivered);
    state.apply(&DeliveryStatus::Failed, Some(&error));
    assert_eq!(state.status, DeliveryStatus::Delivered);
    let failure = state.failure.expect("failure kept");
    assert_eq!(failure.status, DeliveryStatus::Failed);
    assert_eq!(failure.error, Some(error));
}

#[test]
fn unknown_statuses_round_trip_and_change_nothing() {
    let status: DeliveryStatus = serde_json::from_str("\"warning\"").unwrap();
    assert_eq!(status, DeliveryStatus::Unknown("warning".into()));
    assert_eq!(serde_json::to_string(&status).unwrap(), "\"warning\"");
    let mut state = DeliveryState::new(DeliveryStatus::Sent);
    state.apply(&status, None);
    assert_eq!(state, DeliveryState::new(DeliveryStatus::Sent));
}

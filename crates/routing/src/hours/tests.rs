use super::*;

fn rome() -> HoursConfig {
    HoursConfig {
        time_zone: "Europe/Rome".into(),
        mon: vec!["09:00-13:00".into(), "14:00-18:00".into()],
        sat: vec!["10:00-24:00".into()],
        holidays: vec!["2025-12-29".into()],
        ..HoursConfig::default()
    }
}

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

#[test]
fn open_inside_local_intervals_only() {
    let hours = rome().compile("hours").unwrap();
    // 2025-12-22 is a Monday; Rome is UTC+1 in winter.
    assert!(hours.is_open(at("2025-12-22T08:00:00Z")));
    assert!(!hours.is_open(at("2025-12-22T07:59:00Z")));
    assert!(!hours.is_open(at("2025-12-22T12:30:00Z")), "lunch break");
    assert!(hours.is_open(at("2025-12-22T16:59:00Z")));
    assert!(!hours.is_open(at("2025-12-22T17:00:00Z")));
    assert!(!hours.is_open(at("2025-12-23T10:00:00Z")), "tuesday closed");
    assert!(
        hours.is_open(at("2025-12-27T22:59:00Z")),
        "saturday until midnight"
    );
}

#[test]
fn holidays_close_the_whole_local_day() {
    let hours = rome().compile("hours").unwrap();
    // Monday 2025-12-29 is a holiday.
    assert!(!hours.is_open(at("2025-12-29T10:00:00Z")));
}

#[test]
fn daylight_saving_time_moves_the_utc_window() {
    let hours = rome().compile("hours").unwrap();
    // 2025-06-30 is a Monday; Rome is UTC+2 in summer: 09:00 local is 07:00Z.
    assert!(hours.is_open(at("2025-06-30T07:00:00Z")));
    assert!(!hours.is_open(at("2025-06-30T16:30:00Z")));
}

#[test]
fn reports_every_bad_field() {
    let config = HoursConfig {
        time_zone: "Mars/Olympus".into(),
        tue: vec!["18:00-09:00".into(), "9-10".into()],
        wed: vec!["09:00-12:00".into(), "11:00-13:00".into()],
        holidays: vec![
            "2025-02-30".into(),
            "2025-01-01".into(),
            "2025-01-01".into(),
        ],
        ..HoursConfig::default()
    };
    let errors = config.compile("accounts[0].hours").unwrap_err();
    let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "accounts[0].hours.time_zone",
            "accounts[0].hours.tue[0]",
            "accounts[0].hours.tue[1]",
            "accounts[0].hours.wed",
            "accounts[0].hours.holidays[0]",
            "accounts[0].hours.holidays[2]",
        ]
    );
}

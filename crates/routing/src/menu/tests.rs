use super::*;

#[test]
fn protected_words_are_commands_only_as_the_whole_message() {
    assert_eq!(text_command(" stop "), Some(TextCommand::OptOut));
    assert_eq!(text_command("Unsubscribe"), Some(TextCommand::OptOut));
    assert_eq!(text_command("QUIT"), Some(TextCommand::OptOut));
    assert_eq!(text_command("unstop"), Some(TextCommand::OptIn));
    assert_eq!(text_command("yes"), Some(TextCommand::OptIn));
    assert_eq!(text_command("info"), Some(TextCommand::Help));
    assert_eq!(text_command("please stop calling"), None);
}

#[test]
fn choices_by_number_or_title() {
    let titles = ["Sales", "Support"];
    assert_eq!(choose("1", &titles), Some(0));
    assert_eq!(choose("2.", &titles), Some(1));
    assert_eq!(choose(" support ", &titles), Some(1));
    assert_eq!(choose("3", &titles), None);
    assert_eq!(choose("0", &titles), None);
    assert_eq!(choose("billing", &titles), None);
}

#[test]
fn keywords_match_whole_words() {
    assert!(mentions("I want to PAY my bill", "pay"));
    assert!(mentions("pay!", "pay"));
    assert!(!mentions("payment please", "pay"));
}

#[test]
fn menu_numbers_its_options() {
    assert_eq!(
        render("Choose:", &["Sales", "Support"]),
        "Choose:\n1. Sales\n2. Support"
    );
}

#[test]
fn exit_and_back_words_are_case_insensitive() {
    let words = vec!["EXIT".to_owned(), "bye".to_owned()];
    assert!(is_word("exit", &words));
    assert!(is_word(" Bye ", &words));
    assert!(!is_word("exit now", &words));
}

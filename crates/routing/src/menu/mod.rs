//! Reading what a customer typed: SMS command words, EXIT/BACK, menu choices and keywords.

/// What a whole message means as a command, before any routing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextCommand {
    /// STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT: stop all outbound.
    OptOut,
    /// START, YES, UNSTOP: outbound allowed again.
    OptIn,
    /// HELP, INFO: answer with the help reply.
    Help,
}

/// Classifies a message whose *whole* text (trimmed, any case) is a protected SMS word.
pub fn text_command(text: &str) -> Option<TextCommand> {
    let word = text.trim();
    let is = |words: &[&str]| words.iter().any(|w| w.eq_ignore_ascii_case(word));
    if is(&["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"]) {
        Some(TextCommand::OptOut)
    } else if is(&["START", "YES", "UNSTOP"]) {
        Some(TextCommand::OptIn)
    } else if is(&["HELP", "INFO"]) {
        Some(TextCommand::Help)
    } else {
        None
    }
}

/// Whether the whole text is one of `words` (trimmed, case-insensitive).
pub fn is_word(text: &str, words: &[String]) -> bool {
    let text = text.trim();
    words.iter().any(|w| w.trim().eq_ignore_ascii_case(text))
}

/// The option a reply picks among `titles` (the visible options, in menu order): its number
/// (`"2"`, `"2."`) or its title (case-insensitive).
pub fn choose(text: &str, titles: &[&str]) -> Option<usize> {
    let text = text.trim();
    let number = text.trim_end_matches(['.', ')']);
    if let Ok(n) = number.parse::<usize>() {
        return (1..=titles.len()).contains(&n).then(|| n - 1);
    }
    titles
        .iter()
        .position(|t| t.trim().eq_ignore_ascii_case(text))
}

/// Whether any word of `text` equals `keyword` (case-insensitive). Words are split on anything
/// that is not a letter or digit.
pub fn mentions(text: &str, keyword: &str) -> bool {
    text.split(|c: char| !c.is_alphanumeric())
        .any(|word| !word.is_empty() && word.eq_ignore_ascii_case(keyword))
}

/// The menu text: the prompt, then one numbered line per option.
pub fn render(prompt: &str, titles: &[&str]) -> String {
    let mut text = String::from(prompt);
    for (i, title) in titles.iter().enumerate() {
        text.push('\n');
        text.push_str(&format!("{}. {title}", i + 1));
    }
    text
}

/// The prompt used when the account configures none.
pub const DEFAULT_PROMPT: &str = "Please reply with the number or the name of an option:";

#[cfg(test)]
mod tests;

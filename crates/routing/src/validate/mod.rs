//! [`RoutingConfig::validate`]: every rule of the configuration, every problem reported.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{
    AccountConfig, AssignmentMode, FallbackRoute, FocusLock, MAX_MESSAGE_CHARS, Messages,
    PROTECTED_WORDS, PreferredMode, QueueConfig, RoutingConfig, Timers,
};
use crate::error::{ValidationError, ValidationErrors};

/// The range of the minute timers.
pub const MINUTES: std::ops::RangeInclusive<u32> = 1..=10_080;
/// The range of the second timers (wait-for-assigned-agent and -queue, offers, transfers).
pub const SECONDS: std::ops::RangeInclusive<u32> = 1..=2_147_483;
/// The range of proficiency values.
pub const PROFICIENCY: std::ops::RangeInclusive<u8> = 1..=20;

struct Check {
    errors: Vec<ValidationError>,
}

impl Check {
    fn push(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(ValidationError::new(path, reason));
    }
}

impl RoutingConfig {
    /// Checks every rule and returns all problems, each naming its field path and the reason.
    ///
    /// `copy_queues_from` is applied first (on a copy), so copied trees are checked as the
    /// target account will use them.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut resolved = self.clone();
        resolved.resolve_copies();
        let mut check = Check { errors: Vec::new() };
        resolved.check(&mut check);
        if check.errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(check.errors))
        }
    }

    fn check(&self, c: &mut Check) {
        let d = &self.defaults;
        if d.concurrency == 0 {
            c.push("defaults.concurrency", "must be at least 1");
        }
        if d.service_level_seconds == 0 {
            c.push("defaults.service_level_seconds", "must be at least 1");
        }
        for (field, words) in [("exit_words", &d.exit_words), ("back_words", &d.back_words)] {
            if words.is_empty() {
                c.push(format!("defaults.{field}"), "needs at least one word");
            }
            for (i, word) in words.iter().enumerate() {
                let path = format!("defaults.{field}[{i}]");
                if word.trim().is_empty() || word.split_whitespace().count() != 1 {
                    c.push(path, "must be one word");
                } else if is_protected(word) {
                    c.push(path, format!("`{word}` is a protected SMS command word"));
                }
            }
        }
        for word in &d.exit_words {
            if d.back_words.iter().any(|b| b.eq_ignore_ascii_case(word)) {
                c.push(
                    "defaults.back_words",
                    format!("`{word}` is also an EXIT word"),
                );
            }
        }
        let mut agent_ids = BTreeSet::new();
        for (i, agent) in self.agents.iter().enumerate() {
            if agent.id.trim().is_empty() {
                c.push(format!("agents[{i}].id"), "must not be empty");
            } else if !agent_ids.insert(agent.id.as_str()) {
                c.push(
                    format!("agents[{i}].id"),
                    format!("`{}` is used twice", agent.id),
                );
            }
        }
        for (name, list) in &self.contact_lists {
            if list.is_empty() {
                c.push(format!("contact_lists.{name}"), "is empty");
            }
        }
        check_canned(c, "canned_answers", &self.canned_answers);
        let mut account_ids = BTreeSet::new();
        for (i, account) in self.accounts.iter().enumerate() {
            let path = format!("accounts[{i}]");
            if account.id.trim().is_empty() {
                c.push(format!("{path}.id"), "must not be empty");
            } else if !account_ids.insert(account.id.as_str()) {
                c.push(
                    format!("{path}.id"),
                    format!("`{}` is used twice", account.id),
                );
            }
            self.check_account(c, &path, account, &agent_ids);
        }
    }

    fn check_account(
        &self,
        c: &mut Check,
        path: &str,
        account: &AccountConfig,
        agent_ids: &BTreeSet<&str>,
    ) {
        if let Some(from) = &account.copy_queues_from {
            let field = format!("{path}.copy_queues_from");
            if from == &account.id {
                c.push(field, "an account cannot copy its own queues");
            } else if !self.accounts.iter().any(|a| &a.id == from) {
                c.push(field, format!("no account `{from}`"));
            } else if copy_cycle(self, &account.id) {
                c.push(field, "copies form a cycle");
            }
        }
        if account.queues.is_empty() {
            c.push(format!("{path}.queues"), "needs at least one queue");
        } else if !account.queues.iter().any(QueueConfig::is_enabled) {
            c.push(
                format!("{path}.queues"),
                "no queue is enabled: assign at least one agent to a leaf queue",
            );
        }
        let languages: Vec<_> = account
            .queues
            .iter()
            .map(|q| q.language.is_some())
            .collect();
        if languages.contains(&true) && languages.contains(&false) {
            c.push(
                format!("{path}.queues"),
                "multi-language: every top-level queue needs a `language` when one has it",
            );
        }
        let mut queue_ids = BTreeSet::new();
        let mut keywords = BTreeMap::new();
        for (i, queue) in account.queues.iter().enumerate() {
            self.check_queue(
                c,
                &format!("{path}.queues[{i}]"),
                queue,
                0,
                agent_ids,
                &mut queue_ids,
                &mut keywords,
            );
        }
        check_messages(c, &format!("{path}.messages"), &account.messages);
        for (lang, messages) in &account.localized_messages {
            if !account
                .queues
                .iter()
                .any(|q| q.language.as_deref() == Some(lang))
            {
                c.push(
                    format!("{path}.localized_messages.{lang}"),
                    "no top-level queue has this language",
                );
            }
            check_messages(c, &format!("{path}.localized_messages.{lang}"), messages);
        }
        check_timers(c, &format!("{path}.timers"), &account.timers);
        if let Some(hours) = &account.hours
            && let Err(errors) = hours.compile(&format!("{path}.hours"))
        {
            c.errors.extend(errors);
        }
        if account.whitelist.enabled {
            if account.whitelist.lists.is_empty() {
                c.push(
                    format!("{path}.whitelist.lists"),
                    "an enabled whitelist needs a list",
                );
            }
            if account.messages.whitelist_rejection.is_none() {
                c.push(
                    format!("{path}.messages.whitelist_rejection"),
                    "required when the whitelist is enabled",
                );
            }
        }
        for (i, list) in account.whitelist.lists.iter().enumerate() {
            if !self.contact_lists.contains_key(list) {
                c.push(
                    format!("{path}.whitelist.lists[{i}]"),
                    format!("no contact list `{list}`"),
                );
            }
        }
        let mut seen = BTreeSet::new();
        for (i, option) in account.dispositions.options.iter().enumerate() {
            if option.trim().is_empty() {
                c.push(
                    format!("{path}.dispositions.options[{i}]"),
                    "must not be empty",
                );
            } else if !seen.insert(option.to_lowercase()) {
                c.push(
                    format!("{path}.dispositions.options[{i}]"),
                    format!("`{option}` is listed twice"),
                );
            }
        }
        if account.dispositions.mandatory && account.dispositions.options.is_empty() {
            c.push(
                format!("{path}.dispositions.options"),
                "mandatory dispositions need at least one option",
            );
        }
        check_canned(
            c,
            &format!("{path}.canned_answers"),
            &account.canned_answers,
        );
        if !SECONDS.contains(&account.transfer.timeout_seconds) {
            c.push(
                format!("{path}.transfer.timeout_seconds"),
                "must be 1–2147483 seconds",
            );
        }
        if let FallbackRoute::Queue { queue } = &account.fallback
            && !find_queue(&account.queues, queue).is_some_and(|q| q.is_leaf() && q.is_enabled())
        {
            c.push(
                format!("{path}.fallback.queue"),
                format!("no enabled leaf queue `{queue}` in this account"),
            );
        }
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "a recursive walk carrying the account-wide sets"
    )]
    fn check_queue<'a>(
        &self,
        c: &mut Check,
        path: &str,
        queue: &'a QueueConfig,
        depth: usize,
        agent_ids: &BTreeSet<&str>,
        queue_ids: &mut BTreeSet<&'a str>,
        keywords: &mut BTreeMap<String, &'a str>,
    ) {
        if queue.id.trim().is_empty() {
            c.push(format!("{path}.id"), "must not be empty");
        } else if !queue_ids.insert(queue.id.as_str()) {
            c.push(
                format!("{path}.id"),
                format!("`{}` is used twice in this account", queue.id),
            );
        }
        let name = queue.name.trim();
        if name.is_empty() {
            c.push(format!("{path}.name"), "must not be empty");
        } else if is_protected(name) {
            c.push(
                format!("{path}.name"),
                format!("`{name}` is a protected SMS command word"),
            );
        } else if self.is_command_word(name) {
            c.push(
                format!("{path}.name"),
                format!("`{name}` is an EXIT or BACK command word"),
            );
        } else if name.chars().all(|ch| ch.is_ascii_digit()) {
            c.push(
                format!("{path}.name"),
                "a number would clash with menu option numbers",
            );
        }
        if name.chars().count() > 100 {
            c.push(format!("{path}.name"), "is longer than 100 characters");
        }
        for keyword in queue.keyword_list() {
            let upper = keyword.to_uppercase();
            if is_protected(keyword) || self.is_command_word(keyword) {
                c.push(
                    format!("{path}.keywords"),
                    format!("`{keyword}` is a protected or command word"),
                );
            } else if let Some(other) = keywords.insert(upper, queue.id.as_str())
                && other != queue.id
            {
                c.push(
                    format!("{path}.keywords"),
                    format!("`{keyword}` already leads to queue `{other}`"),
                );
            }
        }
        if queue.language.is_some() && depth > 0 {
            c.push(
                format!("{path}.language"),
                "only top-level queues have a language",
            );
        }
        if let Some(lang) = &queue.language
            && lang.trim().is_empty()
        {
            c.push(format!("{path}.language"), "must not be empty");
        }
        if queue.concurrency == Some(0) {
            c.push(format!("{path}.concurrency"), "must be at least 1");
        }
        if !queue.is_leaf() && !queue.agents.is_empty() {
            c.push(
                format!("{path}.agents"),
                "agents can only be assigned to leaf queues (this queue has sub-queues)",
            );
        }
        let mut members = BTreeSet::new();
        let mut percent_total = 0u32;
        for (i, member) in queue.agents.iter().enumerate() {
            let mpath = format!("{path}.agents[{i}]");
            if !agent_ids.contains(member.agent.as_str()) {
                c.push(
                    format!("{mpath}.agent"),
                    format!("no agent `{}`", member.agent),
                );
            } else if !members.insert(member.agent.as_str()) {
                c.push(
                    format!("{mpath}.agent"),
                    format!("`{}` is listed twice", member.agent),
                );
            }
            if !PROFICIENCY.contains(&member.proficiency) {
                c.push(format!("{mpath}.proficiency"), "must be 1–20");
            }
            if member.group == 0 {
                c.push(format!("{mpath}.group"), "cascade groups start at 1");
            }
            match (queue.assignment, member.percent) {
                (AssignmentMode::Percent, None) => {
                    c.push(format!("{mpath}.percent"), "required in percent allocation");
                }
                (AssignmentMode::Percent, Some(p)) if p == 0 || p > 100 => {
                    c.push(format!("{mpath}.percent"), "must be 1–100");
                }
                (AssignmentMode::Percent, Some(p)) => percent_total += u32::from(p),
                (AssignmentMode::Cascade, Some(_)) => c.push(
                    format!("{mpath}.percent"),
                    "only used with `assignment = \"percent\"`",
                ),
                (AssignmentMode::Cascade, None) => {}
            }
        }
        if queue.assignment == AssignmentMode::Percent
            && !queue.agents.is_empty()
            && percent_total != 100
        {
            c.push(
                format!("{path}.agents"),
                format!("percent allocations add up to {percent_total}, not 100"),
            );
        }
        let preferred = &queue.preferred_agent;
        if preferred.mode != PreferredMode::Off && preferred.focus_lock == FocusLock::WhenOffline {
            match preferred.fallback_minutes {
                None => c.push(
                    format!("{path}.preferred_agent.fallback_minutes"),
                    "required with focus_lock = \"when_offline\"",
                ),
                Some(m) if !MINUTES.contains(&m) => c.push(
                    format!("{path}.preferred_agent.fallback_minutes"),
                    "must be 1–10080 minutes",
                ),
                Some(_) => {}
            }
        }
        for (i, child) in queue.queues.iter().enumerate() {
            self.check_queue(
                c,
                &format!("{path}.queues[{i}]"),
                child,
                depth + 1,
                agent_ids,
                queue_ids,
                keywords,
            );
        }
    }

    /// Whether `word` is one of the configured EXIT or BACK words.
    pub fn is_command_word(&self, word: &str) -> bool {
        let d = &self.defaults;
        d.exit_words
            .iter()
            .chain(&d.back_words)
            .any(|w| w.trim().eq_ignore_ascii_case(word.trim()))
    }
}

fn is_protected(word: &str) -> bool {
    let word = word.trim();
    PROTECTED_WORDS.iter().any(|p| p.eq_ignore_ascii_case(word))
}

fn copy_cycle(config: &RoutingConfig, start: &str) -> bool {
    let mut seen = vec![start];
    let mut current = start;
    loop {
        let Some(account) = config.accounts.iter().find(|a| a.id == current) else {
            return false;
        };
        let Some(next) = account.copy_queues_from.as_deref() else {
            return false;
        };
        if seen.contains(&next) {
            return true;
        }
        seen.push(next);
        current = next;
    }
}

/// Finds a queue by id anywhere in a tree.
pub(crate) fn find_queue<'a>(queues: &'a [QueueConfig], id: &str) -> Option<&'a QueueConfig> {
    queues.iter().find_map(|q| {
        if q.id == id {
            Some(q)
        } else {
            find_queue(&q.queues, id)
        }
    })
}

fn check_messages(c: &mut Check, path: &str, m: &Messages) {
    let fields = [
        ("greeting", &m.greeting),
        ("after_hours_greeting", &m.after_hours_greeting),
        ("menu_prompt", &m.menu_prompt),
        ("invalid_choice", &m.invalid_choice),
        ("dismissal_warning", &m.dismissal_warning),
        ("dismissed_chat", &m.dismissed_chat),
        ("chat_ended", &m.chat_ended),
        ("whitelist_rejection", &m.whitelist_rejection),
        ("help_reply", &m.help_reply),
    ];
    for (name, text) in fields {
        let Some(text) = text else { continue };
        let chars = text.chars().count();
        if chars > MAX_MESSAGE_CHARS {
            c.push(
                format!("{path}.{name}"),
                format!("is {chars} characters; at most {MAX_MESSAGE_CHARS}"),
            );
        } else if text.trim().is_empty() {
            c.push(
                format!("{path}.{name}"),
                "must not be blank (leave it out instead)",
            );
        }
    }
}

fn check_canned(c: &mut Check, path: &str, answers: &[crate::config::CannedAnswer]) {
    let mut ids = BTreeSet::new();
    for (i, answer) in answers.iter().enumerate() {
        if answer.id.trim().is_empty() {
            c.push(format!("{path}[{i}].id"), "must not be empty");
        } else if !ids.insert(answer.id.as_str()) {
            c.push(
                format!("{path}[{i}].id"),
                format!("`{}` is used twice", answer.id),
            );
        }
        let chars = answer.text.chars().count();
        if chars == 0 || chars > MAX_MESSAGE_CHARS {
            c.push(
                format!("{path}[{i}].text"),
                format!("must be 1–{MAX_MESSAGE_CHARS} characters"),
            );
        }
    }
}

fn check_timers(c: &mut Check, path: &str, t: &Timers) {
    let minutes = [
        ("queue_selecting_minutes", t.queue_selecting_minutes),
        ("unanswered_minutes", t.unanswered_minutes),
        (
            "unanswered_after_hours_minutes",
            t.unanswered_after_hours_minutes,
        ),
        ("chat_timeout_minutes", t.chat_timeout_minutes),
        ("response_target_minutes", t.response_target_minutes),
        (
            "interaction_inactivity_minutes",
            t.interaction_inactivity_minutes,
        ),
    ];
    for (name, value) in minutes {
        if let Some(v) = value
            && !MINUTES.contains(&v)
        {
            c.push(
                format!("{path}.{name}"),
                format!("{v} is outside 1–10080 minutes"),
            );
        }
    }
    let seconds = [
        (
            "wait_for_assigned_agent_seconds",
            t.wait_for_assigned_agent_seconds,
        ),
        (
            "wait_for_assigned_queue_seconds",
            t.wait_for_assigned_queue_seconds,
        ),
        ("offer_timeout_seconds", t.offer_timeout_seconds),
    ];
    for (name, v) in seconds {
        if !SECONDS.contains(&v) {
            c.push(
                format!("{path}.{name}"),
                format!("{v} is outside 1–2147483 seconds"),
            );
        }
    }
    if let Some(inactivity) = &t.inactivity {
        let dismiss = inactivity.dismiss_after_minutes;
        if !MINUTES.contains(&dismiss) {
            c.push(
                format!("{path}.inactivity.dismiss_after_minutes"),
                format!("{dismiss} is outside 1–10080 minutes"),
            );
        }
        if let Some(timeout) = t.chat_timeout_minutes
            && dismiss > timeout
        {
            c.push(
                format!("{path}.inactivity.dismiss_after_minutes"),
                format!("{dismiss} exceeds the chat timeout ({timeout} minutes)"),
            );
        }
        if let Some(warning) = inactivity.warning_minutes
            && (warning == 0 || warning >= dismiss)
        {
            c.push(
                format!("{path}.inactivity.warning_minutes"),
                "must be at least 1 and less than dismiss_after_minutes",
            );
        }
    }
}

#[cfg(test)]
mod tests;

//! Inbound events from a channel account: first contact, menus, keywords, commands, consent.

use switchboard_core::{Address, Content, InboundEvent, InboundMessage};

use super::compiled::Account;
use super::flow::{COMPLIANCE, Cx, contact_key};
use super::state::{Availability, Conversation, Phase};
use super::{Action, IntegrationEvent, OfferKind};
use crate::ConvId;
use crate::error::InputError;
use crate::menu::{self, TextCommand};
use crate::timers::TimerKind;
use crate::transcript::{EndReason, Party};

impl Cx<'_> {
    pub(crate) fn inbound(&mut self, account: &str, event: InboundEvent) -> Result<(), InputError> {
        let eng = self.eng;
        let account = eng
            .account(account)
            .ok_or_else(|| InputError::UnknownAccount(account.to_owned()))?;
        match event {
            InboundEvent::Message(message) => self.customer_message(account, message),
            InboundEvent::OptOut(consent) => self.opt_out(account, &consent.from),
            InboundEvent::OptIn(consent) => self.opt_in(account, &consent.from),
            // Statuses are correlated by the gateway (it reports failures as `SendFailed`);
            // reactions do not route.
            _ => {}
        }
        Ok(())
    }

    fn customer_message(&mut self, account: &Account, message: InboundMessage) {
        let key = contact_key(&account.cfg.id, &message.from);
        let contact = self.st.contacts.entry(key).or_default();
        let sent = message.timestamp.unwrap_or(self.now).min(self.now);
        contact.last_inbound = Some(contact.last_inbound.map_or(sent, |t| t.max(sent)));
        let open = contact.open;
        let command = match &message.content {
            Content::Text { text, .. } if self.eng.config.defaults.text_commands => {
                menu::text_command(text)
            }
            _ => None,
        };
        if let Some(command) = command {
            if let Some(id) = open {
                self.transcript(id, Party::Customer, message.content.clone());
            }
            match command {
                TextCommand::OptOut => self.opt_out(account, &message.from),
                TextCommand::OptIn => self.opt_in(account, &message.from),
                TextCommand::Help => {
                    let language = open
                        .and_then(|id| self.st.conversations.get(&id))
                        .and_then(|c| c.language.clone());
                    if let Some(text) =
                        account.message(language.as_deref(), |m| m.help_reply.as_ref())
                    {
                        // Carriers require an answer to HELP even after STOP.
                        self.send_system(open, account, &message.from, text, true);
                    }
                }
            }
            return;
        }
        match open {
            Some(id) => self.in_conversation(id, account, message),
            None => self.first_contact(account, message),
        }
    }

    fn opt_out(&mut self, account: &Account, customer: &Address) {
        let contact = self
            .st
            .contacts
            .entry(contact_key(&account.cfg.id, customer))
            .or_default();
        contact.opted_out = true;
        let open = contact.open;
        self.out.push(Action::Emit(IntegrationEvent::OptedOut {
            account: account.cfg.id.clone(),
            customer: customer.clone(),
        }));
        if let Some(id) = open {
            self.end(id, EndReason::Customer, Vec::new());
        }
    }

    fn opt_in(&mut self, account: &Account, customer: &Address) {
        let contact = self
            .st
            .contacts
            .entry(contact_key(&account.cfg.id, customer))
            .or_default();
        contact.opted_out = false;
        self.out.push(Action::Emit(IntegrationEvent::OptedIn {
            account: account.cfg.id.clone(),
            customer: customer.clone(),
        }));
    }

    fn first_contact(&mut self, account: &Account, message: InboundMessage) {
        let id = ConvId(self.st.next_conversation);
        self.st.next_conversation += 1;
        let after_hours = !account.is_open(self.now);
        self.st.conversations.insert(
            id,
            Conversation {
                account: account.cfg.id.clone(),
                customer: message.from.clone(),
                phase: Phase::Selecting { menu: None },
                language: None,
                queue: None,
                queue_account: None,
                agent: None,
                last_agent: None,
                started: self.now,
                last_customer: self.now,
                idle_since: self.now,
                awaiting_reply: None,
                after_hours,
                timers: Vec::new(),
                excluded: Vec::new(),
                entries: 0,
                warned: false,
            },
        );
        if let Some(contact) = self
            .st
            .contacts
            .get_mut(&contact_key(&account.cfg.id, &message.from))
        {
            contact.open = Some(id);
        }
        self.st.metrics.conversations_started += 1;
        self.out
            .push(Action::Emit(IntegrationEvent::ConversationStarted {
                conversation: id,
                account: account.cfg.id.clone(),
                customer: message.from.clone(),
                after_hours,
            }));
        self.transcript(id, Party::Customer, message.content.clone());
        self.set_timer(
            id,
            TimerKind::Compliance,
            self.now.saturating_add(COMPLIANCE),
        );
        if let Some(whitelist) = &account.whitelist
            && !whitelist.contains(&message.from.id)
        {
            self.send_configured(id, |m| m.whitelist_rejection.as_ref());
            self.end(id, EndReason::NotWhitelisted, Vec::new());
            return;
        }
        let messages = &account.cfg.messages;
        if !(after_hours && messages.skip_greeting_after_hours) {
            self.send_configured(id, |m| m.greeting.as_ref());
        }
        if after_hours {
            self.send_configured(id, |m| m.after_hours_greeting.as_ref());
        }
        if let Some(timeout) = account.cfg.timers.queue_selecting_minutes {
            let due = self.now.saturating_add(super::flow::minutes(timeout));
            self.set_timer(id, TimerKind::QueueSelecting, due);
        }
        let text = message.content.summary_text().unwrap_or_default();
        match keyword(account, text) {
            Some(queue) => self.enter(id, account, queue),
            None => self.show_menu(id, account, None),
        }
    }

    fn in_conversation(&mut self, id: ConvId, account: &Account, message: InboundMessage) {
        self.transcript(id, Party::Customer, message.content.clone());
        self.set_timer(
            id,
            TimerKind::Compliance,
            self.now.saturating_add(COMPLIANCE),
        );
        let text = message
            .content
            .summary_text()
            .unwrap_or_default()
            .to_owned();
        if menu::is_word(&text, &self.eng.config.defaults.exit_words) {
            self.end(id, EndReason::Customer, Vec::new());
            return;
        }
        let Some(conv) = self.st.conversations.get_mut(&id) else {
            return;
        };
        conv.last_customer = self.now;
        let phase = conv.phase.clone();
        match phase {
            Phase::Selecting { menu } => self.menu_reply(id, account, menu, &message.content),
            Phase::Queued { .. } | Phase::Offered { .. } => {}
            Phase::Assigned => {
                let agent = conv.agent.clone().unwrap_or_default();
                self.customer_active(id);
                let available = self
                    .st
                    .agents
                    .get(&agent)
                    .is_some_and(|a| a.availability == Availability::Available);
                if !available {
                    self.await_agent(id, account, &agent);
                }
            }
            Phase::AwaitingAgent | Phase::Transferring { .. } => self.customer_active(id),
            Phase::Dismissed => {
                if let Some(queue) = conv.queue.clone() {
                    let queue_account = conv.queue_account.clone();
                    conv.idle_since = self.now;
                    conv.warned = false;
                    self.enqueue(id, queue_account, &queue, false);
                }
            }
        }
    }

    /// The customer wrote while an agent has the conversation: inactivity restarts and the
    /// response-time clock starts if it was not running.
    fn customer_active(&mut self, id: ConvId) {
        let Some(conv) = self.st.conversations.get_mut(&id) else {
            return;
        };
        conv.idle_since = self.now;
        conv.warned = false;
        let start_response = conv.awaiting_reply.is_none();
        if start_response {
            conv.awaiting_reply = Some(self.now);
        }
        self.cancel_timers(
            id,
            &[
                TimerKind::InteractionInactivity,
                TimerKind::DismissalWarning,
            ],
        );
        self.arm_inactivity(id);
        if start_response {
            self.arm_response_target(id);
        }
    }

    pub(crate) fn arm_response_target(&mut self, id: ConvId) {
        let Some(account) = self.account_of(id) else {
            return;
        };
        if let Some(target) = account.cfg.timers.response_target_minutes {
            let due = self.now.saturating_add(super::flow::minutes(target));
            self.set_timer(id, TimerKind::ResponseTarget, due);
        }
    }

    /// A new message while the agent is away: offer it back to them and wait.
    fn await_agent(&mut self, id: ConvId, account: &Account, agent: &str) {
        let wait = super::flow::seconds(account.cfg.timers.wait_for_assigned_agent_seconds);
        let due = self.now.saturating_add(wait);
        let Some(conv) = self.st.conversations.get_mut(&id) else {
            return;
        };
        conv.phase = Phase::AwaitingAgent;
        let queue = conv.queue.clone();
        self.set_timer(id, TimerKind::AssignedAgentWait, due);
        self.out.push(Action::Offer {
            conversation: id,
            agent: agent.to_owned(),
            queue,
            kind: OfferKind::Returning,
            expires_at: due,
        });
    }

    fn menu_reply(
        &mut self,
        id: ConvId,
        account: &Account,
        menu: Option<String>,
        content: &Content,
    ) {
        let node = menu
            .as_deref()
            .and_then(|m| account.queue(m))
            .map(|(i, _)| i);
        let text = content.summary_text().unwrap_or_default();
        if menu::is_word(text, &self.eng.config.defaults.back_words) {
            // Up one level, skipping levels with a single option (they were never shown).
            let mut up = node.and_then(|n| account.queues[n].parent);
            while let Some(n) = up
                && account.options(Some(n)).len() < 2
            {
                up = account.queues[n].parent;
            }
            self.show_menu(id, account, up);
            return;
        }
        if let Some(queue) = keyword(account, text) {
            self.enter(id, account, queue);
            return;
        }
        let options = account.options(node);
        let titles: Vec<&str> = options
            .iter()
            .map(|&o| account.queues[o].name.as_str())
            .collect();
        let by_reply_id = match content {
            Content::Reply(reply) => reply
                .id
                .as_deref()
                .and_then(|rid| options.iter().position(|&o| account.queues[o].id == rid)),
            _ => None,
        };
        match by_reply_id.or_else(|| menu::choose(text, &titles)) {
            Some(choice) => self.enter(id, account, options[choice]),
            None => {
                self.send_configured(id, |m| m.invalid_choice.as_ref());
                self.show_menu(id, account, node);
            }
        }
    }

    /// Enters queue node `index`: a leaf queues the conversation, a menu shows its options.
    fn enter(&mut self, id: ConvId, account: &Account, index: usize) {
        let queue = &account.queues[index];
        let Some(conv) = self.st.conversations.get_mut(&id) else {
            return;
        };
        // The language is the top-level queue's, whichever way the customer got below it.
        let mut top = index;
        while let Some(parent) = account.queues[top].parent {
            top = parent;
        }
        if let Some(language) = &account.queues[top].language {
            conv.language = Some(language.clone());
        }
        if queue.is_leaf() {
            self.enqueue(id, None, &queue.id, false);
        } else {
            self.show_menu(id, account, Some(index));
        }
    }

    /// Shows the options under `node` (a single option is entered at once).
    fn show_menu(&mut self, id: ConvId, account: &Account, node: Option<usize>) {
        let options = account.options(node);
        match options.len() {
            0 => self.end(id, EndReason::Failure, Vec::new()),
            1 => self.enter(id, account, options[0]),
            _ => {
                let Some(conv) = self.st.conversations.get_mut(&id) else {
                    return;
                };
                conv.phase = Phase::Selecting {
                    menu: node.map(|n| account.queues[n].id.clone()),
                };
                let language = conv.language.clone();
                let to = conv.customer.clone();
                let prompt = account
                    .message(language.as_deref(), |m| m.menu_prompt.as_ref())
                    .unwrap_or_else(|| menu::DEFAULT_PROMPT.to_owned());
                let titles: Vec<&str> = options
                    .iter()
                    .map(|&o| account.queues[o].name.as_str())
                    .collect();
                self.send_system(
                    Some(id),
                    account,
                    &to,
                    menu::render(&prompt, &titles),
                    false,
                );
            }
        }
    }
}

/// The first enabled queue (in tree order) one of whose keywords the text mentions.
fn keyword(account: &Account, text: &str) -> Option<usize> {
    account
        .keywords
        .iter()
        .find(|(keyword, queue)| account.queues[*queue].enabled && menu::mentions(text, keyword))
        .map(|(_, queue)| *queue)
}

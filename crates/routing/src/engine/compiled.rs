//! The configuration compiled for fast lookups: queue trees flattened, keywords indexed.

use std::collections::{BTreeSet, HashMap};

use switchboard_core::Capabilities;

use crate::config::{
    AccountConfig, AssignmentMode, Messages, PreferredAgent, QueueAgent, QueueConfig, RoutingConfig,
};
use crate::hours::Hours;

/// A compiled configuration.
#[derive(Clone, Debug)]
pub(crate) struct Compiled {
    pub(crate) config: RoutingConfig,
    pub(crate) accounts: Vec<Account>,
    pub(crate) account_index: HashMap<String, usize>,
    pub(crate) agent_ids: BTreeSet<String>,
}

/// A compiled account.
#[derive(Clone, Debug)]
pub(crate) struct Account {
    pub(crate) cfg: AccountConfig,
    pub(crate) caps: Capabilities,
    pub(crate) hours: Option<Hours>,
    /// Every queue of the tree, parents before children.
    pub(crate) queues: Vec<Queue>,
    pub(crate) queue_index: HashMap<String, usize>,
    /// Top-level queues.
    pub(crate) roots: Vec<usize>,
    /// Keywords (as written) and the queue they lead to, in tree order.
    pub(crate) keywords: Vec<(String, usize)>,
    /// The whitelisted address ids, when the whitelist is on.
    pub(crate) whitelist: Option<BTreeSet<String>>,
}

/// A compiled queue node.
#[derive(Clone, Debug)]
pub(crate) struct Queue {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) parent: Option<usize>,
    pub(crate) children: Vec<usize>,
    pub(crate) hidden: bool,
    pub(crate) enabled: bool,
    pub(crate) priority: i32,
    pub(crate) concurrency: usize,
    pub(crate) language: Option<String>,
    pub(crate) assignment: AssignmentMode,
    pub(crate) preferred: PreferredAgent,
    pub(crate) members: Vec<QueueAgent>,
    /// `account/queue`, the metrics and percent-counter key.
    pub(crate) key: String,
}

impl Queue {
    pub(crate) fn is_leaf(&self) -> bool {
        self.children.is_empty()
    }
}

impl Compiled {
    pub(crate) fn new(config: RoutingConfig) -> Self {
        let mut accounts = Vec::new();
        let mut account_index = HashMap::new();
        for cfg in &config.accounts {
            account_index.insert(cfg.id.clone(), accounts.len());
            accounts.push(Account::new(&config, cfg));
        }
        let agent_ids = config.agents.iter().map(|a| a.id.clone()).collect();
        Self {
            config,
            accounts,
            account_index,
            agent_ids,
        }
    }

    pub(crate) fn account(&self, id: &str) -> Option<&Account> {
        self.account_index.get(id).map(|&i| &self.accounts[i])
    }
}

impl Account {
    fn new(config: &RoutingConfig, cfg: &AccountConfig) -> Self {
        let mut account = Account {
            cfg: cfg.clone(),
            caps: cfg.effective_capabilities(),
            hours: cfg.hours.as_ref().and_then(|h| h.compile("hours").ok()),
            queues: Vec::new(),
            queue_index: HashMap::new(),
            roots: Vec::new(),
            keywords: Vec::new(),
            whitelist: None,
        };
        for queue in &cfg.queues {
            let index = account.add(config, cfg, queue, None);
            account.roots.push(index);
        }
        if cfg.whitelist.enabled {
            let ids = cfg
                .whitelist
                .lists
                .iter()
                .filter_map(|name| config.contact_lists.get(name))
                .flatten()
                .cloned()
                .collect();
            account.whitelist = Some(ids);
        }
        account
    }

    fn add(
        &mut self,
        config: &RoutingConfig,
        cfg: &AccountConfig,
        queue: &QueueConfig,
        parent: Option<usize>,
    ) -> usize {
        let index = self.queues.len();
        self.queues.push(Queue {
            id: queue.id.clone(),
            name: queue.name.trim().to_owned(),
            parent,
            children: Vec::new(),
            hidden: queue.hidden,
            enabled: queue.is_enabled(),
            priority: queue.priority,
            concurrency: usize::from(queue.concurrency.unwrap_or(config.defaults.concurrency)),
            language: queue.language.clone(),
            assignment: queue.assignment,
            preferred: queue.preferred_agent,
            members: queue.agents.clone(),
            key: format!("{}/{}", cfg.id, queue.id),
        });
        self.queue_index.insert(queue.id.clone(), index);
        for keyword in queue.keyword_list() {
            self.keywords.push((keyword.to_owned(), index));
        }
        for child in &queue.queues {
            let child_index = self.add(config, cfg, child, Some(index));
            self.queues[index].children.push(child_index);
        }
        index
    }

    pub(crate) fn queue(&self, id: &str) -> Option<(usize, &Queue)> {
        self.queue_index.get(id).map(|&i| (i, &self.queues[i]))
    }

    /// The visible, enabled options under `node` (the roots when `None`).
    pub(crate) fn options(&self, node: Option<usize>) -> Vec<usize> {
        let children = match node {
            Some(i) => &self.queues[i].children,
            None => &self.roots,
        };
        children
            .iter()
            .copied()
            .filter(|&c| self.queues[c].enabled && !self.queues[c].hidden)
            .collect()
    }

    /// A message in the conversation's language, falling back to the default messages.
    pub(crate) fn message(
        &self,
        language: Option<&str>,
        pick: impl Fn(&Messages) -> Option<&String>,
    ) -> Option<String> {
        language
            .and_then(|l| self.cfg.localized_messages.get(l))
            .and_then(&pick)
            .or_else(|| pick(&self.cfg.messages))
            .cloned()
    }

    pub(crate) fn is_open(&self, now: switchboard_core::Timestamp) -> bool {
        self.hours.as_ref().is_none_or(|h| h.is_open(now))
    }
}

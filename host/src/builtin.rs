//! The built-in plugins, compiled from `plugins/` by the build script and embedded, and the
//! vendor hosts the built-in notifiers of hosted services are pinned to.

include!(concat!(env!("OUT_DIR"), "/builtin_components.rs"));

/// The component bytes of the built-in plugin `name` (its directory under `plugins/`).
pub fn component(name: &str) -> Option<&'static [u8]> {
    BUILTIN_COMPONENTS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| *bytes)
}

/// The evaluate-only variant (see host/build.rs) of the built-in plugin whose component is
/// exactly `bytes`, when it has one.
pub fn evaluate_variant_of(bytes: &[u8]) -> Option<&'static [u8]> {
    let (name, _) = BUILTIN_COMPONENTS.iter().find(|(_, b)| *b == bytes)?;
    BUILTIN_EVALUATE_COMPONENTS
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, bytes)| *bytes)
}

/// Names of all built-in plugins.
pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTIN_COMPONENTS.iter().map(|(n, _)| *n)
}

/// Built-in notifiers of hosted services and the only hosts they may reach (their grant's
/// `allowed_hosts`; exact names or `*.suffix`). Self-hostable destinations (webhook,
/// mattermost, rocketchat, matrix, ntfy, gotify, signal, email) are not listed: they may reach
/// any host the network policy allows. Built-in grants cannot be changed through the API; an
/// admin who needs another host uploads the same component under another name or version (and
/// grants it), or uses the webhook plugin.
pub const PINNED_HOSTS: &[(&str, &[&str])] = &[
    ("slack", &["hooks.slack.com", "slack.com"]),
    (
        "discord",
        &["discord.com", "discordapp.com", "*.discord.com"],
    ),
    (
        "teams",
        &[
            "*.logic.azure.com",
            "*.webhook.office.com",
            "*.powerplatform.com",
        ],
    ),
    ("google-chat", &["chat.googleapis.com"]),
    ("telegram", &["api.telegram.org"]),
    ("pushover", &["api.pushover.net"]),
    (
        "pagerduty",
        &["events.pagerduty.com", "events.eu.pagerduty.com"],
    ),
    ("opsgenie", &["api.opsgenie.com", "api.eu.opsgenie.com"]),
    ("twilio", &["api.twilio.com"]),
];

/// The hosts the built-in notifier `name` is pinned to, or `None` when it is not pinned.
pub fn pinned_hosts(name: &str) -> Option<&'static [&'static str]> {
    PINNED_HOSTS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, hosts)| *hosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosted_services_are_pinned_and_self_hosted_ones_are_not() {
        assert_eq!(
            pinned_hosts("slack"),
            Some(&["hooks.slack.com", "slack.com"][..])
        );
        assert!(pinned_hosts("teams").is_some_and(|h| h.contains(&"*.webhook.office.com")));
        for open in [
            "webhook",
            "mattermost",
            "rocketchat",
            "matrix",
            "ntfy",
            "gotify",
            "signal",
            "email",
        ] {
            assert_eq!(pinned_hosts(open), None, "{open}");
        }
    }
}

//! The built-in plugins, compiled from `plugins/` by the build script and embedded.

include!(concat!(env!("OUT_DIR"), "/builtin_components.rs"));

/// The component bytes of the built-in plugin `name` (its directory under `plugins/`).
pub fn component(name: &str) -> Option<&'static [u8]> {
    BUILTIN_COMPONENTS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| *bytes)
}

/// Names of all built-in plugins.
pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTIN_COMPONENTS.iter().map(|(n, _)| *n)
}

//! On-disk cache of compiled plugin artifacts, keyed by content digest and engine settings.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::Engine;
use wasmtime::component::Component;

use super::{LoadError, first_line};

/// Compiled components under one directory: `<digest>-<engine hash>.cwasm`.
#[derive(Clone)]
pub struct DiskCache {
    dir: Arc<PathBuf>,
    engine_hash: String,
}

impl DiskCache {
    /// A cache in `dir` for artifacts of `engine`'s configuration.
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        Self {
            dir: Arc::new(dir),
            engine_hash: format!("{:016x}", h.finish()),
        }
    }

    /// Loads the artifact for `digest`, compiling and storing it on a miss.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        digest: &str,
        bytes: &[u8],
    ) -> Result<Component, LoadError> {
        let path = self
            .dir
            .join(format!("{digest}-{}.cwasm", self.engine_hash));
        if path.exists() {
            // SAFETY: the file was written by `precompile_component` of an engine with the same
            // compatibility hash, into a directory only Pharos writes.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "discarding unreadable compiled plugin: {e}")
                }
            }
        }
        let compiled = engine
            .precompile_component(bytes)
            .map_err(|e| LoadError::NotAComponent(first_line(&e)))?;
        if let Err(e) = std::fs::create_dir_all(&*self.dir) {
            tracing::warn!(dir = %self.dir.display(), "cannot create the plugin cache directory: {e}");
        } else {
            let tmp = path.with_extension("tmp");
            if let Err(e) =
                std::fs::write(&tmp, &compiled).and_then(|()| std::fs::rename(&tmp, &path))
            {
                tracing::warn!(path = %path.display(), "cannot write the compiled plugin cache: {e}");
            }
        }
        // SAFETY: `compiled` was produced just above by this engine.
        unsafe { Component::deserialize(engine, &compiled) }
            .map_err(|e| LoadError::Compile(first_line(&e)))
    }
}

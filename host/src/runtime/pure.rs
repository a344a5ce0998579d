//! Synchronous invocations of a plugin with no capabilities: the fast path of `evaluate`.
//!
//! `evaluate` is a pure function of its arguments (no capabilities, no clock: the elapsed time
//! is the host's), so it need not run on a fiber that can yield. The host first runs it
//! synchronously in a fresh instance linked against [`linker`]: `log` works, every other
//! import traps, and an epoch tick aborts the call once it has run for half a tick instead of
//! yielding. Any failure of that attempt (a call to another import, a long computation, a
//! trap, a limit) discards it — its store, instance and log lines — and the check runs
//! `evaluate` again on the async path,
//! which gives the outcome every failure is reported with. A well-behaved `evaluate` thus costs
//! no fiber switch, no future and no per-call type check; a misbehaving one costs at most one
//! and a half epoch ticks more than before.

use wasmtime::Store;
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker, TypedFunc};

use super::store::Invocation;
use super::{Plugin, RuntimeError};
use crate::bindings::types::CapError;
use crate::bindings::{checker, http, log};

/// Name of the `planner` export the host knows.
const PLANNER: &str = "pharos:plugin/planner@0.1.0";

/// The `evaluate` export as a synchronous call: its arguments and its result.
type Evaluate<'a> = TypedFunc<
    (
        &'a checker::CheckRequest,
        Result<&'a http::Response, &'a CapError>,
        f64,
    ),
    (checker::CheckOutcome,),
>;

/// A linker for synchronous invocations: only `log` is defined; [`PureEvaluate::prepare`]
/// makes every other import of a component trap.
pub(super) fn linker(engine: &wasmtime::Engine) -> Result<Linker<Invocation>, RuntimeError> {
    let mut linker = Linker::<Invocation>::new(engine);
    linker
        .instance("pharos:plugin/log@0.1.0")
        .and_then(|mut log| {
            log.func_wrap("log", |mut cx, (level, message): (log::Level, String)| {
                cx.data_mut().write_log(level, message)
            })
        })
        .map_err(RuntimeError::Linker)?;
    Ok(linker)
}

/// A component pre-instantiated for synchronous `evaluate` calls.
pub(super) struct PureEvaluate {
    pre: InstancePre<Invocation>,
    evaluate: ComponentExportIndex,
    /// Built from a built-in plugin's evaluate-only variant, not from the plugin itself.
    pub(super) variant: bool,
}

impl PureEvaluate {
    /// Links `component` against `linker` with its other imports trapping; `None` when the
    /// component has no `planner.evaluate` export.
    pub(super) fn prepare(linker: &Linker<Invocation>, component: &Component) -> Option<Self> {
        let planner = component.get_export_index(None, PLANNER)?;
        let evaluate = component.get_export_index(Some(&planner), "evaluate")?;
        let mut linker = linker.clone();
        linker.define_unknown_imports_as_traps(component).ok()?;
        let pre = linker.instantiate_pre(component).ok()?;
        Some(Self {
            pre,
            evaluate,
            variant: false,
        })
    }

    /// Marks this as built from a built-in plugin's evaluate-only variant.
    pub(super) fn marked_as_variant(self) -> Self {
        Self {
            variant: true,
            ..self
        }
    }

    /// Whether the `evaluate` export has the type [`PureEvaluate::call`] assumes (checked
    /// with one instance in `store`), for a component whose exports were not typechecked by
    /// loading it as a plugin.
    pub(super) fn typechecks(&self, store: &mut Store<Invocation>) -> bool {
        let Ok(instance) = self.pre.instantiate(&mut *store) else {
            return false;
        };
        instance
            .get_typed_func::<(
                &'static checker::CheckRequest,
                Result<&'static http::Response, &'static CapError>,
                f64,
            ), (checker::CheckOutcome,)>(&mut *store, self.evaluate)
            .is_ok()
    }

    /// Runs `evaluate` synchronously in a fresh instance in `store`; `None` when the attempt
    /// failed for any reason (the caller then runs it on the async path).
    pub(super) fn call(
        &self,
        store: &mut Store<Invocation>,
        plugin: &Plugin,
        request: &checker::CheckRequest,
        response: Result<&http::Response, &CapError>,
        elapsed_ms: f64,
    ) -> Option<checker::CheckOutcome> {
        let instance = self.pre.instantiate(&mut *store).ok()?;
        let func = instance.get_func(&mut *store, self.evaluate)?;
        // SAFETY: the export's type was checked against `Evaluate` when the plugin was loaded
        // (`planner::GuestIndices::load` in `Runtime::describe`, or `typechecks` for an
        // evaluate-only variant, which `Runtime::pure_evaluate` uses only when it passes), and
        // every instance of this component has the same export types.
        let evaluate: Evaluate<'_> = unsafe { TypedFunc::new_unchecked(func) };
        match evaluate.call(&mut *store, (request, response, elapsed_ms)) {
            Ok((outcome,)) => Some(outcome),
            Err(e) => {
                tracing::trace!(
                    plugin = %plugin.info.name,
                    "synchronous evaluate gave way to the async path: {e:#}"
                );
                None
            }
        }
    }
}

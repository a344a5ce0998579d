//! The capability imports as the guest sees them (both worlds): accounting and grants, then
//! `crate::net`.

use wasmtime::component::Resource;

use super::grants::Capability;
use super::store::Invocation;
use crate::bindings::types::{CapError, CertSummary};
use crate::bindings::{dns, http, log, smtp, tcp, tls, types};
use crate::net;

/// Runs `$body` after accounting a call to `$cap`, returning a `not-granted` error to the guest
/// when the capability is not allowed.
macro_rules! guarded {
    ($self:ident, $cap:expr, $body:expr) => {{
        if let Err(e) = $self.enter($cap)? {
            return Ok(Err(e));
        }
        let started = tokio::time::Instant::now();
        let result = $body;
        $self.cpu.add_host(started.elapsed());
        wasmtime::Result::<_>::Ok(result)
    }};
}

impl types::Host for Invocation {}

impl http::Host for Invocation {
    async fn send(
        &mut self,
        req: http::Request,
    ) -> wasmtime::Result<Result<http::Response, CapError>> {
        guarded!(
            self,
            Capability::Http,
            net::http::send(self.policy(), &req, self.deadline).await
        )
    }
}

impl dns::Host for Invocation {
    async fn resolve(&mut self, q: dns::Query) -> wasmtime::Result<Result<dns::Answer, CapError>> {
        guarded!(
            self,
            Capability::Dns,
            net::dns::resolve(self.policy(), q, self.deadline).await
        )
    }
}

impl tls::Host for Invocation {
    async fn inspect(
        &mut self,
        req: tls::InspectRequest,
    ) -> wasmtime::Result<Result<tls::Report, CapError>> {
        guarded!(
            self,
            Capability::Tls,
            net::tls::inspect(self.policy(), req, self.deadline).await
        )
    }
}

impl tcp::Host for Invocation {
    async fn connect(
        &mut self,
        options: tcp::ConnectOptions,
    ) -> wasmtime::Result<Result<Resource<net::tcp::Connection>, CapError>> {
        match guarded!(
            self,
            Capability::Tcp,
            net::tcp::connect(self.policy(), options, self.deadline).await
        )? {
            Ok(conn) => Ok(Ok(self.table().push(conn)?)),
            Err(e) => Ok(Err(e)),
        }
    }
}

impl tcp::HostConnection for Invocation {
    async fn info(
        &mut self,
        conn: Resource<net::tcp::Connection>,
    ) -> wasmtime::Result<tcp::ConnectInfo> {
        Ok(self.table().get(&conn)?.info())
    }

    async fn send(
        &mut self,
        conn: Resource<net::tcp::Connection>,
        data: Vec<u8>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<(), CapError>> {
        guarded!(
            self,
            Capability::Tcp,
            self.table().get_mut(&conn)?.send(data, timeout_ms).await
        )
    }

    async fn receive(
        &mut self,
        conn: Resource<net::tcp::Connection>,
        max_bytes: u32,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, CapError>> {
        guarded!(
            self,
            Capability::Tcp,
            self.table()
                .get_mut(&conn)?
                .receive(max_bytes, timeout_ms)
                .await
        )
    }

    async fn read_line(
        &mut self,
        conn: Resource<net::tcp::Connection>,
        max_bytes: u32,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Option<String>, CapError>> {
        guarded!(
            self,
            Capability::Tcp,
            self.table()
                .get_mut(&conn)?
                .read_line(max_bytes, timeout_ms)
                .await
        )
    }

    async fn upgrade_tls(
        &mut self,
        conn: Resource<net::tcp::Connection>,
        sni: Option<String>,
        verify_tls: bool,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Option<CertSummary>, CapError>> {
        guarded!(
            self,
            Capability::Tcp,
            self.table()
                .get_mut(&conn)?
                .upgrade_tls(sni, verify_tls, timeout_ms)
                .await
        )
    }

    async fn drop(&mut self, conn: Resource<net::tcp::Connection>) -> wasmtime::Result<()> {
        self.table().delete(conn)?;
        Ok(())
    }
}

impl smtp::Host for Invocation {
    async fn send(
        &mut self,
        server: smtp::Server,
        message: smtp::Message,
    ) -> wasmtime::Result<Result<smtp::Sent, smtp::SendError>> {
        if let Err(e) = self.enter(Capability::Smtp)? {
            return Ok(Err(smtp::SendError::Cap(e)));
        }
        let started = tokio::time::Instant::now();
        let result = net::smtp::send(self.policy(), server, message, self.deadline).await;
        self.cpu.add_host(started.elapsed());
        Ok(result)
    }
}

impl log::Host for Invocation {
    async fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        self.write_log(level, message)
    }
}

impl Invocation {
    /// The `log` import: counted against the log limits, truncated, tagged and emitted.
    pub(super) fn write_log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        if !self.enter_log()? {
            return Ok(());
        }
        let mut message = message;
        let cap = self.limits.max_log_line_bytes;
        if message.len() > cap {
            let mut end = cap;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        let plugin = &*self.tag.plugin;
        let monitor = self.tag.monitor_id.as_deref();
        let channel = self.tag.channel.as_deref();
        match level {
            log::Level::Trace => {
                tracing::trace!(target: "pharos::plugin", plugin, monitor, channel, "{message}")
            }
            log::Level::Debug => {
                tracing::debug!(target: "pharos::plugin", plugin, monitor, channel, "{message}")
            }
            log::Level::Info => {
                tracing::info!(target: "pharos::plugin", plugin, monitor, channel, "{message}")
            }
            log::Level::Warn => {
                tracing::warn!(target: "pharos::plugin", plugin, monitor, channel, "{message}")
            }
            log::Level::Error => {
                tracing::error!(target: "pharos::plugin", plugin, monitor, channel, "{message}")
            }
        }
        Ok(())
    }
}

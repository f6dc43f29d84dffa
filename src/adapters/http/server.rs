//! The listener: at most `MAX_CONNECTIONS` connections at once, each watched so that it cannot
//! hold its slot by idling (`IDLE_TIMEOUT`) or by sending its request head slowly
//! (`HEADER_READ_TIMEOUT`); request bodies have their own timeout in `body::buffer_body`.
//! Each request carries the peer's address as `ConnectInfo<SocketAddr>`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tower::{Service, ServiceExt as _};

use crate::config::ConnectionLimits;

/// How long the accept loop pauses after a failed accept (e.g. out of file descriptors).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` within `limits` until `shutdown` resolves, then lets the open
/// connections finish their requests.
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        // A slot first: while all are taken, new connections wait in the listen backlog.
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("accepting a connection failed: {e}");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let connection = Connection {
            app: app.clone(),
            peer,
            limits,
            stopping: stopping.clone(),
        };
        tokio::spawn(async move {
            connection.run(stream).await;
            drop(slot);
        });
    }
    let _ = stop.send(true);
    // Every connection gives its slot back when it ends.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

struct Connection<S> {
    app: S,
    peer: SocketAddr,
    limits: ConnectionLimits,
    stopping: watch::Receiver<bool>,
}

impl<S> Connection<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    async fn run(mut self, stream: TcpStream) {
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched {
            inner: stream,
            activity: Arc::clone(&activity),
        });
        let (app, peer) = (self.app.clone(), self.peer);
        let served = Arc::clone(&activity);
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            served.set(Phase::Busy);
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            let (app, served) = (app.clone(), Arc::clone(&served));
            async move {
                let response = app.oneshot(request).await;
                served.set(Phase::Idle(Instant::now()));
                response
            }
        });
        let connection = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
        tokio::pin!(connection);
        let mut draining = false;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!("connection ended: {e}");
                    }
                    return;
                }
                () = activity.overstayed(&self.limits) => {
                    tracing::debug!("closing a connection that was idle or slow too long");
                    return;
                }
                changed = self.stopping.changed(), if !draining => {
                    draining = true;
                    if changed.is_ok() {
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

/// What a connection is doing, as far as its timeouts are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request, or writing out a response, since the instant given.
    Idle(Instant),
    /// Receiving a request head since its first byte arrived at the instant given.
    Head(Instant),
    /// A request is being served (its body has its own timeout; long polls may wait).
    Busy,
}

/// The phase of a connection. Changes are not signalled: the watcher (`overstayed`) looks at
/// the phase when it wakes, which it does at least once per header timeout, so a request
/// costs no wake-up and no timer of its own.
struct Activity {
    phase: Mutex<Phase>,
}

impl Activity {
    fn new() -> Self {
        Activity {
            phase: Mutex::new(Phase::Idle(Instant::now())),
        }
    }

    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(|p| p.into_inner()) = phase;
    }

    /// Bytes arrived: an idle connection starts receiving a request head.
    fn read(&self) {
        let mut phase = self.phase.lock().unwrap_or_else(|p| p.into_inner());
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Head(Instant::now());
        }
    }

    /// Bytes left: a response being written out keeps the connection from counting as idle.
    fn wrote(&self) {
        let mut phase = self.phase.lock().unwrap_or_else(|p| p.into_inner());
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Idle(Instant::now());
        }
    }

    /// Resolves once the connection has been idle longer than the idle timeout, or has been
    /// receiving a request head longer than the header timeout.
    async fn overstayed(&self, limits: &ConnectionLimits) {
        loop {
            let now = Instant::now();
            let deadline = match self.phase() {
                Phase::Idle(since) => Some(since + limits.idle_timeout),
                Phase::Head(since) => Some(since + limits.header_read_timeout),
                Phase::Busy => None,
            };
            if deadline.is_some_and(|deadline| deadline <= now) {
                return;
            }
            // A head that starts arriving while this sleeps is due a header timeout after its
            // first byte: never sleep longer than that.
            let next_look = now + limits.header_read_timeout;
            tokio::time::sleep_until(deadline.map_or(next_look, |d| d.min(next_look))).await;
        }
    }
}

/// A TCP stream that reports its reads and writes to the connection's `Activity`.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = result
            && written > 0
        {
            self.activity.wrote();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(written)) = result
            && written > 0
        {
            self.activity.wrote();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_follows_the_phase() {
        let (activity, limits) = (Activity::new(), limits());
        let start = Instant::now();
        // Idle: closed after the idle timeout.
        activity.overstayed(&limits).await;
        assert_eq!(start.elapsed(), Duration::from_secs(60));
        // A head that started arriving gets the header timeout from its first byte.
        activity.set(Phase::Idle(Instant::now()));
        tokio::time::sleep(Duration::from_secs(30)).await;
        activity.read();
        let head = Instant::now();
        activity.overstayed(&limits).await;
        assert_eq!(head.elapsed(), Duration::from_secs(10));
        // A request being served is never cut; once answered, the idle clock runs again.
        activity.set(Phase::Busy);
        let watch = activity.overstayed(&limits);
        tokio::pin!(watch);
        assert!(
            tokio::time::timeout(Duration::from_secs(3600), watch.as_mut())
                .await
                .is_err()
        );
        activity.set(Phase::Idle(Instant::now()));
        let answered = Instant::now();
        watch.await;
        assert_eq!(answered.elapsed(), Duration::from_secs(60));
    }
}

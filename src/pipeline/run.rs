//! `herald run`: sources → store → dispatch, with a clear lifetime. Every task is owned here and
//! stops through one cancellation token; on stop, intake ends first, then the sends in flight
//! finish and are recorded.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{Ingest, Pipeline};
use crate::channel;
use crate::config::Config;
use crate::dispatch::{Delivered, Dispatcher, Lane};
use crate::source::graph::GraphSource;
use crate::source::kafka::KafkaSource;
use crate::source::{SourceConfig, file, http};
use crate::store::{Engine, InstanceLock, RunLock, Schema, SqlStore, Store};
use crate::web::{self, Readiness};

/// The store URL a configuration names, resolved (it may come from the environment or a file).
fn store_url(config: &Config) -> anyhow::Result<(String, Engine)> {
    let url = config
        .store
        .url
        .resolve(config.dir())
        .map_err(|e| anyhow::anyhow!("{}: store.url: {e}", config.path.display()))?;
    let url = url.expose().to_owned();
    let engine = Engine::of(&url, config.dir())
        .map_err(|e| anyhow::anyhow!("{}: store.url: {e}", config.path.display()))?;
    Ok((url, engine))
}

/// Opens the store a configuration names, migrating it or checking that it is migrated.
pub async fn open_store(config: &Config, schema: Schema) -> anyhow::Result<SqlStore> {
    let (url, _) = store_url(config)?;
    Ok(SqlStore::open(&url, config.dir(), schema, config.store.pool_size).await?)
}

/// Runs Herald until `stop` is cancelled or, with `once`, until every source has been read to
/// its end and nothing is pending in the outbox.
/// `instance` names this instance in a shared store (default: [`super::instance_name`]).
pub async fn run(
    config: Config,
    once: bool,
    schema: Schema,
    instance: Option<String>,
    stop: CancellationToken,
) -> anyhow::Result<Delivered> {
    let worker =
        super::instance_name(instance.as_deref(), &config.path).map_err(|e| anyhow::anyhow!(e))?;
    let (url, engine) = store_url(&config)?;
    let _lock = match &engine {
        Engine::Sqlite(path) => Some(RunLock::acquire(path)?),
        Engine::Postgres => None,
    };
    let store = SqlStore::open(&url, config.dir(), schema, config.store.pool_size).await?;
    // On PostgreSQL, no two live processes share a name: each would take the other's claims
    // for its own.
    let _instance = match &engine {
        Engine::Sqlite(_) => None,
        Engine::Postgres => Some(InstanceLock::acquire(&url, &worker).await?),
    };
    // The notification listener reconnects with it; nothing else keeps the secret.
    let listen_url = (engine == Engine::Postgres).then(|| url.clone());
    drop(url);
    // Claims still recorded under this instance's name (on SQLite, any claim: it holds the
    // store alone) belong to a process that died mid-send. Released now, they are sent again at
    // once; this is the documented duplicate window. Other live instances' claims are left to
    // them; a dead instance that never returns has its claims taken over within one lease.
    let released = store
        .release_claims(_lock.is_none().then_some(worker.as_str()))
        .await?;
    if released > 0 {
        tracing::warn!(
            released,
            instance = %worker,
            "released the claims of a previous run that stopped mid-send"
        );
    }
    tracing::info!(instance = %worker, store = engine.name(), "starting");
    let unknown = for_other_channels(&store, &config).await?;
    for (channel, pending) in &unknown {
        tracing::warn!(
            channel,
            pending,
            "pending notifications for a channel this configuration does not have; left for an instance that has it (or remove them: `herald outbox`)"
        );
    }
    let base = config.dir().to_owned();
    let config_path = config.path.clone();
    let channels = channel::build_all(&config.channels, &config.microsoft, &base)
        .map_err(|e| anyhow::anyhow!("{}: {e}", config.path.display()))?;
    let lanes: BTreeMap<String, Lane> = channels
        .into_iter()
        .map(|(name, channel)| {
            let slots = Arc::new(Semaphore::new(config.channels[&name].concurrency()));
            (name, Lane { channel, slots })
        })
        .collect();
    let delivery = config.delivery.clone();
    let sources = config.sources.clone();
    let admin = config.admin.clone();
    let admin_listener = match once {
        true => None,
        false => Some(web::bind(&admin).await.map_err(|e| {
            anyhow::anyhow!(
                "{}: admin.listen {}: {e}",
                config.path.display(),
                admin.listen
            )
        })?),
    };
    // The report pages, when `[web]` is configured: bound (and their keys read) before
    // anything starts, so a wrong address or a missing secret stops `run` at once.
    let public = match (&config.web, once) {
        (Some(web), false) => {
            let keys = web
                .keys(config.dir())
                .map_err(|e| anyhow::anyhow!("{}: web.link_keys: {e}", config.path.display()))?;
            let listener = web::public::bind(web).await.map_err(|e| {
                anyhow::anyhow!("{}: web.listen {}: {e}", config.path.display(), web.listen)
            })?;
            let pages = super::report_pages(&config).map_err(|e| {
                anyhow::anyhow!("{}: web.page_template: {e}", config.path.display())
            })?;
            Some((web.clone(), keys, listener, config.dir().to_owned(), pages))
        }
        _ => None,
    };
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| anyhow::anyhow!("metrics: {e}"))?;
    let readiness = Arc::new(Readiness::default());
    let mut kafka = BTreeMap::new();
    for source in &sources {
        if let SourceConfig::Kafka(c) = source {
            let consumer = KafkaSource::new(c, &base, &worker, readiness.clone()).map_err(|e| {
                anyhow::anyhow!("{}: source {}: {e}", config.path.display(), c.name)
            })?;
            kafka.insert(c.name.clone(), consumer);
        }
    }
    let mut graphs = BTreeMap::new();
    for source in &sources {
        if let SourceConfig::Graph(c) = source {
            let graph =
                GraphSource::new(c, &config.microsoft, &base, readiness.clone()).map_err(|e| {
                    anyhow::anyhow!("{}: source {}: {e}", config.path.display(), c.name)
                })?;
            graphs.insert(c.name.clone(), graph);
        }
    }
    let mut tokens = Vec::new();
    for source in &sources {
        if let SourceConfig::Http(c) = source {
            let token = c.resolve_token(&base).map_err(|e| {
                anyhow::anyhow!("{}: source {}: {e}", config.path.display(), c.name)
            })?;
            tokens.push((c.name.clone(), token));
        }
    }
    let retention = config.store.retention.clone();
    let dashboard = match (&config.dashboard, &admin_listener) {
        (Some(dashboard), Some(_)) => {
            let app = dashboard
                .app
                .as_ref()
                .and_then(|app| config.microsoft.get(app))
                .cloned();
            Some((
                dashboard.clone(),
                config.shown.clone(),
                config.path.clone(),
                app,
            ))
        }
        _ => None,
    };
    let ingest = Ingest::new(Arc::new(Pipeline::new(config)?), store.clone())
        .with_readiness(readiness.clone());
    let dashboard = match dashboard {
        Some((dashboard, shown, path, app)) => Some(
            crate::dashboard::router(crate::dashboard::Dashboard {
                config: dashboard,
                base: base.clone(),
                config_text: shown,
                store: store.clone(),
                readiness: readiness.clone(),
                replayer: replayer(ingest.clone()),
                tls: admin.tls.is_some(),
                describer: {
                    let pipeline = ingest.pipeline_arc();
                    Arc::new(move |raw: &[u8]| pipeline.describe(raw))
                },
                silencer: silencer(ingest.pipeline_arc()),
                app,
            })
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        ),
        None => None,
    };
    let pruner =
        (!once).then(|| tokio::spawn(super::prune::pruner(store.clone(), retention, stop.clone())));
    // The configuration's silences ([[silence]]), made once and ended once removed.
    {
        let pipeline = ingest.pipeline_arc();
        let tell = silencer(pipeline.clone()).tell;
        let (made, ended) = store
            .sync_silences(&pipeline.config().configured_silences, |s| tell(s))
            .await?;
        if made + ended > 0 {
            tracing::info!(made, ended, "silences of the configuration");
        }
    }
    let closer = (!once).then(|| {
        tokio::spawn(super::storm::closer(
            store.clone(),
            ingest.pipeline_arc(),
            ingest.queued(),
            stop.clone(),
        ))
    });

    let intake_done = CancellationToken::new();
    let dispatcher = Dispatcher {
        store,
        lanes,
        delivery,
        worker,
        readiness: readiness.clone(),
        wake: ingest.queued(),
    };
    // On PostgreSQL, a commit by any instance wakes this one's dispatcher.
    let listener = listen_url.map(|url| {
        tokio::spawn(crate::store::listen_for_queued(
            url,
            dispatcher.wake.clone(),
            stop.clone(),
        ))
    });
    let dispatch = tokio::spawn(dispatcher.run(stop.clone(), once.then(|| intake_done.clone())));

    let admin_tls = match &admin.tls {
        Some(files) if !once => Some(
            files
                .acceptor(&base)
                .map_err(|e| anyhow::anyhow!("{}: admin.tls.{e}", config_path.display()))?,
        ),
        _ => None,
    };
    let web = admin_listener.map(|l| {
        tokio::spawn(web::serve(
            l,
            admin_tls,
            ingest.store().clone(),
            metrics,
            readiness.clone(),
            dashboard,
            stop.clone(),
        ))
    });

    let public = public.map(|(web, keys, listener, dir, pages)| {
        let pipeline = ingest.pipeline_arc();
        let notifier: web::public::Notifier = Arc::new(move |answer| {
            pipeline
                .planner()
                .report_notices(answer)
                .into_iter()
                .filter_map(|n| match n {
                    Ok(n) => Some(super::ingest::queued(n)),
                    Err(e) => {
                        tracing::error!(error = %e, "a report notice could not be rendered");
                        None
                    }
                })
                .collect()
        });
        tokio::spawn(web::public::serve(
            listener,
            web::public::Public {
                config: web,
                base: dir,
                keys,
                pages,
                notifier,
            },
            ingest.store().clone(),
            stop.clone(),
        ))
    });

    // `--once` on a terminal: show progress on one line of stderr.
    let progress = (once && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .then(|| tokio::spawn(show_progress(ingest.clone(), stop.clone())));

    let mut intake = JoinSet::new();
    for source in sources {
        if once && matches!(source, SourceConfig::Http(_)) {
            tracing::info!(source = %source.name(), "--once: an HTTP source has no end; not started");
            continue;
        }
        let token = match &source {
            SourceConfig::Http(c) => tokens
                .iter()
                .find(|(n, _)| *n == c.name)
                .and_then(|(_, t)| t.clone()),
            SourceConfig::File(_) | SourceConfig::Kafka(_) | SourceConfig::Graph(_) => None,
        };
        let consumer = kafka.remove(source.name());
        let graph = graphs.remove(source.name());
        let (ingest, stop, base) = (ingest.clone(), stop.clone(), base.clone());
        intake.spawn(async move {
            let name = source.name().to_owned();
            let stored = |r: Result<(), crate::store::StoreError>| r.map_err(|e| e.to_string());
            let result = match source {
                SourceConfig::File(c) => stored(file::run(c, base, ingest, stop, once).await),
                SourceConfig::Http(c) => stored(http::run(c, base, token, ingest, stop).await),
                SourceConfig::Kafka(_) => match consumer {
                    Some(consumer) => stored(consumer.run(ingest, stop, once).await),
                    None => Ok(()),
                },
                SourceConfig::Graph(_) => match graph {
                    Some(graph) => graph.run(ingest, stop, once).await,
                    None => Ok(()),
                },
            };
            (name, result)
        });
    }
    readiness
        .sources_started
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let mut failed = None;
    while let Some(joined) = intake.join_next().await {
        match joined {
            Ok((_, Ok(()))) => {}
            Ok((name, Err(e))) => {
                tracing::error!(source = %name, error = %e, "source stopped");
                failed.get_or_insert(anyhow::anyhow!("source {name}: {e}"));
                stop.cancel();
            }
            Err(e) => {
                failed.get_or_insert(anyhow::anyhow!("a source task failed: {e}"));
                stop.cancel();
            }
        }
    }
    intake_done.cancel();
    let delivered = dispatch.await??;
    if let Some(progress) = progress {
        progress.abort();
        print_progress(&ingest).await;
        eprintln!();
    }
    stop.cancel();
    if let Some(pruner) = pruner {
        pruner.await?;
    }
    if let Some(closer) = closer {
        closer.await?;
    }
    if let Some(listener) = listener {
        listener.await?;
    }
    if let Some(web) = web {
        web.await?
            .map_err(|e| anyhow::anyhow!("admin listener on {}: {e}", admin.listen))?;
    }
    if let Some(public) = public {
        public
            .await?
            .map_err(|e| anyhow::anyhow!("public listener: {e}"))?;
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(delivered),
    }
}

/// Pending notifications for channels `config` does not have, per channel: another instance's
/// (a rolling deploy that adds a channel) or a channel since removed. This instance leaves
/// them alone.
pub async fn for_other_channels<S: Store>(
    store: &S,
    config: &Config,
) -> Result<BTreeMap<String, u64>, crate::store::StoreError> {
    Ok(store
        .pending_by_channel()
        .await?
        .into_iter()
        .filter(|(channel, n)| *n > 0 && !config.channels.contains_key(channel))
        .collect())
}

async fn show_progress<S: Store>(ingest: Ingest<S>, stop: CancellationToken) {
    loop {
        print_progress(&ingest).await;
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(250)) => {}
            _ = stop.cancelled() => return,
        }
    }
}

async fn print_progress<S: Store>(ingest: &Ingest<S>) {
    if let Ok(c) = ingest.store().counts().await {
        eprint!(
            "\rrecords read: {}  notifications sent: {}  pending: {}  failed: {}   ",
            ingest.records(),
            c.sent,
            c.pending,
            c.failed
        );
    }
}

/// How the dashboard replays a dead letter: through this instance's pipeline, as
/// `herald dead-letters replay` does, recorded as the operator's.
fn replayer<S: Store + 'static>(ingest: Ingest<S>) -> crate::dashboard::Replayer {
    Arc::new(move |id, by| {
        let ingest = ingest.clone();
        Box::pin(async move {
            let store = ingest.store();
            let found = store.dead_letter(id).await.map_err(|e| e.to_string())?;
            let Some(d) = found else {
                return Err(format!("no dead letter {id}"));
            };
            let intake = ingest
                .replay_by(id, &d.source, &d.input, &d.raw, Some(&by))
                .await
                .map_err(|e| e.to_string())?;
            Ok(match intake.committed.dead_letters {
                0 => format!(
                    "{} records, {} notifications queued",
                    intake.records, intake.committed.queued
                ),
                _ => "still unusable: its reason is in the replay history".to_owned(),
            })
        })
    })
}

/// How the dashboard checks a silence and tells the security group of it: through this
/// instance's planner, as `herald silence add` does.
fn silencer(pipeline: Arc<super::Pipeline>) -> crate::dashboard::Silencer {
    let check = pipeline.clone();
    crate::dashboard::Silencer {
        check: Arc::new(move |m| check.planner().silence_may_hold(m)),
        tell: Arc::new(
            move |entry| match pipeline.planner().silence_created(entry) {
                Ok(notices) => notices.into_iter().map(super::ingest::queued).collect(),
                Err(e) => {
                    tracing::error!(error = %e, "the security group's notice of a silence could not be made");
                    Vec::new()
                }
            },
        ),
    }
}

//! The demo fleet's hosts: twelve machines in five roles (web, app, api,
//! db, worker), their mounts, services and groups.

/// One host of the demo fleet.
pub(super) struct HostDef {
    pub(super) name: &'static str,
    pub(super) group: &'static str,
    pub(super) role: &'static str,
    pub(super) manager: &'static str,
    pub(super) services: &'static [&'static str],
    /// The service `memory_used_percent` is attributed to.
    pub(super) main: &'static str,
    /// (mount point, size in GiB)
    pub(super) mounts: &'static [(&'static str, f64)],
    /// (path, service) of the host's main log file.
    pub(super) log: (&'static str, &'static str),
    /// (service, pool) when the host has a connection pool.
    pub(super) pool: Option<(&'static str, &'static str)>,
    pub(super) cores: f64,
}

pub(super) const WEB_MOUNTS: &[(&str, f64)] = &[("/", 40.0), ("/var", 200.0)];
pub(super) const DB_MOUNTS: &[(&str, f64)] = &[
    ("/", 40.0),
    ("/var", 100.0),
    ("/var/lib/postgresql", 1000.0),
];

pub(super) const fn web(name: &'static str) -> HostDef {
    HostDef {
        name,
        group: "web",
        role: "web",
        manager: "systemd",
        services: &["nginx", "node_exporter"],
        main: "nginx",
        mounts: WEB_MOUNTS,
        log: ("/var/log/nginx/access.log", "nginx"),
        pool: None,
        cores: 4.0,
    }
}

pub(super) const fn app(name: &'static str) -> HostDef {
    HostDef {
        name,
        group: "web",
        role: "app",
        manager: "supervisor",
        services: &["gunicorn", "nginx", "node_exporter"],
        main: "gunicorn",
        mounts: WEB_MOUNTS,
        log: ("/var/log/gunicorn/app.log", "gunicorn"),
        pool: None,
        cores: 8.0,
    }
}

pub(super) const fn api(name: &'static str) -> HostDef {
    HostDef {
        name,
        group: "api",
        role: "api",
        manager: "docker",
        services: &["orders", "payments", "node_exporter"],
        main: "orders",
        mounts: WEB_MOUNTS,
        log: ("/var/log/orders/orders.log", "orders"),
        pool: Some(("orders", "orders_db")),
        cores: 8.0,
    }
}

pub(super) const fn db(name: &'static str) -> HostDef {
    HostDef {
        name,
        group: "db",
        role: "database",
        manager: "systemd",
        services: &["postgresql", "pgbackrest", "node_exporter"],
        main: "postgresql",
        mounts: DB_MOUNTS,
        log: ("/var/log/postgresql/postgresql-16-main.log", "postgresql"),
        pool: None,
        cores: 16.0,
    }
}

pub(super) const fn worker(name: &'static str) -> HostDef {
    HostDef {
        name,
        group: "workers",
        role: "worker",
        manager: "systemd",
        services: &["celery", "node_exporter"],
        main: "celery",
        mounts: WEB_MOUNTS,
        log: ("/var/log/celery/worker.log", "celery"),
        pool: None,
        cores: 4.0,
    }
}

pub(super) const HOSTS: [HostDef; 14] = [
    web("web-01"),
    web("web-02"),
    web("web-03"),
    web("web-04"),
    app("app-01"),
    app("app-02"),
    api("api-01"),
    api("api-02"),
    api("api-03"),
    db("db-01"),
    db("db-02"),
    worker("worker-01"),
    worker("worker-02"),
    worker("worker-03"),
];

//! The port plan: fixed ports for core infrastructure, a base for Dynamo serve.

use crate::env::{self, EnvError, Lookup};

/// The port plan: where core infrastructure listens (fixed ports) and
/// where this test's Dynamo-serve frontend listens (a dynamic port from a
/// base, "8000+").
///
/// [`SERVICE_PORTS`] is the plan as written, before env overrides;
/// [`ServicePorts::from_env`] applies the documented overrides; a test that
/// takes `ports: ServicePorts` as a parameter gets the plan in force with
/// `dynamo_serve` *reserved* for it (the first free port at or above
/// `dynamo_serve_base`, held until teardown), and, when it runs a private
/// `etcd(isolated)` / `nats(isolated)`, that instance's ports.
///
/// | field | default | env var |
/// |---|---|---|
/// | `etcd_client` | 2379 | `DYNAMO_TEST_ETCD_CLIENT_PORT` |
/// | `etcd_peer` | 2380 | `DYNAMO_TEST_ETCD_PEER_PORT` |
/// | `nats_client` | 4222 | `DYNAMO_TEST_NATS_CLIENT_PORT` |
/// | `nats_http` | 8222 | `DYNAMO_TEST_NATS_HTTP_PORT` |
/// | `dynamo_serve_base` | 8000 | `DYNAMO_TEST_DYNAMO_SERVE_BASE` |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServicePorts {
    /// etcd client port (fixed).
    pub etcd_client: u16,
    /// etcd peer port (fixed).
    pub etcd_peer: u16,
    /// NATS client port (fixed).
    pub nats_client: u16,
    /// NATS HTTP monitoring port (fixed).
    pub nats_http: u16,
    /// First port tried for a Dynamo serve frontend ("8000+").
    pub dynamo_serve_base: u16,
    /// The Dynamo serve port: reserved for the test when injected; in
    /// [`SERVICE_PORTS`] and [`ServicePorts::from_env`], the base itself.
    pub dynamo_serve: u16,
}

/// The port plan as written, before env overrides. Use
/// [`ServicePorts::from_env`] (or an injected [`ServicePorts`]) for the plan
/// in force.
pub const SERVICE_PORTS: ServicePorts = ServicePorts {
    etcd_client: 2379,
    etcd_peer: 2380,
    nats_client: 4222,
    nats_http: 8222,
    dynamo_serve_base: 8000,
    dynamo_serve: 8000,
};

/// One fixed port of the plan, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlanPort {
    EtcdClient,
    EtcdPeer,
    NatsClient,
    NatsHttp,
}

/// Env var overriding [`ServicePorts::etcd_client`].
pub const ENV_ETCD_CLIENT_PORT: &str = "DYNAMO_TEST_ETCD_CLIENT_PORT";
/// Env var overriding [`ServicePorts::etcd_peer`].
pub const ENV_ETCD_PEER_PORT: &str = "DYNAMO_TEST_ETCD_PEER_PORT";
/// Env var overriding [`ServicePorts::nats_client`].
pub const ENV_NATS_CLIENT_PORT: &str = "DYNAMO_TEST_NATS_CLIENT_PORT";
/// Env var overriding [`ServicePorts::nats_http`].
pub const ENV_NATS_HTTP_PORT: &str = "DYNAMO_TEST_NATS_HTTP_PORT";
/// Env var overriding [`ServicePorts::dynamo_serve_base`].
pub const ENV_DYNAMO_SERVE_BASE: &str = "DYNAMO_TEST_DYNAMO_SERVE_BASE";

impl ServicePorts {
    /// The plan in force: [`SERVICE_PORTS`] with the env overrides applied.
    ///
    /// A variable that is set but is not a port number is an error naming the
    /// variable and its value; so are two fixed ports that end up equal
    /// (e.g. `DYNAMO_TEST_ETCD_CLIENT_PORT=4222` with the NATS client on its
    /// default 4222): the error names both fields, their variables and the
    /// port.
    pub fn from_env() -> Result<ServicePorts, EnvError> {
        Self::from_vars(&env::process_env)
    }

    /// The plan with overrides read through `vars`.
    pub(crate) fn from_vars(vars: Lookup) -> Result<ServicePorts, EnvError> {
        let d = SERVICE_PORTS;
        let get = |name, default| Ok::<_, EnvError>(env::port(vars, name)?.unwrap_or(default));
        let dynamo_serve_base = get(ENV_DYNAMO_SERVE_BASE, d.dynamo_serve_base)?;
        let plan = ServicePorts {
            etcd_client: get(ENV_ETCD_CLIENT_PORT, d.etcd_client)?,
            etcd_peer: get(ENV_ETCD_PEER_PORT, d.etcd_peer)?,
            nats_client: get(ENV_NATS_CLIENT_PORT, d.nats_client)?,
            nats_http: get(ENV_NATS_HTTP_PORT, d.nats_http)?,
            dynamo_serve_base,
            dynamo_serve: dynamo_serve_base,
        };
        plan.check_distinct(vars)?;
        Ok(plan)
    }

    /// Two fixed ports on one number cannot both be served: an error naming
    /// both (the one set by a variable first, as the one to change).
    fn check_distinct(&self, vars: Lookup) -> Result<(), EnvError> {
        let named = self.named_fixed_ports();
        let is_set = |name: &str| vars(name).is_some_and(|v| !v.is_empty());
        for (i, &(first, port)) in named.iter().enumerate() {
            if let Some(&(second, _)) = named[i + 1..].iter().find(|(_, p)| *p == port) {
                let (first_var, second_var) = (fixed_port_var(first), fixed_port_var(second));
                // Blame a variable that is set (a default alone never clashes).
                let (blamed, other, other_var) = if is_set(second_var) && !is_set(first_var) {
                    (second_var, first, first_var)
                } else {
                    (first_var, second, second_var)
                };
                let other_source = if is_set(other_var) {
                    format!("set by {other_var}")
                } else {
                    format!("its default; {other_var} is unset")
                };
                return Err(EnvError::new(
                    blamed,
                    &port.to_string(),
                    format!(
                        "a port of its own: {first} and {second} are both port {port} \
                         ({other} is {port}, {other_source}); give each its own port \
                         ({first_var} / {second_var})"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Sets one fixed port (a private instance's port replaces the plan's).
    pub(crate) fn set(&mut self, which: PlanPort, port: u16) {
        let field = match which {
            PlanPort::EtcdClient => &mut self.etcd_client,
            PlanPort::EtcdPeer => &mut self.etcd_peer,
            PlanPort::NatsClient => &mut self.nats_client,
            PlanPort::NatsHttp => &mut self.nats_http,
        };
        *field = port;
    }

    /// The fixed infrastructure ports, which are never handed out as dynamic ports.
    pub fn fixed_ports(&self) -> [u16; 4] {
        [
            self.etcd_client,
            self.etcd_peer,
            self.nats_client,
            self.nats_http,
        ]
    }

    /// `(name, port)` pairs of the fixed ports, for tables and logs.
    pub fn named_fixed_ports(&self) -> [(&'static str, u16); 4] {
        [
            ("etcd_client", self.etcd_client),
            ("etcd_peer", self.etcd_peer),
            ("nats_client", self.nats_client),
            ("nats_http", self.nats_http),
        ]
    }
}

/// The env var overriding the fixed port called `name` in
/// [`ServicePorts::named_fixed_ports`].
fn fixed_port_var(name: &str) -> &'static str {
    match name {
        "etcd_client" => ENV_ETCD_CLIENT_PORT,
        "etcd_peer" => ENV_ETCD_PEER_PORT,
        "nats_client" => ENV_NATS_CLIENT_PORT,
        _ => ENV_NATS_HTTP_PORT,
    }
}

impl ServicePorts {
    /// `http://127.0.0.1:{dynamo_serve}{path}`.
    pub fn dynamo_serve_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.dynamo_serve, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_plan() {
        assert_eq!(SERVICE_PORTS.fixed_ports(), [2379, 2380, 4222, 8222]);
        assert_eq!(SERVICE_PORTS.dynamo_serve_base, 8000);
        assert_eq!(SERVICE_PORTS.dynamo_serve, 8000);
    }

    #[test]
    fn overrides_apply_and_bad_values_name_variable_and_value() {
        let v = crate::env::tests::vars(&[(ENV_NATS_CLIENT_PORT, "14222")]);
        let plan = ServicePorts::from_vars(&v).unwrap();
        assert_eq!(plan.nats_client, 14222);
        assert_eq!(plan.etcd_client, 2379);

        let v = crate::env::tests::vars(&[(ENV_ETCD_CLIENT_PORT, "etcd")]);
        let msg = ServicePorts::from_vars(&v).unwrap_err().to_string();
        assert!(msg.contains("DYNAMO_TEST_ETCD_CLIENT_PORT"), "{msg}");
        assert!(msg.contains("\"etcd\""), "{msg}");
    }

    #[test]
    fn two_equal_fixed_ports_are_an_error_naming_both() {
        // One set onto the other's default.
        let v = crate::env::tests::vars(&[(ENV_ETCD_CLIENT_PORT, "4222")]);
        let err = ServicePorts::from_vars(&v).unwrap_err();
        assert_eq!(err.name, ENV_ETCD_CLIENT_PORT);
        assert_eq!(err.value, "4222");
        let msg = err.to_string();
        assert!(
            msg.contains("etcd_client and nats_client are both port 4222"),
            "{msg}"
        );
        assert!(
            msg.contains("DYNAMO_TEST_NATS_CLIENT_PORT is unset"),
            "{msg}"
        );

        // The later one set onto the earlier one's default: the set one is blamed.
        let v = crate::env::tests::vars(&[(ENV_NATS_HTTP_PORT, "2380")]);
        let err = ServicePorts::from_vars(&v).unwrap_err();
        assert_eq!(err.name, ENV_NATS_HTTP_PORT);
        assert!(
            err.to_string()
                .contains("etcd_peer and nats_http are both port 2380"),
            "{err}"
        );

        // Both set.
        let v = crate::env::tests::vars(&[
            (ENV_NATS_CLIENT_PORT, "15000"),
            (ENV_NATS_HTTP_PORT, "15000"),
        ]);
        let msg = ServicePorts::from_vars(&v).unwrap_err().to_string();
        assert!(
            msg.contains("nats_client and nats_http are both port 15000"),
            "{msg}"
        );
        assert!(msg.contains("set by DYNAMO_TEST_NATS_HTTP_PORT"), "{msg}");

        // The Dynamo serve base is a base for dynamic ports, not a fixed port.
        let v = crate::env::tests::vars(&[(ENV_DYNAMO_SERVE_BASE, "4222")]);
        assert!(ServicePorts::from_vars(&v).is_ok());
    }
}

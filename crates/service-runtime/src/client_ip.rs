//! Who the client is, the one way every service works it out: the connecting peer, unless
//! that peer is a proxy we trust, in which case the `X-Forwarded-For` entry it appended, and
//! so on leftwards until the first address that is not a trusted proxy (nginx's
//! `set_real_ip_from` with `real_ip_recursive on`; Envoy's `xff_num_trusted_hops` is the
//! hop-count form, also offered).
//!
//! A client can write any `X-Forwarded-For` it likes, so only entries appended by proxies
//! we trust are believed: walking from the right stops at the first untrusted address, and
//! whatever the client put further left is never read. With nothing trusted (the default)
//! the peer is the client.
//!
//! - `TRUSTED_PROXIES`: comma-separated addresses or CIDRs (`127.0.0.0/8, 10.0.0.0/8`).
//! - `TRUSTED_PROXY_HOPS`: how many proxies, counted from the peer, are trusted whatever
//!   their address (default 0).

use std::net::IpAddr;

use actix_web::http::header::HeaderMap;
use ipnet::IpNet;

use crate::config::{ConfigError, EnvSource, ranged_or};

/// Longest `X-Forwarded-For` chain walked; a longer one is cut to its last entries.
const MAX_CHAIN: usize = 32;

/// Which proxies in front of this service are believed when they say who the client is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
    hops: usize,
}

impl TrustedProxies {
    /// Nothing trusted: the peer is the client.
    pub fn none() -> Self {
        Self::default()
    }

    pub fn new(networks: Vec<IpNet>, hops: usize) -> Self {
        Self { networks, hops }
    }

    /// Parses a comma-separated list of addresses and CIDRs (a bare address is a /32 or /128).
    pub fn parse_networks(raw: &str) -> Result<Vec<IpNet>, String> {
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| format!("`{entry}` is neither an IP address nor a CIDR"))
            })
            .collect()
    }

    /// `TRUSTED_PROXIES` and `TRUSTED_PROXY_HOPS`.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        const VAR: &str = "TRUSTED_PROXIES";
        let raw = env.get(VAR).unwrap_or_default();
        let networks = Self::parse_networks(&raw).map_err(|e| ConfigError::new(VAR, &raw, e))?;
        let hops = ranged_or(env, "TRUSTED_PROXY_HOPS", 0, 0..=MAX_CHAIN)?;
        Ok(Self { networks, hops })
    }

    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.networks.iter().any(|n| n.contains(&ip))
    }

    /// Whether anything is trusted (so `X-Forwarded-For` is read at all).
    pub fn trusts_any(&self) -> bool {
        !self.networks.is_empty() || self.hops > 0
    }

    /// The client of a request with these headers from `peer`; `None` only without a peer.
    pub fn client_ip(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<IpAddr> {
        self.believed_chain(headers, peer).into_iter().next()
    }

    /// The addresses that are believed, client first and `peer` last: what a proxy should
    /// pass on as `X-Forwarded-For` (with the peer as its last entry), so that whatever a
    /// client wrote further left never travels on. Empty only without a peer.
    pub fn believed_chain(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Vec<IpAddr> {
        let Some(peer) = peer.map(canonical) else {
            return Vec::new();
        };
        let mut believed = vec![peer];
        if !self.trusts_any() {
            return believed;
        }
        let mut entries: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        if entries.len() > MAX_CHAIN {
            entries.drain(..entries.len() - MAX_CHAIN);
        }
        // Right to left: the last believed address connected to the hop after it; if that
        // address is a trusted proxy, the entry it appended is believed too.
        for (hop, entry) in entries.iter().rev().enumerate() {
            let current = believed[believed.len() - 1];
            if hop >= self.hops && !self.is_trusted(current) {
                break;
            }
            // A trusted proxy that wrote something other than an address: believe nothing
            // further left, and count the request against the proxy that sent it.
            let Some(ip) = parse_entry(entry) else { break };
            believed.push(ip);
        }
        believed.reverse();
        believed
    }
}

/// An `X-Forwarded-For` entry: a bare address, `[v6]`, or either with a port.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(addr) = entry.parse::<std::net::SocketAddr>() {
        return Some(canonical(addr.ip()));
    }
    entry
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .and_then(|s| s.parse::<IpAddr>().ok())
        .map(canonical)
}

/// IPv4-mapped IPv6 (`::ffff:10.0.0.1`, what a dual-stack socket reports) as plain IPv4, so
/// one client has one address in limits and allowlists.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;

    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in xff {
            map.append(
                HeaderName::from_static("x-forwarded-for"),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn trusting(nets: &str, hops: usize) -> TrustedProxies {
        TrustedProxies::new(TrustedProxies::parse_networks(nets).unwrap(), hops)
    }

    #[test]
    fn with_nothing_trusted_the_peer_is_the_client_whatever_the_header_says() {
        let t = TrustedProxies::none();
        let got = t.client_ip(&headers(&["1.2.3.4"]), Some(ip("9.9.9.9")));
        assert_eq!(got, Some(ip("9.9.9.9")));
    }

    #[test]
    fn the_entry_a_trusted_proxy_appended_names_the_client_and_client_written_ones_are_ignored() {
        let t = trusting("127.0.0.1", 0);
        // The client wrote "6.6.6.6"; the gateway (127.0.0.1) appended the real peer 5.5.5.5.
        let got = t.client_ip(&headers(&["6.6.6.6, 5.5.5.5"]), Some(ip("127.0.0.1")));
        assert_eq!(got, Some(ip("5.5.5.5")));
        // The same header straight from an untrusted peer: the peer.
        let got = t.client_ip(&headers(&["6.6.6.6, 5.5.5.5"]), Some(ip("8.8.8.8")));
        assert_eq!(got, Some(ip("8.8.8.8")));
    }

    #[test]
    fn chains_of_trusted_proxies_are_walked_recursively() {
        // client → ingress 10.0.0.5 → sidecar 127.0.0.6 → us.
        let t = trusting("127.0.0.0/8, 10.0.0.0/8", 0);
        let got = t.client_ip(
            &headers(&["203.0.113.7", "10.0.0.5"]),
            Some(ip("127.0.0.6")),
        );
        assert_eq!(got, Some(ip("203.0.113.7")));
        // Every hop trusted: the leftmost.
        let got = t.client_ip(&headers(&["10.1.1.1"]), Some(ip("127.0.0.1")));
        assert_eq!(got, Some(ip("10.1.1.1")));
    }

    #[test]
    fn hop_counts_trust_that_many_proxies_from_the_peer() {
        let t = trusting("", 1);
        let got = t.client_ip(&headers(&["6.6.6.6, 5.5.5.5"]), Some(ip("10.0.0.1")));
        assert_eq!(got, Some(ip("5.5.5.5")));
        let t = trusting("", 2);
        let got = t.client_ip(&headers(&["6.6.6.6, 5.5.5.5"]), Some(ip("10.0.0.1")));
        assert_eq!(got, Some(ip("6.6.6.6")));
    }

    #[test]
    fn garbage_from_a_trusted_proxy_stops_the_walk_there() {
        let t = trusting("127.0.0.1", 0);
        let got = t.client_ip(&headers(&["1.1.1.1, not-an-ip"]), Some(ip("127.0.0.1")));
        assert_eq!(got, Some(ip("127.0.0.1")));
        let got = t.client_ip(
            &headers(&["[2001:db8::1]:443", "127.0.0.1:9000"]),
            Some(ip("127.0.0.1")),
        );
        assert_eq!(got, Some(ip("2001:db8::1")));
    }

    #[test]
    fn the_believed_chain_drops_what_the_client_wrote() {
        let t = trusting("127.0.0.0/8, 10.0.0.0/8", 0);
        let chain = t.believed_chain(
            &headers(&["6.6.6.6, 203.0.113.7, 10.0.0.5"]),
            Some(ip("127.0.0.6")),
        );
        assert_eq!(
            chain,
            vec![ip("203.0.113.7"), ip("10.0.0.5"), ip("127.0.0.6")]
        );
        let chain =
            TrustedProxies::none().believed_chain(&headers(&["6.6.6.6"]), Some(ip("1.1.1.1")));
        assert_eq!(chain, vec![ip("1.1.1.1")]);
        assert!(t.believed_chain(&headers(&[]), None).is_empty());
    }

    #[test]
    fn mapped_ipv4_is_one_address() {
        let t = trusting("127.0.0.1", 0);
        let got = t.client_ip(&headers(&["::ffff:5.5.5.5"]), Some(ip("::ffff:127.0.0.1")));
        assert_eq!(got, Some(ip("5.5.5.5")));
    }

    #[test]
    fn settings_come_from_the_environment_and_bad_ones_name_the_variable() {
        let env: HashMap<String, String> = [
            ("TRUSTED_PROXIES".to_owned(), "10.0.0.0/8, ::1".to_owned()),
            ("TRUSTED_PROXY_HOPS".to_owned(), "1".to_owned()),
        ]
        .into();
        let t = TrustedProxies::from_env(&env).unwrap();
        assert!(t.is_trusted(ip("10.2.3.4")) && t.is_trusted(ip("::1")));
        assert!(!t.is_trusted(ip("11.0.0.1")));
        let env: HashMap<String, String> =
            [("TRUSTED_PROXIES".to_owned(), "10.0.0.0/33".to_owned())].into();
        assert_eq!(
            TrustedProxies::from_env(&env).unwrap_err().var,
            "TRUSTED_PROXIES"
        );
        let empty: HashMap<String, String> = HashMap::new();
        assert_eq!(
            TrustedProxies::from_env(&empty).unwrap(),
            TrustedProxies::none()
        );
    }
}

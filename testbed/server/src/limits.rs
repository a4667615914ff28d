//! Rate limits on the endpoints a guesser or a flood would use: sign-in, refresh, invite
//! redemption, device registration and its challenge. Each has two budgets, one per account
//! (the email, person or invite code the request is about) and one per client address, so
//! that neither many guesses at one account nor one client spraying many accounts gets far.
//! A request over either budget is refused with 429 `rate_limited` and `Retry-After`.

use std::convert::Infallible;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult};

/// The unit a rate is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    Second,
    Minute,
    Hour,
}

impl Per {
    fn duration(self) -> Duration {
        Duration::from_secs(match self {
            Per::Second => 1,
            Per::Minute => 60,
            Per::Hour => 3600,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Per::Second => "s",
            Per::Minute => "min",
            Per::Hour => "h",
        }
    }
}

/// `count` requests `per` unit of time, sustained, of which up to `burst` may come at once.
/// Written `COUNT/UNIT[:BURST]`, e.g. `5/min` or `5/min:10`; the burst is `count` unless
/// given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub per: Per,
    pub burst: NonZeroU32,
}

impl Rate {
    pub const fn new(count: u32, per: Per) -> Rate {
        let count = match NonZeroU32::new(count) {
            Some(c) => c,
            None => panic!("a rate allows at least one request"),
        };
        Rate {
            count,
            per,
            burst: count,
        }
    }

    fn quota(self) -> Quota {
        // Past a billion a second the interval rounds to nothing, which governor refuses.
        let interval = (self.per.duration() / self.count.get()).max(Duration::from_nanos(1));
        Quota::with_period(interval)
            .expect("the interval is not zero")
            .allow_burst(self.burst)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, self.per.name())?;
        if self.burst != self.count {
            write!(f, ":{}", self.burst)?;
        }
        Ok(())
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Rate, String> {
        let bad = || format!("`{s}` is not COUNT/UNIT[:BURST] (UNIT: s, min or h), e.g. 5/min");
        let (count, rest) = s.split_once('/').ok_or_else(bad)?;
        let (per, burst) = match rest.split_once(':') {
            Some((per, burst)) => (per, Some(burst)),
            None => (rest, None),
        };
        let count: NonZeroU32 = count.trim().parse().map_err(|_| bad())?;
        let per = match per.trim() {
            "s" => Per::Second,
            "min" => Per::Minute,
            "h" => Per::Hour,
            _ => return Err(bad()),
        };
        let burst = match burst {
            Some(b) => b.trim().parse().map_err(|_| bad())?,
            None => count,
        };
        Ok(Rate { count, per, burst })
    }
}

/// One endpoint's two budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Per account: the email signed in to, the person refreshing or registering, the invite
    /// code redeemed.
    pub account: Rate,
    /// Per client address (an IPv6 client's /64, which one host can roam freely).
    pub address: Rate,
}

/// What an operator may tune. The defaults leave an app used as intended far below every
/// budget: it signs in once, refreshes about once an hour and registers one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub sign_in: Budget,
    pub refresh: Budget,
    pub invite: Budget,
    pub device: Budget,
    pub challenge: Budget,
}

impl Limits {
    /// Every endpoint's budget, for setting them alike (a test's or a harness's roomy limits).
    pub fn budgets_mut(&mut self) -> [&mut Budget; 5] {
        [
            &mut self.sign_in,
            &mut self.refresh,
            &mut self.invite,
            &mut self.device,
            &mut self.challenge,
        ]
    }
}

impl Default for Limits {
    fn default() -> Limits {
        let budget = |account, address| Budget {
            account: Rate::new(account, Per::Minute),
            address: Rate::new(address, Per::Minute),
        };
        Limits {
            sign_in: budget(5, 20),
            refresh: budget(10, 60),
            invite: budget(5, 10),
            device: budget(5, 20),
            challenge: budget(10, 60),
        }
    }
}

/// Where a request comes from, as far as budgets go; `None` when the router is served without
/// connection info (embedded behind another server), where only the per-account budgets
/// apply.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| bucket(addr.ip())),
        ))
    }
}

/// The unit a client is counted by: its IPv4 address, or its IPv6 /64 (one host usually holds
/// a whole /64 and can pick any address in it).
fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
        v4 => v4,
    }
}

/// Budgets forgotten every this many checks: a key whose budget is full again holds nothing
/// worth keeping, and a spray of distinct emails must not grow memory without end.
const FORGET_EVERY: u32 = 1024;

/// One endpoint's limiters.
pub struct Gate {
    // Accounts are keyed by a digest, so that a megabyte-long "email" costs 32 bytes.
    account: DefaultKeyedRateLimiter<[u8; 32]>,
    address: DefaultKeyedRateLimiter<IpAddr>,
    checks: AtomicU32,
}

impl Gate {
    fn new(budget: Budget) -> Gate {
        Gate {
            account: DefaultKeyedRateLimiter::dashmap(budget.account.quota()),
            address: DefaultKeyedRateLimiter::dashmap(budget.address.quota()),
            checks: AtomicU32::new(0),
        }
    }

    /// Spends one request of `client`'s budget, or says how long to wait.
    pub fn address(&self, client: ClientAddr) -> ApiResult<()> {
        match client.0 {
            Some(ip) => self.check(&self.address, &ip),
            None => Ok(()),
        }
    }

    /// Spends one request of `account`'s budget, or says how long to wait.
    pub fn account(&self, account: &[u8]) -> ApiResult<()> {
        self.check(&self.account, &Sha256::digest(account).into())
    }

    fn check<K: Clone + std::hash::Hash + Eq>(
        &self,
        limiter: &DefaultKeyedRateLimiter<K>,
        key: &K,
    ) -> ApiResult<()> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % FORGET_EVERY == FORGET_EVERY - 1 {
            self.account.retain_recent();
            self.address.retain_recent();
        }
        limiter.check_key(key).map_err(|not_until| {
            ApiError::rate_limited(not_until.wait_time_from(limiter.clock().now()))
        })
    }
}

/// The server's limiters, one gate per limited endpoint.
pub struct Limiters {
    pub sign_in: Gate,
    pub refresh: Gate,
    pub invite: Gate,
    pub device: Gate,
    pub challenge: Gate,
}

impl Limiters {
    pub fn new(limits: &Limits) -> Limiters {
        Limiters {
            sign_in: Gate::new(limits.sign_in),
            refresh: Gate::new(limits.refresh),
            invite: Gate::new(limits.invite),
            device: Gate::new(limits.device),
            challenge: Gate::new(limits.challenge),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_they_print() {
        for text in ["5/min", "5/min:10", "1/s", "100/h:3"] {
            assert_eq!(text.parse::<Rate>().unwrap().to_string(), text);
        }
        for bad in ["", "5", "0/min", "5/day", "5/min:0", "x/min", "5/min:"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(bucket(a), bucket(b));
        assert_ne!(bucket(a), bucket(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(bucket(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_burst_then_one_per_interval() {
        let gate = Gate::new(Budget {
            account: "2/min".parse().unwrap(),
            address: "100/min".parse().unwrap(),
        });
        assert!(gate.account(b"a@example.com").is_ok());
        assert!(gate.account(b"a@example.com").is_ok());
        let refused = gate.account(b"a@example.com").unwrap_err();
        assert_eq!(refused.status, 429);
        // One request comes back every 30 s.
        assert!((1..=30).contains(&refused.body.retry_after.unwrap()));
        assert!(
            gate.account(b"b@example.com").is_ok(),
            "budgets are per account"
        );
    }
}

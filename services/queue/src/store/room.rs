//! The waiting room in Redis: every step that reads and writes more than one key is one Lua
//! script (`src/store/lua/`), so concurrent lineups on any number of replicas can neither
//! admit past capacity nor hand out the same position twice. The capacity is the configured
//! one unless an operator set another at run time ([`WaitingRoom::set_capacity`]), which every
//! script reads from Redis, so all replicas follow it at once.

use std::time::Duration;

use deadpool_redis::Pool;
use ratelimit::Hit;
use redis::Script;
use service_runtime::redis::SharedConnection;

use crate::store::keys;

const PRELUDE: &str = include_str!("lua/prelude.lua");

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

/// The rules' numbers.
#[derive(Debug, Clone)]
pub struct RoomSettings {
    pub capacity: u32,
    pub duration: Duration,
    pub abandon_after: Duration,
    pub rate_window: Duration,
}

/// What a lineup did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lineup {
    /// Let in now (`already` when the member was admitted before this request).
    Admitted { already: bool },
    /// Queued at `position` (`requeued` when they were already waiting: moved to the back).
    Waiting { position: u64, requeued: bool },
    /// Over the rate limit counted in the same step: nothing else was done.
    RateLimited { retry_after: Duration },
}

/// Where one member stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Admitted,
    Waiting { position: u64 },
    Absent,
}

/// Standings of several members, with what the estimate needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standings {
    pub waiting_total: u64,
    pub admitted_in_window: u64,
    pub members: Vec<Standing>,
}

/// Which set a member leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leave {
    Allowed,
    Waiting,
    Both,
}

impl Leave {
    fn as_str(self) -> &'static str {
        match self {
            Leave::Allowed => "allowed",
            Leave::Waiting => "waiting",
            Leave::Both => "both",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Left {
    pub allowed: bool,
    pub waiting: bool,
    pub admitted_from_queue: u64,
}

/// One scheduler tick that this replica ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    pub expired: u64,
    pub abandoned: u64,
    pub admitted: u64,
    pub waiting: u64,
    pub allowed: u64,
}

/// The room at a glance, for operators (`GET /admin/queue/room`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Overview {
    /// The capacity in force: the operator's override, else the configured one.
    pub capacity: u32,
    /// `ALLOWED_IN_MAX_CAPACITY` of this replica (every replica should have the same).
    pub configured_capacity: u32,
    /// Whether an operator's override (`PUT /admin/queue/room/capacity`) is in force.
    pub capacity_overridden: bool,
    /// Members admitted now.
    pub admitted: u64,
    /// Members waiting in the queue.
    pub waiting: u64,
    /// Scheduler ticks run so far (by any replica), the last one's replica and time.
    pub scheduler_runs: u64,
    pub scheduler_last_instance: Option<String>,
    pub scheduler_last_run_ms: Option<i64>,
}

/// The waiting room's store. Cheap to clone.
#[derive(Clone)]
pub struct WaitingRoom {
    redis: SharedConnection,
    keys: [String; 7],
    channel: String,
    settings: RoomSettings,
    lineup: Script,
    positions: Script,
    leave: Script,
    touch: Script,
    schedule: Script,
    capacity: Script,
}

/// Positions are asked for in batches of this many members (one script each), so a tick for
/// 10 000 SSE clients never holds Redis for long.
const POSITION_BATCH: usize = 1000;

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl WaitingRoom {
    pub fn new(pool: Pool, prefix: &str, settings: RoomSettings) -> Self {
        Self {
            redis: SharedConnection::new(pool),
            keys: [
                keys::wait(prefix),
                keys::counter(prefix),
                keys::allowed_in(prefix),
                keys::seen(prefix),
                keys::admission_log(prefix),
                keys::scheduler_lock(prefix),
                keys::scheduler_stats(prefix),
            ],
            channel: keys::admissions_channel(prefix),
            settings,
            lineup: script(&format!(
                "{}\n{}",
                ratelimit::SLIDING_LOG_LUA,
                include_str!("lua/lineup.lua")
            )),
            positions: script(include_str!("lua/positions.lua")),
            leave: script(include_str!("lua/leave.lua")),
            touch: script(include_str!("lua/touch.lua")),
            schedule: script(include_str!("lua/schedule.lua")),
            capacity: script(include_str!("lua/capacity.lua")),
        }
    }

    pub fn settings(&self) -> &RoomSettings {
        &self.settings
    }

    /// The pub/sub channel admissions are announced on.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    fn invocation<'a>(&'a self, script: &'a Script) -> redis::ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        for key in &self.keys {
            invocation.key(key);
        }
        invocation
    }

    /// This thread's shared multiplexed connection (no checkout round trip per call).
    async fn conn(&self) -> anyhow::Result<redis::aio::MultiplexedConnection> {
        self.redis.get().await
    }

    /// A failed command's error, after telling the shared connection about it.
    fn broken(&self, err: redis::RedisError) -> anyhow::Error {
        self.redis.failed(&err);
        err.into()
    }

    /// Lines `member` up; with `limit`, first counts the request against that rate limit in
    /// the same script (one round trip for both). Also returns what the limit has left when
    /// one was counted and allowed the request.
    pub async fn lineup(
        &self,
        member: i64,
        limit: Option<&Hit>,
    ) -> anyhow::Result<(Lineup, Option<u32>)> {
        let mut conn = self.conn().await?;
        let mut invocation = self.invocation(&self.lineup);
        if let Some(hit) = limit {
            invocation.key(&hit.key);
        }
        invocation
            .arg(member)
            .arg(self.settings.capacity)
            .arg(&self.channel)
            .arg(millis(self.settings.rate_window));
        if let Some(hit) = limit {
            invocation.arg(hit.window_ms).arg(hit.max);
        }
        let (state, value, flag, remaining): (String, i64, i64, i64) = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        let remaining = u32::try_from(remaining).ok();
        Ok(match state.as_str() {
            "limited" => (
                Lineup::RateLimited {
                    retry_after: Hit::retry_after(value),
                },
                None,
            ),
            "admitted" => (Lineup::Admitted { already: flag == 1 }, remaining),
            _ => (
                Lineup::Waiting {
                    position: count(value),
                    requeued: flag == 1,
                },
                remaining,
            ),
        })
    }

    /// Where each of `members` stands (a sign of life for those waiting).
    pub async fn standings(&self, members: &[i64]) -> anyhow::Result<Standings> {
        let mut out = Standings {
            waiting_total: 0,
            admitted_in_window: 0,
            members: Vec::with_capacity(members.len()),
        };
        let mut conn = self.conn().await?;
        let chunks: Vec<&[i64]> = if members.is_empty() {
            vec![&[]]
        } else {
            members.chunks(POSITION_BATCH).collect()
        };
        for chunk in chunks {
            let mut invocation = self.invocation(&self.positions);
            invocation.arg(millis(self.settings.rate_window));
            for m in chunk {
                invocation.arg(m);
            }
            let raw: Vec<i64> = invocation
                .invoke_async(&mut conn)
                .await
                .map_err(|e| self.broken(e))?;
            let (head, rest) = raw.split_at(raw.len().min(2));
            if let [total, recent] = head {
                out.waiting_total = count(*total);
                out.admitted_in_window = count(*recent);
            }
            out.members.extend(rest.iter().map(|s| match *s {
                0 => Standing::Admitted,
                n if n > 0 => Standing::Waiting { position: count(n) },
                _ => Standing::Absent,
            }));
        }
        Ok(out)
    }

    pub async fn leave(&self, member: i64, which: Leave) -> anyhow::Result<Left> {
        let mut conn = self.conn().await?;
        let (allowed, waiting, admitted): (i64, i64, i64) = self
            .invocation(&self.leave)
            .arg(member)
            .arg(which.as_str())
            .arg(self.settings.capacity)
            .arg(&self.channel)
            .arg(millis(self.settings.rate_window))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        Ok(Left {
            allowed: allowed == 1,
            waiting: waiting == 1,
            admitted_from_queue: count(admitted),
        })
    }

    /// How full the room is (three reads in one pipeline; not one atomic snapshot, which
    /// an operator's read-out does not need).
    pub async fn overview(&self) -> anyhow::Result<Overview> {
        let mut conn = self.conn().await?;
        let (waiting, admitted, stats): (i64, i64, std::collections::HashMap<String, String>) =
            redis::pipe()
                .zcard(&self.keys[0])
                .hlen(&self.keys[2])
                .hgetall(&self.keys[6])
                .query_async(&mut conn)
                .await
                .map_err(|e| self.broken(e))?;
        let overridden = stats.get("capacity").and_then(|v| v.parse::<u32>().ok());
        Ok(Overview {
            capacity: overridden.unwrap_or(self.settings.capacity),
            configured_capacity: self.settings.capacity,
            capacity_overridden: overridden.is_some(),
            admitted: count(admitted),
            waiting: count(waiting),
            scheduler_runs: stats.get("runs").and_then(|v| v.parse().ok()).unwrap_or(0),
            scheduler_last_instance: stats.get("last_instance").cloned(),
            scheduler_last_run_ms: stats.get("last_run_ms").and_then(|v| v.parse().ok()),
        })
    }

    /// Sets the capacity of every replica's room (`None`: back to the configured one) and
    /// admits whoever a raise makes room for, in one step. The capacity in force and how many
    /// were admitted.
    pub async fn set_capacity(&self, capacity: Option<u32>) -> anyhow::Result<(u32, u64)> {
        let mut conn = self.conn().await?;
        let (in_force, admitted): (i64, i64) = self
            .invocation(&self.capacity)
            .arg(capacity.unwrap_or(0))
            .arg(self.settings.capacity)
            .arg(&self.channel)
            .arg(millis(self.settings.rate_window))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        Ok((u32::try_from(in_force).unwrap_or(0), count(admitted)))
    }

    /// For a protected route: `true` (and the admission refreshed) if `member` is admitted.
    pub async fn touch(&self, member: i64) -> anyhow::Result<bool> {
        let mut conn = self.conn().await?;
        let admitted: i64 = self
            .invocation(&self.touch)
            .arg(member)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        Ok(admitted == 1)
    }

    /// One scheduler tick if this replica wins the lock (`None` if another holds it).
    pub async fn schedule(&self, instance: &str, lock: Duration) -> anyhow::Result<Option<Tick>> {
        let mut conn = self.conn().await?;
        let raw: Vec<i64> = self
            .invocation(&self.schedule)
            .arg(instance)
            .arg(millis(lock).max(1))
            .arg(self.settings.capacity)
            .arg(millis(self.settings.duration))
            .arg(millis(self.settings.abandon_after))
            .arg(&self.channel)
            .arg(millis(self.settings.rate_window))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        Ok(match raw.as_slice() {
            [1, expired, abandoned, admitted, waiting, allowed] => Some(Tick {
                expired: count(*expired),
                abandoned: count(*abandoned),
                admitted: count(*admitted),
                waiting: count(*waiting),
                allowed: count(*allowed),
            }),
            _ => None,
        })
    }
}

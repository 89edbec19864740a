#pragma once
// The StateStore conformance suite: checks written only against the port (engine/state_store.h)
// that every adapter must pass: claim and complete through the milestones, batched claims and
// completions, fencing of stale holders, no double claim under concurrent claimers, lease loss
// and reclaim, failures with backoff, death and requeue, checkpoints, await/wake, reset, and the
// counts per state after each of them, and a run's scope.
//
// An adapter's test binary provides a StateStoreFactory maker and instantiates the suite:
//
//   Result<std::unique_ptr<StateStoreFactory>> MakeSqlite() { ... }
//   GRIN_STATE_STORE_CONFORMANCE("sqlite", MakeSqlite)
//
// which defines one doctest TEST_CASE per check, named "<name> conformance: <check>". A maker
// that returns kUnavailable (e.g. no PostgreSQL server binaries) makes every check print why and
// pass without running; any other error fails the check.
//
// Time: the suite runs on the real clock. Retries are made not due for an hour unless a check
// asks for a short backoff (ConformanceOptions); lease loss goes through the factory
// (LoseLeases), which knows how its adapter loses them.

#include <doctest/doctest.h>

#include <cstdint>
#include <memory>

#include "engine/base/result.h"
#include "engine/state_store.h"

namespace grin::testing {

// The knobs the checks set on every store they open.
struct ConformanceOptions {
  int max_attempts = 3;                         // failures per stage before dead
  int64_t backoff_base_micros = 3'600'000'000;  // retries not due within a check...
  int64_t backoff_max_micros = 3'600'000'000;   // ...unless a check sets both small
};

class StateStoreFactory {
 public:
  virtual ~StateStoreFactory() = default;

  // Opens a store on this factory's state: a new run (SQLite) or a new worker (PostgreSQL). The
  // state is empty before the first Open(); later stores see what earlier ones wrote.
  virtual Result<std::unique_ptr<StateStore>> Open(const ConformanceOptions& options) = 0;

  // True if several stores may be open on the state at once (workers of one run on several
  // hosts). False when a store may only be opened after the previous one was closed (SQLite's
  // per-run lock): the checks then never hold two at once.
  virtual bool shared() const = 0;

  // Makes every lease `holder` holds now claimable by a store opened afterwards, the way this
  // adapter loses leases: SQLite closes the holder (holder.reset(): its run ends, and Open() of
  // the next run takes the leases back); PostgreSQL stops the holder's heartbeats as if it were
  // partitioned from the database and waits until its leases expire by the database's clock,
  // leaving the holder open so the check can see its late writes refused.
  virtual void LoseLeases(std::unique_ptr<StateStore>& holder) = 0;
};

using StateStoreFactoryMaker = Result<std::unique_ptr<StateStoreFactory>> (*)();

namespace conformance {
void RoundTrip(StateStoreFactoryMaker make);
void BatchedClaims(StateStoreFactoryMaker make);
void Fencing(StateStoreFactoryMaker make);
void ConcurrentClaimersOneStore(StateStoreFactoryMaker make);
void ConcurrentWorkers(StateStoreFactoryMaker make);
void LeaseLossAndReclaim(StateStoreFactoryMaker make);
void FailuresAndRequeue(StateStoreFactoryMaker make);
void MaxAttempts(StateStoreFactoryMaker make);
void Checkpoints(StateStoreFactoryMaker make);
void CountsPerState(StateStoreFactoryMaker make);
void Scope(StateStoreFactoryMaker make);
}  // namespace conformance

}  // namespace grin::testing

// One TEST_CASE per check; `name` is a string literal naming the adapter.
#define GRIN_STATE_STORE_CONFORMANCE(name, make)                                             \
  TEST_CASE(name " conformance: a job is claimed and completed through every milestone") {  \
    ::grin::testing::conformance::RoundTrip(make);                                          \
  }                                                                                         \
  TEST_CASE(name " conformance: claims are batched, distinct and in job order") {           \
    ::grin::testing::conformance::BatchedClaims(make);                                      \
  }                                                                                         \
  TEST_CASE(name " conformance: a stale lease holder changes nothing") {                    \
    ::grin::testing::conformance::Fencing(make);                                            \
  }                                                                                         \
  TEST_CASE(name " conformance: threads claiming from one store never share a job") {       \
    ::grin::testing::conformance::ConcurrentClaimersOneStore(make);                         \
  }                                                                                         \
  TEST_CASE(name " conformance: workers on their own stores never share a job") {           \
    ::grin::testing::conformance::ConcurrentWorkers(make);                                  \
  }                                                                                         \
  TEST_CASE(name " conformance: lost leases are reclaimed and the old holder is fenced") {  \
    ::grin::testing::conformance::LeaseLossAndReclaim(make);                                \
  }                                                                                         \
  TEST_CASE(name " conformance: failures back off or die and are requeued by filter") {     \
    ::grin::testing::conformance::FailuresAndRequeue(make);                                 \
  }                                                                                         \
  TEST_CASE(name " conformance: the max_attempts-th failure makes a job dead") {            \
    ::grin::testing::conformance::MaxAttempts(make);                                        \
  }                                                                                         \
  TEST_CASE(name " conformance: checkpoints come back with the next claim") {               \
    ::grin::testing::conformance::Checkpoints(make);                                        \
  }                                                                                         \
  TEST_CASE(name " conformance: counts follow every state, await, wake and reset") {        \
    ::grin::testing::conformance::CountsPerState(make);                                     \
  }                                                                                         \
  TEST_CASE(name " conformance: a scoped run claims and counts only its books") {           \
    ::grin::testing::conformance::Scope(make);                                              \
  }

#pragma once
// The transport's per-host counters (Transport::HostStats) as Prometheus metrics
// (engine/base/metrics.h), mirrored, never counted twice: requests, attempts, responses by
// status class, transport errors, retries, throttled replies (429/503), bytes each way, new
// connections and TLS handshakes, the time requests waited in the transport's queue (rate limits
// and connection caps), and the limits AIMD currently allows. Every family is labelled
// host="host:port". docs/metrics.md lists them.
//
// Thread safety: as Metrics.

#include <vector>

#include "engine/base/metrics.h"
#include "engine/net/transport.h"

namespace grin::net {

void ExportHostStats(const std::vector<HostCounters>& hosts, Metrics* metrics);

// Registers a refresher that exports `transport`'s HostStats() before every render. Returns its
// id for Metrics::RemoveRefresher, which must be called before `transport` is destroyed.
int AddTransportRefresher(Transport* transport, Metrics* metrics);

}  // namespace grin::net

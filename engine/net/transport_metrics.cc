#include "engine/net/transport_metrics.h"

#include <string>

namespace grin::net {

void ExportHostStats(const std::vector<HostCounters>& hosts, Metrics* m) {
  for (const HostCounters& h : hosts) {
    const Metrics::Labels host = {{"host", h.host}};
    auto counter = [&](const char* name, const char* help, double v) {
      m->GetCounter(name, help, host)->Set(v);
    };
    auto gauge = [&](const char* name, const char* help, double v) {
      m->GetGauge(name, help, host)->Set(v);
    };
    counter("grin_jobs_http_requests_total", "HTTP requests completed (after retries), by host",
            static_cast<double>(h.requests));
    counter("grin_jobs_http_attempts_total", "HTTP attempts handed to libcurl, by host",
            static_cast<double>(h.attempts));
    static const char* const kClass[6] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
    for (int i = 0; i < 6; ++i) {
      m->GetCounter("grin_jobs_http_responses_total",
                    "HTTP attempts by host and status class (none: no HTTP response)",
                    {{"host", h.host}, {"class", kClass[i]}})
          ->Set(static_cast<double>(h.status_class[i]));
    }
    counter("grin_jobs_http_transport_errors_total",
            "Attempts that ended without a complete response (connect, TLS, timeout, reset)",
            static_cast<double>(h.transport_errors));
    counter("grin_jobs_http_retries_total", "HTTP retries, by host",
            static_cast<double>(h.retries));
    counter("grin_jobs_http_throttled_total",
            "429 and 503 replies (the host asked for less; its limits were slowed), by host",
            static_cast<double>(h.throttled));
    counter("grin_jobs_http_received_bytes_total", "Response body bytes received, by host",
            static_cast<double>(h.bytes_down));
    counter("grin_jobs_http_sent_bytes_total", "Request body bytes sent, by host",
            static_cast<double>(h.bytes_up));
    counter("grin_jobs_http_connections_total", "New connections opened, by host",
            static_cast<double>(h.new_connections));
    counter("grin_jobs_tls_handshakes_total", "New connections that did a TLS handshake, by host",
            static_cast<double>(h.tls_handshakes));
    counter("grin_jobs_http_reused_total", "Attempts on a reused connection, by host",
            static_cast<double>(h.reused));
    counter("grin_jobs_http_queued_seconds_total",
            "Time requests waited in the transport's queue before libcurl (rate limits, "
            "connection caps), by host",
            static_cast<double>(h.queued_us) / 1e6);
    counter("grin_jobs_tls_handshake_seconds_total", "Time spent in TLS handshakes, by host",
            static_cast<double>(h.tls_us) / 1e6);
    counter("grin_jobs_http_seconds_total", "Time attempts took from start to end, by host",
            static_cast<double>(h.total_us) / 1e6);
    gauge("grin_jobs_http_allowed_requests_per_second",
          "Request rate allowed now (AIMD; 0 = unlimited), by host", h.current_request_rate);
    gauge("grin_jobs_http_allowed_concurrency", "Requests in flight allowed now (AIMD), by host",
          static_cast<double>(h.current_concurrency));
  }
}

int AddTransportRefresher(Transport* transport, Metrics* metrics) {
  return metrics->AddRefresher(
      [transport, metrics] { ExportHostStats(transport->HostStats(), metrics); });
}

}  // namespace grin::net
